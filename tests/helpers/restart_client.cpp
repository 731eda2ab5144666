// A client whose job is held at stage gates, for the broker restart tests: its split makes
// the subtasks of stage s (of 4) only once the file DIRECTORY/stage-s exists, and says "gate
// s" when it gets there, so that a test can restart the broker at a known point of the job
// (the subtasks split off before are out, or back and waiting for reduce, which runs on the
// same strand as split). Prints "result exact", "result wrong ..." or "error WHAT" at the
// end. Also a worker for that job (--dtask-worker ENDPOINT).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <dtask/dtask.hpp>

namespace {

constexpr std::uint64_t stages = 4;

struct Staged {
    std::uint64_t count = 0;
    std::string directory;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, directory);
    }
};

bool exists(const std::string& path) {
    return std::ifstream(path).good();
}

/// "0,1,2,...": only each subtask folded once, in subtask order, gives this string.
std::string expected(std::uint64_t count) {
    std::string text;
    for (std::uint64_t i = 0; i < count; ++i)
        text += std::to_string(i) + ",";
    return text;
}

const dtask::Job<std::string> staged{
    "tests.staged",
    [](const Staged& job, dtask::SplitHint) {
        return [job, next = std::uint64_t{0}]() mutable -> std::optional<std::uint64_t> {
            if (next == job.count)
                return std::nullopt;
            const std::uint64_t per_stage = job.count / stages;
            if (next % per_stage == 0 && next / per_stage > 0 && next / per_stage < stages) {
                // Bounded: a test that never opens the gate fails the job, not hangs.
                const std::string gate =
                    job.directory + "/stage-" + std::to_string(next / per_stage);
                std::printf("gate %llu\n", static_cast<unsigned long long>(next / per_stage));
                std::fflush(stdout);
                const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(150);
                while (!exists(gate)) {
                    if (std::chrono::steady_clock::now() > give_up)
                        throw std::runtime_error("the test never opened " + gate);
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
            }
            return next++;
        };
    },
    [](const std::uint64_t& index) {
        // Long enough that a batch is still out when the broker is killed.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return std::to_string(index) + ",";
    },
    [](std::string text, std::string part) {
        text += part;
        return text;
    }};

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    if (argc != 5) {
        std::fprintf(stderr, "usage: restart_client BROKER_ENDPOINT COUNT DIRECTORY GRACE_MS\n");
        return 2;
    }
    try {
        dtask::ClientOptions options;  // the token from DTASK_TOKEN
        options.broker_restart_grace = std::chrono::milliseconds(std::stoll(argv[4]));
        dtask::Client client(argv[1], options);
        const std::uint64_t count = std::stoull(argv[2]);
        dtask::RunOptions run;
        std::uint64_t last_done = 0;
        run.on_progress = [&](const dtask::Progress& progress) { last_done = progress.done; };
        const std::string text = client.run(staged, Staged{count, argv[3]}, run);
        if (text == expected(count) && last_done == count)
            std::printf("result exact\n");
        else
            std::printf("result wrong: %zu bytes, %llu subtasks done\n", text.size(),
                        static_cast<unsigned long long>(last_done));
        return 0;
    } catch (const std::exception& e) {
        std::printf("error %s\n", e.what());
        return 1;
    }
}
