// Checkpoints (RunOptions::checkpoint): the folded set's encoding and the write schedule
// directly; a host killed halfway that resumes with the exact result and runs again at most
// a window of subtasks; a run that failed resumed in process; and the checkpoints of another
// job, input, definition or job-wide data refused, never mixed in.

#include <atomic>
#include <cstdint>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

#include <dtask/detail/checkpoint.hpp>
#include <dtask/detail/folded_set.hpp>

#include "client/checkpoint_store.hpp"
#include "client/save_schedule.hpp"
#include "helpers/checkpointed_job.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using dtask::detail::FoldedSet;
using test_support::contains;

namespace {

// ---- jobs of the in-process tests ----

/// Job-wide data: map throws at subtask `fail_at` while DIR/fail exists, and appends each
/// index it runs to DIR/calls.
struct Trap {
    std::string dir;
    std::uint64_t fail_at = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(dir, fail_at);
    }
};

std::string trapped_map(const std::uint64_t& i, const Trap& trap) {
    {
        std::ofstream calls(trap.dir + "/calls", std::ios::app);
        calls << i << "\n";
    }
    if (i == trap.fail_at && access((trap.dir + "/fail").c_str(), F_OK) == 0)
        throw std::runtime_error("trapped at " + std::to_string(i));
    return std::to_string(i) + ",";
}

std::vector<std::uint64_t> numbers(const std::uint64_t& n, dtask::SplitHint) {
    std::vector<std::uint64_t> pieces(n);
    for (std::uint64_t i = 0; i < n; ++i)
        pieces[i] = i;
    return pieces;
}

std::string append(std::string text, std::string part) {
    text += part;
    return text;
}

const dtask::Job<std::string> trapped{"checkpoint_trapped", numbers, trapped_map, append};

/// The handle of the job whose reduce cancels it at its tenth fold, once the test has it;
/// the folds counted, set past ten to disarm it.
std::shared_future<dtask::JobHandle<std::string>> cancelled_by_reduce;
std::atomic<int> folds_before_cancel{0};

std::string append_and_cancel_at_ten(std::string text, std::string part) {
    text += part;
    if (++folds_before_cancel == 10) {
        auto handle = cancelled_by_reduce.get();
        handle.cancel();
    }
    return text;
}

const dtask::Job<std::string> self_cancelling{"checkpoint_self_cancelling", numbers, trapped_map,
                                              append_and_cancel_at_ten};
const dtask::Job<std::string> other_trapped{"checkpoint_other_trapped", numbers, trapped_map,
                                            append};

std::string expected_text(std::uint64_t n) {
    std::string text;
    for (std::uint64_t i = 0; i < n; ++i)
        text += std::to_string(i) + ",";
    return text;
}

/// How many times each index is in DIR/calls.
std::map<std::uint64_t, int> calls_in(const std::string& dir) {
    std::map<std::uint64_t, int> calls;
    std::ifstream in(dir + "/calls");
    std::uint64_t index = 0;
    while (in >> index)
        ++calls[index];
    return calls;
}

bool exists(const std::string& path) {
    return access(path.c_str(), F_OK) == 0;
}

void touch(const std::string& path) {
    std::ofstream(path) << "";
}

/// Runs SQL on a checkpoint file, as someone who edits it would.
void edit(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* message = nullptr;
    const int status = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    const std::string why = message != nullptr ? message : "";
    sqlite3_free(message);
    sqlite3_close(db);
    REQUIRE_MESSAGE(status == SQLITE_OK, why);
}

/// The message of the dtask::Error that running `job` with `checkpoint` throws.
std::string refusal(dtask::Cluster& cluster, const dtask::Job<std::string>& job, std::uint64_t n,
                    const Trap& trap, const std::string& checkpoint) {
    try {
        (void)test_support::run_within(cluster, job, n, trap,
                                       dtask::RunOptions{.checkpoint = checkpoint});
    } catch (const dtask::Error& e) {
        return e.what();
    }
    FAIL("the run with another run's checkpoint did not fail");
    return {};
}

}  // namespace

