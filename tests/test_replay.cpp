// Replay of a failed subtask: with RunOptions::replay_dir (or DTASK_REPLAY_DIR) a subtask that
// throws, crashes its workers or times out leaves a repro bundle, the error names it, and the
// host binary started with --dtask-replay FILE runs that subtask's map again in the
// foreground, to the same error. Without the option no bundle is written; a bundle that is
// damaged, of another version or of another job is refused with a clear error.

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "client/kept_batches.hpp"
#include "client/repro_writer.hpp"
#include "jobs.hpp"
#include "replay.hpp"
#include "repro_bundle.hpp"
#include "support.hpp"
#include "wire/batch.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

/// How a replay ended and what it printed.
struct Replayed {
    int status = 0;  // the wait status
    std::string output;
};

/// Runs this binary with --dtask-replay `bundle` to its end (at most a minute), its output in
/// `scratch`; `environment` goes before this process's.
Replayed replay_bundle(const std::string& bundle, const TempDir& scratch,
                       const std::vector<std::string>& environment = {}) {
    const std::string output = scratch.path() + "/replay-output";
    Process process(self_executable(), {"--dtask-replay", bundle}, output, environment);
    const auto status = process.wait_exit(60s);
    REQUIRE_MESSAGE(status.has_value(), "the replay of " << bundle << " did not end");
    return {*status, read_file(output)};
}

bool exited_with(const Replayed& replayed, int code) {
    return WIFEXITED(replayed.status) && WEXITSTATUS(replayed.status) == code;
}

/// The files in `directory`.
std::vector<std::string> files_in(const std::string& directory) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(directory))
        names.push_back(entry.path().filename().string());
    return names;
}

