// A host whose job has a bug that only a worker process runs into, to show that the
// sanitizer report it causes fails the test (tests/CMakeLists.txt, sanitizer builds only).
//
//   planted_bugs out_of_bounds   the first attempt at subtask 3 reads past a heap block: the
//                                worker dies of the report, the subtask reruns elsewhere
//   planted_bugs leak            every subtask leaks memory, found when the worker exits
//
// Either way the job itself succeeds and the host exits 0: only the report can fail the test.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include <dtask/dtask.hpp>

#include "../attempt_markers.hpp"
#include "../temp_dir.hpp"

namespace {

std::uint64_t* volatile leak_sink = nullptr;  // so that the compiler keeps the allocations
volatile std::size_t one_past_the_end = 4;      // so that it does not see the bad read

struct Plant {
    std::string bug;
    std::string directory;  // where attempts are counted
    template <class Archive>
    void serialize(Archive& archive) {
        archive(bug, directory);
    }
};

std::uint64_t planted_map(const std::uint64_t& index, const Plant& plant) {
    if (plant.bug == "out_of_bounds" && index == 3 &&
        test_jobs::attempt_number(plant.directory, index) == 1) {
        auto* block = new std::uint64_t[4]{1, 2, 3, 4};
        const std::uint64_t read = block[one_past_the_end];
        delete[] block;
        return read;
    }
    if (plant.bug == "leak") {
        for (int i = 0; i < 16; ++i) {
            leak_sink = new std::uint64_t[8]{index};
            leak_sink = nullptr;  // the last pointer to it is gone
        }
    }
    return index;
}

inline const dtask::Job<std::uint64_t> planted{
    "tests.planted_bugs",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    planted_map, [](std::uint64_t total, std::uint64_t part) { return total + part; }};

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    const std::string bug = argc == 2 ? argv[1] : "";
    if (bug != "out_of_bounds" && bug != "leak") {
        std::cerr << "usage: planted_bugs out_of_bounds|leak\n";
        return 2;
    }
    test_support::TempDir attempts("dtask-planted");
    dtask::ClusterOptions options;
    options.local_workers = 2;
    std::uint64_t total = 0;
    {
        dtask::Cluster cluster(options);
        total = cluster.run(planted, std::uint64_t{10}, Plant{bug, attempts.path()},
                            dtask::RunOptions{.batch_size = 1, .deadline = std::chrono::seconds(90)});
    }  // the workers exit here, and a leak check runs in each
    std::cout << "planted_bugs " << bug << ": the job returned " << total << std::endl;
    return total == 45 ? 0 : 1;
}