TEST_CASE("Checkpoint.folded_set_is_a_prefix_in_order_and_ranges_out_of_order" *
          doctest::timeout(10)) {
    FoldedSet set;
    for (std::uint64_t i = 0; i < 1000; ++i)
        CHECK(set.insert(i));
    CHECK(set.prefix() == 1000);
    CHECK(set.ranges().empty());
    CHECK(set.encode().size() == 3);  // prefix (2 bytes) and no range

    CHECK(set.insert(1005));
    CHECK(set.insert(1003));
    CHECK(set.insert(1004));
    CHECK_FALSE(set.insert(1004));
    CHECK_FALSE(set.insert(7));
    CHECK(set.ranges() == std::map<std::uint64_t, std::uint64_t>{{1003, 1006}});
    CHECK(set.folded_until(1003) == 1006);
    CHECK(set.folded_until(1001) == 1001);
    CHECK(set.insert(1000));
    CHECK(set.insert(1002));
    CHECK(set.insert(1001));  // joins the prefix and the range
    CHECK(set.prefix() == 1006);
    CHECK(set.ranges().empty());
    CHECK(set.count() == 1006);
}

TEST_CASE("Checkpoint.folded_set_round_trips_and_matches_a_plain_set" * doctest::timeout(10)) {
    std::mt19937_64 random(21);
    FoldedSet set;
    std::set<std::uint64_t> plain;
    for (int i = 0; i < 5000; ++i) {
        // Mostly near the front, as results come back.
        const std::uint64_t index = set.prefix() + random() % 64;
        CHECK(set.insert(index) == plain.insert(index).second);
    }
    const FoldedSet copy = FoldedSet::decode(set.encode());
    CHECK(copy.prefix() == set.prefix());
    CHECK(copy.ranges() == set.ranges());
    CHECK(copy.count() == plain.size());
    for (std::uint64_t i = 0; i < set.prefix() + 100; ++i)
        REQUIRE(copy.contains(i) == plain.contains(i));
}

TEST_CASE("Checkpoint.folded_set_refuses_malformed_bytes" * doctest::timeout(10)) {
    FoldedSet set;
    set.insert(0);
    set.insert(5);
    const std::string good = set.encode();
    CHECK(FoldedSet::decode(good).count() == 2);
    CHECK_THROWS_AS(FoldedSet::decode(good.substr(0, good.size() - 1)), dtask::Error);
    CHECK_THROWS_AS(FoldedSet::decode(good + "x"), dtask::Error);
    // A range that touches the prefix (gap 0), an empty range, a number of 11 bytes.
    CHECK_THROWS_AS(FoldedSet::decode(std::string("\x01\x01\x00\x02", 4)), dtask::Error);
    CHECK_THROWS_AS(FoldedSet::decode(std::string("\x01\x01\x02\x00", 4)), dtask::Error);
    CHECK_THROWS_AS(FoldedSet::decode(std::string(11, '\xff')), dtask::Error);
    // A huge count of ranges with no bytes behind it reserves nothing: it just ends.
    CHECK_THROWS_AS(FoldedSet::decode(std::string("\x00\xff\xff\xff\xff\x0f", 6)), dtask::Error);
}

TEST_CASE("Checkpoint.writes_once_per_interval_and_only_when_something_was_folded" *
          doctest::timeout(10)) {
    using dtask::detail::SaveSchedule;
    const auto start = SaveSchedule::Clock::time_point{} + 1h;
    SaveSchedule schedule(2s, start);
    CHECK(schedule.next_look() == start + 2s);
    CHECK_FALSE(schedule.due(start + 1s, 100000));  // however much is folded meanwhile
    CHECK_FALSE(schedule.due(start + 2s, 0));       // nothing new
    CHECK(schedule.due(start + 2s, 1));
    schedule.looked(start + 2100ms);
    CHECK(schedule.next_look() == start + 4100ms);
    CHECK_FALSE(schedule.due(start + 4s, 5));
    CHECK(schedule.due(start + 4100ms, 5));
    CHECK(SaveSchedule(0ms, start).interval() == SaveSchedule::min_interval);
    CHECK(SaveSchedule::due_at_end(1));
    CHECK_FALSE(SaveSchedule::due_at_end(0));
}