/// A bundle written as the host writes it, for the tests of what replay refuses.
dtask::detail::ReproBundle bundle_of_throws_on_seven() {
    dtask::detail::ReproBundle bundle;
    bundle.job = "tests.throws_on_seven";
    bundle.signature = throws_on_seven.signature();
    bundle.subtask = 7;
    bundle.worker = "host:1";
    bundle.exception_type = "std::invalid_argument";
    bundle.error = "bad input 7";
    const std::uint64_t seven = 7;  // cereal's binary form of a std::uint64_t: its bytes
    bundle.subtask_bytes.assign(reinterpret_cast<const char*>(&seven), sizeof seven);
    return bundle;
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

TEST_CASE("Replay.thrown_exception_replays_to_the_same_error" * doctest::timeout(120)) {
    TempDir replays;
    TempDir scratch;
    dtask::Cluster cluster(small_cluster());
    auto handle =
        cluster.submit(throws_on_seven, std::uint64_t{20}, {.replay_dir = replays.path()});
    const dtask::TaskError error = error_of<dtask::TaskError>(handle);
    const std::string what = error.what();
    const std::string bundle = error.repro_bundle();
    CHECK(bundle == replays.path() + "/tests.throws_on_seven.subtask-7.dtask-replay");
    CHECK_MESSAGE(contains(what, "repro bundle: " + bundle), what);
    CHECK_MESSAGE(contains(what, "--dtask-replay " + bundle), what);
    // The one file, readable by its owner alone; no temporary file left beside it.
    CHECK(files_in(replays.path()) ==
          std::vector<std::string>{"tests.throws_on_seven.subtask-7.dtask-replay"});
    struct stat info {};
    REQUIRE(stat(bundle.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);

    const Replayed replayed = replay_bundle(bundle, scratch);
    CHECK_MESSAGE(exited_with(replayed, dtask::detail::replay_threw), replayed.output);
    CHECK_MESSAGE(contains(replayed.output, "map threw " + error.exception_type() + ": " +
                                                error.exception_message()),
                  replayed.output);
    CHECK(error.exception_type() == "std::invalid_argument");
    CHECK_MESSAGE(contains(replayed.output, "recorded: exception on worker " + error.worker() +
                                                ": std::invalid_argument: bad input 7"),
                  replayed.output);
}

TEST_CASE("Replay.subtask_that_crashes_its_worker_replays_to_the_same_signal" *
          doctest::timeout(170)) {
    TempDir replays;
    TempDir attempts;
    TempDir scratch;
    std::string bundle;
    {
        // Under a sanitizer a segfault becomes a report and an abort; the workers must die of
        // the signal (as in Failures.subtask_that_kills_its_worker_fails_the_job...).
        ScopedEnvAppend asan("ASAN_OPTIONS", "handle_segv=0");
        ScopedEnvAppend tsan("TSAN_OPTIONS", "handle_segv=0");
        dtask::Cluster cluster(small_cluster());
        dtask::RunOptions options;
        options.max_attempts = 1;
        options.batch_size = 1;
        options.backup_tasks = false;
        options.replay_dir = replays.path();
        auto handle = cluster.submit(troubled, std::uint64_t{12},
                                     Trouble{attempts.path(), 5, Trouble::segfault, 1000}, options);
        const dtask::PoisonSubtaskError error = error_of<dtask::PoisonSubtaskError>(handle);
        const std::string what = error.what();
        CHECK_MESSAGE(contains(what, "killed by signal 11"), what);
        bundle = error.repro_bundle();
        CHECK(bundle == replays.path() + "/tests.troubled.subtask-5.dtask-replay");
        CHECK_MESSAGE(contains(what, "repro bundle: " + bundle), what);
    }
    // A sanitizer in this build sees the crash in the replay and reports it, to a file of
    // this test's own (the test's other processes must report nothing).
    std::vector<std::string> environment;
    // Every runtime's options: UBSan's (linked with ASan) set the same log_path too.
    for (const char* variable : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
        const char* value = std::getenv(variable);
        environment.push_back(std::string(variable) + "=" + (value ? value : "") +
                              ":log_path=" + scratch.path() + "/report");
    }
    const Replayed replayed = replay_bundle(bundle, scratch, environment);
    CHECK_MESSAGE(contains(replayed.output, "recorded: crash on worker"), replayed.output);
    // Without a sanitizer it dies of SIGSEGV; with one, the sanitizer reports the SEGV and
    // exits or aborts (abort_on_error=1, as scripts/test.sh sets it).
    if (!WIFSIGNALED(replayed.status) || WTERMSIG(replayed.status) != SIGSEGV) {
        CHECK_MESSAGE(sanitized, "the replay did not die of its segfault: wait status "
                                     << replayed.status << ", output: " << replayed.output);
        std::string reports;
        for (const auto& name : files_in(scratch.path()))
            if (name.starts_with("report"))
                reports += read_file(scratch.path() + "/" + name);
        CHECK_MESSAGE(contains(reports, "SEGV"), "wait status " << replayed.status
                                                                << ", output: " << replayed.output
                                                                << ", reports: " << reports);
    }
}

TEST_CASE("Replay.timed_out_subtask_leaves_a_bundle_whose_replay_runs_its_map" *
          doctest::timeout(170)) {
    TempDir replays;
    TempDir attempts;
    dtask::Cluster cluster(small_cluster());
    dtask::RunOptions options;
    options.subtask_timeout = 500ms;
    options.max_attempts = 1;
    options.backup_tasks = false;
    options.replay_dir = replays.path();
    auto handle = cluster.submit(troubled, std::uint64_t{20},
                                 Trouble{attempts.path(), 3, Trouble::hang, 1000}, options);
    const dtask::TimeoutError error = error_of<dtask::TimeoutError>(handle);
    CHECK(error.reason() == dtask::TimeoutError::Reason::subtask_timeout);
    const std::string bundle = error.repro_bundle();
    CHECK(bundle == replays.path() + "/tests.troubled.subtask-3.dtask-replay");
    CHECK_MESSAGE(contains(error.what(), "repro bundle: " + bundle), error.what());
    // The replay runs the map, which hangs in the foreground as it did on the workers.
    const unsigned before = attempts_made(attempts.path(), 3);
    Process replay(self_executable(), {"--dtask-replay", bundle}, "|");
    const auto first = replay.read_line(60s);
    REQUIRE(first.has_value());
    CHECK(contains(*first, "job 'tests.troubled', subtask 3"));
    const auto second = replay.read_line(60s);
    REQUIRE(second.has_value());
    CHECK_MESSAGE(contains(*second, "recorded: timeout on worker"), *second);
    CHECK(wait_until([&] { return attempts_made(attempts.path(), 3) == before + 1; }, 60s));
    CHECK(ending_within(replay, 0ms) == "still running");
    replay.kill_and_reap();
}

TEST_CASE("Replay.bundle_holds_the_data_placed_with_share" * doctest::timeout(120)) {
    TempDir replays;
    TempDir attempts;
    TempDir scratch;
    dtask::Cluster cluster(small_cluster());
    // Its first attempt throws a TransientError, which fails the job (no retry asked for);
    // the replay is the second attempt, which returns.
    const auto shared = cluster.share(Trouble{attempts.path(), 4, Trouble::transient, 1});
    auto handle = cluster.submit(troubled, std::uint64_t{10}, shared,
                                 {.backup_tasks = false, .replay_dir = replays.path()});
    const dtask::TaskError error = error_of<dtask::TaskError>(handle);
    CHECK(error.exception_type() == "dtask::TransientError");
    const Replayed replayed = replay_bundle(error.repro_bundle(), scratch);
    CHECK_MESSAGE(exited_with(replayed, dtask::detail::replay_returned), replayed.output);
    CHECK_MESSAGE(contains(replayed.output, "map returned test_jobs::Counted of "),
                  replayed.output);
    CHECK(attempts_made(attempts.path(), 4) == 2);
}

TEST_CASE("Replay.no_bundle_unless_asked_for" * doctest::timeout(120)) {
    TempDir replays;
    dtask::Cluster cluster(small_cluster());
    {
        auto handle = cluster.submit(throws_on_seven, std::uint64_t{20});
        const dtask::TaskError error = error_of<dtask::TaskError>(handle);
        CHECK(error.repro_bundle().empty());
        CHECK_MESSAGE(!contains(error.what(), "repro bundle"), error.what());
    }
    {
        // DTASK_REPLAY_DIR asks for bundles of every run that names no directory itself.
        REQUIRE(std::getenv("DTASK_REPLAY_DIR") == nullptr);
        ScopedEnvAppend variable("DTASK_REPLAY_DIR", replays.path());
        auto handle = cluster.submit(throws_on_seven, std::uint64_t{20});
        const dtask::TaskError error = error_of<dtask::TaskError>(handle);
        CHECK(error.repro_bundle() ==
              replays.path() + "/tests.throws_on_seven.subtask-7.dtask-replay");
    }
    CHECK(files_in(replays.path()).size() == 1);
}

TEST_CASE("Replay.damaged_or_foreign_bundle_is_refused_with_a_clear_error" *
          doctest::timeout(120)) {
    using dtask::detail::encode_bundle;
    TempDir scratch;
    const std::string path = scratch.path() + "/bundle";
    auto refused = [&](const std::string& bytes, const std::string& expected) {
        write_file(path, bytes);
        const Replayed replayed = replay_bundle(path, scratch);
        CHECK_MESSAGE(exited_with(replayed, dtask::detail::replay_unusable), replayed.output);
        CHECK_MESSAGE(contains(replayed.output, expected), replayed.output);
    };
    const std::string good = encode_bundle(bundle_of_throws_on_seven());
    // The bundle itself replays: the refusals below are for what was changed.
    write_file(path, good);
    const Replayed replayed = replay_bundle(path, scratch);
    CHECK_MESSAGE(exited_with(replayed, dtask::detail::replay_threw), replayed.output);
    CHECK_MESSAGE(contains(replayed.output, "map threw std::invalid_argument: bad input 7"),
                  replayed.output);

    refused(good.substr(0, good.size() - 20), "is cut short");
    std::string flipped = good;
    flipped[good.size() - 12] ^= 0x01;  // a byte of the subtask
    refused(flipped, "its checksum does not match");
    std::string newer = good;
    newer[8] = 2;  // the version
    refused(newer, "format version 2, which this build of dtask cannot read");
    refused("#!/bin/sh\necho not a bundle\n", "not a dtask repro bundle");
    refused(good + "x", "1 bytes follow its end");
    auto other_job = bundle_of_throws_on_seven();
    other_job.job = "tests.no_such_job";
    refused(encode_bundle(other_job),
            "job 'tests.no_such_job', which this program does not define");
    auto other_build = bundle_of_throws_on_seven();
    other_build.signature = "subtask int (4 bytes), partial int (4 bytes), revision 9";
    refused(encode_bundle(other_build), "as another build defined it");
    const Replayed missing = replay_bundle(scratch.path() + "/no-such-file", scratch);
    CHECK(exited_with(missing, dtask::detail::replay_unusable));
    CHECK_MESSAGE(contains(missing.output, "cannot open it: No such file or directory"),
                  missing.output);
}

TEST_CASE("Replay.bundle_decoding_refuses_every_cut_and_round_trips" * doctest::timeout(60)) {
    auto bundle = bundle_of_throws_on_seven();
    bundle.failure = dtask::detail::ReproFailure::timeout;
    bundle.placed = "placed";
    bundle.shared = std::string(300, '\x7f');
    const std::string bytes = dtask::detail::encode_bundle(bundle);
    const auto back = dtask::detail::decode_bundle(std::as_bytes(std::span(bytes)));
    CHECK(back.job == bundle.job);
    CHECK(back.signature == bundle.signature);
    CHECK(back.subtask == 7);
    CHECK(back.failure == dtask::detail::ReproFailure::timeout);
    CHECK(back.worker == bundle.worker);
    CHECK(back.exception_type == bundle.exception_type);
    CHECK(back.error == bundle.error);
    CHECK(back.placed == bundle.placed);
    CHECK(back.shared == bundle.shared);
    CHECK(back.subtask_bytes == bundle.subtask_bytes);
    for (std::size_t size = 0; size < bytes.size(); ++size) {
        CHECK_THROWS_AS(dtask::detail::decode_bundle(std::as_bytes(std::span(bytes).first(size))),
                        dtask::Error);
    }
    // A length that claims more than the file holds is refused before anything is allocated.
    std::string huge = bytes;
    for (std::size_t i = 0; i < 8; ++i)
        huge[8 + 4 + 8 + 1 + i] = '\xff';  // the job name's length
    CHECK_THROWS_WITH_AS(dtask::detail::decode_bundle(std::as_bytes(std::span(huge))),
                         doctest::Contains("its job name needs 18446744073709551615 bytes"),
                         dtask::Error);
}

TEST_CASE("Replay.bundle_file_names_are_safe_and_distinct" * doctest::timeout(10)) {
    using dtask::detail::bundle_file_name;
    CHECK(bundle_file_name("tests.throws_on_seven", 7) ==
          "tests.throws_on_seven.subtask-7.dtask-replay");
    const std::string escaped = bundle_file_name("../../etc/passwd", 1);
    CHECK(escaped.find('/') == std::string::npos);
    CHECK(escaped.front() != '.');
    CHECK(bundle_file_name("a/b", 1) != bundle_file_name("a_b", 1));
    CHECK(bundle_file_name(std::string(1000, 'x'), 1).size() < 120);
    CHECK(bundle_file_name("", 3).find(".subtask-3.dtask-replay") != std::string::npos);
}

TEST_CASE("Replay.kept_batches_give_the_bytes_of_a_subtask_out" * doctest::timeout(10)) {
    // Two task frames, a 3-byte header then records "a", "bb", "ccc" (subtasks 0-2) and
    // "dddd" (subtask 3).
    auto frame = [](std::initializer_list<std::string> records) {
        std::string bytes = "hdr";
        dtask::detail::BatchWriter writer(bytes);
        for (const auto& record : records) {
            writer.begin();
            writer.out() += record;
            writer.end();
        }
        return zmq::message_t(bytes.data(), bytes.size());
    };
    dtask::detail::KeptBatches kept;
    kept.keep(0, 3, 3, frame({"a", "bb", "ccc"}));
    kept.keep(3, 1, 3, frame({"dddd"}));
    CHECK(kept.subtask(1) == "bb");
    CHECK(kept.subtask(3) == "dddd");
    CHECK_FALSE(kept.subtask(4).has_value());
    kept.returned(3, 1);  // the second batch is back: let go
    CHECK(kept.out() == 1);
    CHECK_FALSE(kept.subtask(3).has_value());
    kept.returned(0, 1);
    kept.returned(2, 1);  // subtask 1 is still out: the batch stays
    CHECK(kept.subtask(1) == "bb");
    kept.returned(1, 1);
    CHECK(kept.out() == 0);
    CHECK_FALSE(kept.subtask(1).has_value());
}

TEST_CASE("Replay.one_process_writes_a_bounded_number_of_bundles_per_job" * doctest::timeout(30)) {
    using dtask::detail::max_bundles_per_job;
    TempDir replays;
    auto bundle = bundle_of_throws_on_seven();
    bundle.job = "tests.replay.bounded";  // no other test writes bundles of it
    for (std::uint64_t index = 0; index < max_bundles_per_job; ++index) {
        bundle.subtask = index;
        CHECK(dtask::detail::write_bundle(replays.path(), bundle) ==
              replays.path() + "/" + dtask::detail::bundle_file_name(bundle.job, index));
    }
    bundle.subtask = max_bundles_per_job;
    CHECK_THROWS_WITH_AS(dtask::detail::write_bundle(replays.path(), bundle),
                         doctest::Contains("repro bundles of job 'tests.replay.bounded' already"),
                         dtask::Error);
    // A file written before may be written again, replaced whole.
    bundle.subtask = 0;
    bundle.error = "the second failure of subtask 0";
    const std::string path = dtask::detail::write_bundle(replays.path(), bundle);
    const std::string bytes = read_file(path);
    CHECK(dtask::detail::decode_bundle(std::as_bytes(std::span(bytes))).error == bundle.error);
    CHECK(files_in(replays.path()).size() == max_bundles_per_job);
}
