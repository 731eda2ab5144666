// Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/: real messages of
// every command, a value of every type the archive fuzzer decodes, and repro bundles. Run by hand
// after the protocol changes (scripts/fuzz.sh --seeds); the seeds are checked in.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <dtask/detail/archive.hpp>

#include "frames.hpp"
#include "repro_bundle.hpp"
#include "types.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using dtask::fuzz::as_string;
using dtask::fuzz::join_frames;

namespace {

std::filesystem::path root;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
    const auto dir = root / target;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string head(Command command, std::initializer_list<std::uint64_t> fields = {}) {
    return as_string(header(command, fields));
}

/// A task or result frame of `count` records of a few bytes each.
std::string batch_frame(Command command, std::uint64_t job, std::uint64_t first,
                        std::uint64_t count) {
    const std::size_t room = command == Command::task ? task_header_room : result_header_room;
    std::string out(room, '\0');
    BatchWriter writer(out);
    for (std::uint64_t i = 0; i < count; ++i) {
        writer.begin();
        save_to(writer.out(), static_cast<std::int64_t>(first + i));
        writer.end();
    }
    auto* bytes = reinterpret_cast<std::byte*>(out.data());
    const std::size_t start =
        command == Command::task
            ? write_batch_header({bytes, room}, command, job, {first, count})
            : write_batch_header({bytes, room}, command, job, {first, count, 1000});
    return out.substr(start);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_corpus <fuzz/corpus directory>\n");
        return 2;
    }
    root = argv[1];

    Hello hello;
    hello.name = "host:1234";
    hello.platform = platform();
    hello.credits = 4;
    hello.pid = 1234;
    hello.jobs = {{"sum_squares", "sig-a"}, {"word_count", "sig-b"}};
    Hello client = hello;
    client.role = Role::client;
    client.jobs.clear();
    Failure failure;
    failure.worker = "host:99";
    failure.exception_type = "std::runtime_error";
    failure.message = "map threw";
    JobSettings settings;

    const std::vector<std::pair<std::string, std::vector<std::string>>> messages{
        {"hello_worker", {head(Command::hello, {this_release}), as_string(encode_body(hello))}},
        {"hello_client", {head(Command::hello, {this_release}), as_string(encode_body(client))}},
        {"welcome", {head(Command::welcome, {1000, 5, 0, 1})}},
        {"refuse", {head(Command::refuse), "not accepted"}},
        {"hello_other_release",
         {head(Command::hello, {this_release + 1}), as_string(encode_body(hello))}},
        {"heartbeat", {head(Command::heartbeat)}},
        {"bye", {head(Command::bye)}},
        {"status", {head(Command::status, {3})}},
        {"reconnect", {head(Command::reconnect)}},
        {"pace", {head(Command::pace, {2000})}},
        {"submit",
         {head(Command::submit, {1}), "sum_squares", "sig-a", "",
          as_string(encode_body(settings))}},
        {"task", {batch_frame(Command::task, 7, 0, 3)}},
        {"result", {batch_frame(Command::result, 7, 0, 3)}},
        {"failure", {head(Command::failure, {7, 2}), as_string(encode_body(failure))}},
        {"end", {head(Command::end, {7})}},
        {"cancel", {head(Command::cancel, {7})}},
        {"job", {head(Command::job, {7, 0, 0}), "sum_squares", "sig-a", "data"}},
        {"revoke", {head(Command::revoke, {7, 0})}},
        {"split_done", {head(Command::split_done, {7})}},
        {"notice", {head(Command::notice, {7}), "no worker serves job 'x'"}},
        {"pulse", {head(Command::pulse, {0}), "W0123"}},
        {"hung", {head(Command::hung, {7, 1}), "W0123", as_string(encode_body(failure))}},
        {"share", {head(Command::share, {3}), "shared bytes"}},
        {"unshare", {head(Command::unshare, {3})}},
    };
    for (const char* target : {"fuzz_broker", "fuzz_worker", "fuzz_client"})
        for (const auto& [name, frames] : messages)
            write(target, name, join_frames(frames));

    dtask::fuzz::Point point;
    point.id = 3;
    point.weight = 0.5;
    point.label = "p";
    point.flags = std::vector<bool>{true, false};
    point.series = {{"a", {1, 2}}};
    for (unsigned which = 0; which < 24; ++which) {
        dtask::fuzz::with_type(which, [&]<class T>() {
            T value{};
            if constexpr (std::is_same_v<T, dtask::fuzz::Point>)
                value = point;
            else if constexpr (std::is_same_v<T, std::vector<dtask::fuzz::Point>>)
                value = {point, point};
            std::string bytes(1, static_cast<char>(which));
            save_to(bytes, value);
            write("fuzz_archive", "type_" + std::to_string(which), bytes);
        });
    }

    ReproBundle bundle;
    bundle.job = "sum_squares";
    bundle.signature =
        "subtask unsigned long (8 bytes), partial unsigned long (8 bytes), "
        "revision 0";
    bundle.subtask = 7;
    bundle.worker = "host:99";
    bundle.exception_type = "std::invalid_argument";
    bundle.error = "bad input 7";
    bundle.shared = "shared bytes";
    bundle.subtask_bytes = std::string("\x07\0\0\0\0\0\0\0", 8);
    write("fuzz_repro_bundle", "exception", encode_bundle(bundle));
    bundle.failure = ReproFailure::crash;
    bundle.exception_type.clear();
    write("fuzz_repro_bundle", "crash", encode_bundle(bundle));
    return 0;
}