TEST_CASE("Checkpoint.content_hash_tells_inputs_apart" * doctest::timeout(10)) {
    using dtask::detail::content_hash;
    CHECK(content_hash("abc") == content_hash("abc"));
    CHECK(content_hash("abc") != content_hash("abd"));
    CHECK(content_hash(std::string(8, '\0')) != content_hash(std::string(9, '\0')));
    CHECK(contains(content_hash("12345678"), "(8 bytes)"));
}

TEST_CASE("Checkpoint.pieces_are_skipped_without_being_made" * doctest::timeout(10)) {
    std::uint64_t made = 0;
    auto range = dtask::pieces(100, [&made](std::uint64_t i) {
        ++made;
        return i;
    });
    dtask::detail::PieceSource<decltype(range), std::uint64_t> source(std::move(range));
    source.skip(40);
    std::string bytes;
    REQUIRE(source.next(bytes));
    CHECK(dtask::detail::load_from<std::uint64_t>(std::as_bytes(std::span(bytes)), "piece") == 40);
    CHECK(made == 1);
    source.skip(1000);  // past the end: stops there
    CHECK_FALSE(source.next(bytes));

    std::uint64_t calls = 0;
    auto generator = [&calls]() -> std::optional<std::uint64_t> {
        return calls < 10 ? std::optional(calls++) : std::nullopt;
    };
    dtask::detail::PieceSource<decltype(generator), std::uint64_t> generated(generator);
    generated.skip(4);
    bytes.clear();  // next() appends
    REQUIRE(generated.next(bytes));
    CHECK(dtask::detail::load_from<std::uint64_t>(std::as_bytes(std::span(bytes)), "piece") == 4);
}

// ---- real processes: a host killed with SIGKILL, and run again ----

namespace {

struct KilledRun {
    std::uint64_t result = 0;
    std::map<std::uint64_t, int> calls;
};

/// Runs checkpointed_host with DIR/hold in place until the checkpoint shows `folded_at_kill`
/// subtasks folded, kills it, then runs it again without the hold to its end.
KilledRun kill_and_resume(const std::string& order, std::uint64_t n, std::uint64_t from,
                          std::uint64_t folded_at_kill) {
    test_support::TempDir dir("checkpoint");
    const std::string checkpoint = dir.path() + "/job.checkpoint";
    const std::vector<std::string> args{order, dir.path(), checkpoint, std::to_string(n),
                                        std::to_string(from)};
    const std::string host = test_support::helpers_directory() + "/checkpointed_host";
    touch(dir.path() + "/hold");
    {
        test_support::Process first(host, args, "|");
        const bool reached = test_support::wait_until(
            [&] {
                return dtask::detail::CheckpointStore::folded_count(checkpoint) ==
                       std::optional<std::uint64_t>(folded_at_kill);
            },
            90s);
        REQUIRE_MESSAGE(reached, "the checkpoint never showed " << folded_at_kill << " folded");
        first.kill_and_reap();
    }
    REQUIRE(exists(checkpoint));
    unlink((dir.path() + "/hold").c_str());
    test_support::Process second(host, args, "|");
    const auto line = second.read_line(120s);
    REQUIRE(line.has_value());
    REQUIRE_MESSAGE(line->starts_with("result "), *line);
    CHECK(test_support::ending_within(second, 30s) == "exit status 0");
    CHECK_FALSE(exists(checkpoint));  // a job that succeeded removes it
    CHECK_FALSE(exists(checkpoint + "-wal"));
    return KilledRun{std::stoull(line->substr(7)), calls_in(dir.path())};
}

}  // namespace

TEST_CASE("Checkpoint.host_killed_halfway_resumes_exactly_in_subtask_order" *
          doctest::timeout(240)) {
    const std::uint64_t n = 200;
    const std::uint64_t half = n / 2;
    const KilledRun run = kill_and_resume("in_order", n, half, half);
    CHECK(run.result == checkpointed::expected_in_order(n));
    std::size_t twice = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto it = run.calls.find(i);
        REQUIRE_MESSAGE(it != run.calls.end(), "subtask " << i << " never ran");
        if (i < half)
            CHECK_MESSAGE(it->second == 1, "subtask " << i << " was folded before the kill");
        twice += it->second > 1 ? 1 : 0;
    }
    CHECK(twice <= checkpointed::window);
}

TEST_CASE("Checkpoint.host_killed_resumes_a_generator_in_arrival_order" * doctest::timeout(240)) {
    // Subtask 30 alone waits: every other one is folded before the kill, so the checkpoint
    // holds a prefix and a range, and the run after it makes only subtask 30 again.
    const std::uint64_t n = 120;
    const KilledRun run = kill_and_resume("any_order", n, 30, n - 1);
    CHECK(run.result == checkpointed::expected_sum(n));
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto it = run.calls.find(i);
        REQUIRE_MESSAGE(it != run.calls.end(), "subtask " << i << " never ran");
        CHECK_MESSAGE(it->second == (i == 30 ? 2 : 1), "subtask " << i << " ran " << it->second);
    }
}

// ---- in process: a failed run resumed, and other runs' checkpoints refused ----

TEST_CASE("Checkpoint.a_failed_run_resumes_where_it_stopped" * doctest::timeout(120)) {
    test_support::TempDir dir("checkpoint");
    const std::string checkpoint = dir.path() + "/job.checkpoint";
    const Trap trap{dir.path(), 30};
    dtask::Cluster cluster(test_support::small_cluster());
    const dtask::RunOptions options{
        .window = 4, .batch_size = 1, .backup_tasks = false, .checkpoint = checkpoint};
    touch(dir.path() + "/fail");
    {
        auto handle = cluster.submit(trapped, std::uint64_t{60}, trap, options);
        test_support::error_of<dtask::TaskError>(handle);
    }  // the run is released: it writes what it folded
    REQUIRE(exists(checkpoint));
    const auto folded = dtask::detail::CheckpointStore::folded_count(checkpoint);
    REQUIRE(folded.has_value());
    // Subtask order: a prefix of those before the one that failed; subtask 30 went out only
    // once 27 were folded (the window is 4), and the results of the others may still have
    // been on their way when the job failed.
    CHECK(*folded >= 27);
    CHECK(*folded <= 30);
    unlink((dir.path() + "/fail").c_str());
    CHECK(test_support::run_within(cluster, trapped, std::uint64_t{60}, trap, options) ==
          expected_text(60));
    const auto calls = calls_in(dir.path());
    for (std::uint64_t i = 0; i < *folded; ++i)
        CHECK_MESSAGE(calls.at(i) == 1, "subtask " << i << " ran again");
    CHECK_FALSE(exists(checkpoint));
}

TEST_CASE("Checkpoint.a_reduce_that_cancels_its_own_job_ends_it_and_the_run_resumes" *
          doctest::timeout(120)) {
    // The cancel comes from inside reduce, under the checkpoint's fold lock: the checkpoint is
    // closed once that reduce returns, with the ten folds in it.
    test_support::TempDir dir("checkpoint");
    const std::string checkpoint = dir.path() + "/job.checkpoint";
    const Trap trap{dir.path(), 1000};  // never trapped
    const dtask::RunOptions options{
        .window = 4, .batch_size = 1, .backup_tasks = false, .checkpoint = checkpoint};
    {
        dtask::Cluster cluster(test_support::small_cluster());
        std::promise<dtask::JobHandle<std::string>> handle_given;
        cancelled_by_reduce = handle_given.get_future().share();
        folds_before_cancel = 0;
        auto handle = cluster.submit(self_cancelling, std::uint64_t{60}, trap, options);
        handle_given.set_value(handle);
        test_support::error_of<dtask::CancelledError>(handle, std::chrono::seconds(60));
    }  // the Cluster waits for the reduce under way, which closes the checkpoint
    CHECK(dtask::detail::CheckpointStore::folded_count(checkpoint) ==
          std::optional<std::uint64_t>(10));
    folds_before_cancel = 11;  // disarmed
    dtask::Cluster cluster(test_support::small_cluster());
    CHECK(test_support::run_within(cluster, self_cancelling, std::uint64_t{60}, trap, options) ==
          expected_text(60));
    const auto calls = calls_in(dir.path());
    for (std::uint64_t i = 0; i < 10; ++i)
        CHECK_MESSAGE(calls.at(i) == 1, "subtask " << i << " ran again");
    CHECK_FALSE(exists(checkpoint));
}

TEST_CASE("Checkpoint.of_another_job_input_definition_or_data_is_refused" * doctest::timeout(120)) {
    test_support::TempDir dir("checkpoint");
    const std::string checkpoint = dir.path() + "/job.checkpoint";
    const Trap trap{dir.path(), 5};
    dtask::Cluster cluster(test_support::small_cluster());
    touch(dir.path() + "/fail");
    {
        auto handle = cluster.submit(trapped, std::uint64_t{20}, trap,
                                     dtask::RunOptions{.checkpoint = checkpoint});
        test_support::error_of<dtask::TaskError>(handle);
    }
    REQUIRE(exists(checkpoint));
    const auto folded = dtask::detail::CheckpointStore::folded_count(checkpoint);

    SUBCASE("another job") {
        const std::string why = refusal(cluster, other_trapped, 20, trap, checkpoint);
        CHECK(contains(why, checkpoint));
        CHECK(contains(why,
                       "its job is 'checkpoint_trapped', this run's is "
                       "'checkpoint_other_trapped'"));
    }
    SUBCASE("another input") {
        const std::string why = refusal(cluster, trapped, 21, trap, checkpoint);
        CHECK(contains(why, checkpoint));
        CHECK(contains(why, "its input is"));
    }
    SUBCASE("other job-wide data") {
        const std::string why = refusal(cluster, trapped, 20, Trap{dir.path(), 6}, checkpoint);
        CHECK(contains(why, "its job-wide data is"));
    }
    SUBCASE("another definition") {
        // As a build with another JobOptions::revision would have written it.
        edit(checkpoint,
             "UPDATE dtask_identity SET value = replace(value, 'revision 0', "
             "'revision 1') WHERE key = 'signature'");
        const std::string why = refusal(cluster, trapped, 20, trap, checkpoint);
        CHECK(contains(why, checkpoint));
        CHECK(contains(why, "its signature is"));
        CHECK(contains(why, "revision 1"));
    }
    // Refused means untouched: the checkpoint still holds what the failed run folded.
    CHECK(exists(checkpoint));
    CHECK(dtask::detail::CheckpointStore::folded_count(checkpoint) == folded);
}

TEST_CASE("Checkpoint.a_file_that_is_not_a_checkpoint_is_refused_and_left_alone" *
          doctest::timeout(60)) {
    test_support::TempDir dir("checkpoint");
    const std::string path = dir.path() + "/notes.txt";
    const std::string text = "these are someone's notes, not a checkpoint\n";
    std::ofstream(path) << text;
    dtask::Cluster cluster(test_support::small_cluster(1));
    const std::string why = refusal(cluster, trapped, 5, Trap{dir.path(), 99}, path);
    CHECK(contains(why, path));
    CHECK(contains(why, "not a dtask checkpoint"));
    CHECK(test_support::read_file(path) == text);
}

TEST_CASE("Checkpoint.one_file_is_not_used_by_two_runs_at_once" * doctest::timeout(60)) {
    test_support::TempDir dir("checkpoint");
    const std::string path = dir.path() + "/job.checkpoint";
    const dtask::detail::CheckpointStore first(path);
    CHECK_THROWS_WITH_AS(dtask::detail::CheckpointStore{path}, doctest::Contains("in use"),
                         dtask::Error);
}
