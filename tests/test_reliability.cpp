// Reliability (docs/reliability.md): faults of the processes, links and machines under a
// job (workers killed, frozen, stopped, slow or unable to start; links cut; brokers
// restarted or silent; no worker yet) and what dtask does about them: detection,
// replacement, requeue, backup copies, rejoining. The user's code is not at fault: the job
// ends with the right result, or past dtask's limits with a clear error. Faults in what the
// user hands dtask are Failures'.

#include <cstdlib>
#include <random>
#include <set>

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs.hpp"
#include "raw_peers.hpp"
#include "remote_network.hpp"
#include "support.hpp"
#include "wire/protocol.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

/// While DTASK_TEST_DIE_AT_START names a directory, a local worker started from this binary
/// leaves a mark there and dies before main(): a worker that cannot live.
[[maybe_unused]] const bool dies_at_start = [] {
    const char* directory = std::getenv("DTASK_TEST_DIE_AT_START");
    if (directory == nullptr || std::getenv("DTASK_PARENT_PID") == nullptr)
        return false;
    const std::string mark = std::string(directory) + "/started-" + std::to_string(getpid());
    const int fd = open(mark.c_str(), O_CREAT | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    std::_Exit(7);
}();

/// The marks dies_at_start left in `directory`: one per worker process started.
std::size_t workers_started(const std::string& directory) {
    std::size_t count = 0;
    if (DIR* dir = opendir(directory.c_str())) {
        while (dirent* entry = readdir(dir))
            count += std::string(entry->d_name).starts_with("started-") ? 1 : 0;
        closedir(dir);
    }
    return count;
}

}  // namespace

TEST_CASE("Reliability.local_worker_killed_mid_job_is_replaced_and_nothing_is_lost" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto before = cluster.local_worker_pids();
    REQUIRE(before.size() == 2);
    constexpr std::uint64_t n = 2000;
    auto handle = cluster.submit(slow, n);
    // Mid-job: results have come back, and the job is not over after the kill.
    REQUIRE(wait_until([&] { return handle.progress().done >= 50; }, 60s));
    kill(before[0], SIGKILL);
    REQUIRE_MESSAGE(handle.progress().done < n, "the job ended before the worker was killed");
    CHECK(get_within(handle) == n * (n - 1) / 2);
    // The cluster keeps its parallelism: a new worker took the dead one's place.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto after = cluster.local_worker_pids();
    CHECK(after.size() == 2);
    CHECK(std::find(after.begin(), after.end(), before[0]) == after.end());
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

// A host that forks (without exec) after its workers started shares their pidfds with the
// child. The broker must still see a worker die, reap it, and start another.
TEST_CASE("Reliability.worker_death_is_seen_after_the_host_forked" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const auto before = cluster.local_worker_pids();
    REQUIRE(before.size() == 1);
    int release[2];
    REQUIRE(pipe2(release, O_CLOEXEC) == 0);  // not inherited by the workers started later
    const pid_t forked = fork();
    if (forked == 0) {
        // The child of a threaded process: async-signal-safe calls only. It ends when the
        // test closes the pipe, or when the test process ends.
        close(release[1]);
        char byte = 0;
        [[maybe_unused]] auto got = read(release[0], &byte, 1);
        _exit(0);
    }
    close(release[0]);
    REQUIRE(forked > 0);
    kill(before[0], SIGKILL);
    // The replacement runs the next job; a broker stuck on the dead worker would not.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
    const auto after = cluster.local_worker_pids();
    CHECK(std::find(after.begin(), after.end(), before[0]) == after.end());
    close(release[1]);
    int status = 0;
    CHECK(waitpid(forked, &status, 0) == forked);
}

TEST_CASE("Reliability.workers_killed_again_and_again_do_not_change_the_result" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    constexpr std::uint64_t n = 20'000;
    // About 50 µs each, so that the job lasts long enough to lose a worker many times.
    auto handle = cluster.submit(busy, Busy{n, 50});
    std::mt19937 random(20261127);
    unsigned kills = 0;
    std::uint64_t next_kill_at = 1'500;
    const auto give_up = std::chrono::steady_clock::now() + 150s;
    while (!handle.wait_for(2ms)) {
        REQUIRE(std::chrono::steady_clock::now() < give_up);
        if (handle.progress().done < next_kill_at)
            continue;
        const auto pids = cluster.local_worker_pids();
        if (pids.empty())
            continue;  // both are being replaced
        kill(pids[random() % pids.size()], SIGKILL);
        ++kills;
        next_kill_at += 2'000;
    }
    MESSAGE(kills << " workers killed during the job");
    CHECK(kills >= 5);
    CHECK(handle.get() == n);  // each subtask counted once
    REQUIRE(cluster.wait_for_workers(2, 60s));
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.frozen_worker_is_replaced_and_its_late_results_count_once" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    TempDir attempts;
    constexpr std::uint64_t n = 8'000;
    auto handle = cluster.submit(troubled, n, Trouble{attempts.path(), n});  // no trouble
    REQUIRE(wait_until([&] { return handle.progress().done >= 200; }, 60s));
    const pid_t frozen = cluster.local_worker_pids().front();
    kill(frozen, SIGSTOP);
    // The broker notices the silence and gives the subtasks it held to the other worker.
    const bool dropped = wait_until([&] { return cluster.workers() == 1; }, 30s);
    kill(frozen, SIGCONT);  // its results for those subtasks now arrive late
    REQUIRE(dropped);
    const Tally tally = get_within(handle, 120s);
    CHECK(tally.count == n);
    CHECK(tally.sum == sum_below(n));
    // It rejoins by itself and serves again. Without backup copies (rendezvous_pids): the
    // other worker, done with its own subtasks at once after the meeting, would otherwise
    // get copies of those the rejoined one still runs (it is just back from SIGSTOP, and
    // slow on a loaded machine), and the copies' results would win over its own.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto pids = rendezvous_pids(cluster);
    CHECK_MESSAGE(pids.contains(frozen),
                  "the rejoined worker " << frozen << " ran none of " << pids.size() << " pid(s)");
}

TEST_CASE("Reliability.straggler_gets_a_backup_copy_and_the_first_result_wins" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    {
        TempDir attempts;
        dtask::RunOptions no_backups;
        no_backups.backup_tasks = false;
        const Tally tally =
            run_within(cluster, troubled, std::uint64_t{60},
                       Trouble{attempts.path(), 20, Trouble::sleep, 1, 300}, no_backups);
        CHECK(tally.count == 60);
        CHECK(tally.troubled_by_first_attempt);  // nobody else ran it
        CHECK(attempts_made(attempts.path(), 20) == 1);
    }
    // Last: the loser of the race below sleeps on, and this cluster takes no more jobs.
    {
        TempDir attempts;  // the first attempt at subtask 20 takes 5 s, any other a moment
        const Tally tally = run_within(cluster, troubled, std::uint64_t{60},
                                       Trouble{attempts.path(), 20, Trouble::sleep, 1, 5000});
        CHECK(tally.count == 60);
        CHECK(tally.sum == sum_below(60));
        CHECK_FALSE(tally.troubled_by_first_attempt);  // the backup copy won
        CHECK(attempts_made(attempts.path(), 20) == 2);
    }
}

TEST_CASE("Reliability.remote_worker_rejoins_a_host_killed_and_restarted_on_the_same_endpoint" *
          doctest::timeout(170)) {
    // The host keeps its keys in a directory, so that the worker's token holds for the next.
    TempDir keys;
    Process host(helpers_directory() + "/host_that_waits", {"--listen", keys.path()}, "|");
    const auto endpoint = host.read_line(30s);
    const auto token = host.read_line(30s);
    const auto client_token = host.read_line(30s);
    REQUIRE((endpoint.has_value() && token.has_value() && client_token.has_value()));
    Process worker(self_executable(), {"--dtask-worker", *endpoint}, {}, {"DTASK_TOKEN=" + *token});
    REQUIRE(host.read_line(60s) == std::optional<std::string>("joined"));
    host.kill_and_reap();  // the host vanishes without a word: the worker keeps looking for it
    auto options = small_cluster(0);
    options.listen.push_back(*endpoint);
    options.keys_directory = keys.path();
    dtask::Cluster second(options);
    REQUIRE(second.wait_for_workers(1, 60s));
    const auto pids = run_within(second, worker_pids, std::uint64_t{50});
    CHECK(pids == std::set<std::int64_t>{worker.pid()});
}

TEST_CASE("Reliability.remote_worker_exits_0_when_its_host_ends" * doctest::timeout(120)) {
    // The worker would try a silent broker for 10 minutes: only its dismissal ends it within
    // the wait below.
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    std::string endpoint;
    std::optional<Process> worker;
    {
        auto options = small_cluster(0);
        options.listen.push_back("tcp://127.0.0.1:*");
        dtask::Cluster cluster(options);
        endpoint = cluster.endpoints().back();
        auto environment = worker_environment(cluster);
        environment.push_back("DTASK_LOG=info");
        worker.emplace(
            self_executable(),
            std::vector<std::string>{"--dtask-worker", endpoint, "--dtask-give-up", "600"}, log,
            environment);
        REQUIRE(cluster.wait_for_workers(1, 30s));
        CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
    }  // the host ends normally
    CHECK_MESSAGE(ending_within(*worker, 60s) == "exit status 0", read_file(log));
    CHECK_MESSAGE(contains(read_file(log), "dismissed by the broker at " + endpoint),
                  read_file(log));
}

TEST_CASE("Reliability.partitioned_worker_is_replaced_and_rejoins_when_the_link_heals" *
          doctest::timeout(170)) {
    test_support::RemoteNetwork network;
    if (!network.why_not().empty()) {
        skip_test(network.why_not());
        return;
    }
    auto options = small_cluster(1);
    options.listen.push_back("tcp://" + network.host_address() + ":*");
    dtask::Cluster cluster(options);
    Process remote = network.start(
        self_executable(), {"--dtask-worker", cluster.endpoints().back(), "--dtask-give-up", "600"},
        {}, worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    TempDir attempts;
    constexpr std::uint64_t n = 8'000;
    auto handle = cluster.submit(troubled, n, Trouble{attempts.path(), n});  // no trouble
    REQUIRE(wait_until([&] { return handle.progress().done >= 200; }, 60s));
    REQUIRE(network.cut());  // the remote worker holds subtasks now
    // They finish elsewhere: re-run once the broker notices the silence, or as backup copies
    // at the tail of the job, whichever comes first.
    const Tally tally = get_within(handle, 120s);
    CHECK(tally.count == n);
    CHECK(tally.sum == sum_below(n));
    REQUIRE(wait_until([&] { return cluster.workers() == 1; }, 30s));
    REQUIRE(network.heal());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    // `ip netns exec` runs the worker in its own process: the pid is the worker's.
    CHECK(rendezvous_pids(cluster).contains(remote.pid()));
}

TEST_CASE("Reliability.worker_busy_in_a_long_map_is_kept_alive_by_its_pulse" *
          doctest::timeout(120)) {
    // One worker, whose only subtask sleeps in map for 3 s, more than twice the 1.25 s of
    // silence after which the broker drops a worker (the default heartbeats). Its pulse
    // thread speaks for it meanwhile: dropped, it would run the subtask a second time.
    dtask::Cluster cluster(small_cluster(1));
    TempDir attempts;
    dtask::RunOptions options;
    options.backup_tasks = false;  // a copy would be a second attempt too
    const Tally tally = run_within(cluster, troubled, std::uint64_t{1},
                                   Trouble{attempts.path(), 0, Trouble::sleep, 1, 3000}, options);
    CHECK(tally.count == 1);
    CHECK_MESSAGE(tally.troubled_by_first_attempt,
                  "the result came from a rerun: the broker dropped the busy worker");
    CHECK_MESSAGE(attempts_made(attempts.path(), 0) == 1,
                  "map ran " << attempts_made(attempts.path(), 0) << " times");
}

TEST_CASE("Reliability.worker_stopped_by_sigterm_during_a_batch_leaves_at_once" *
          doctest::timeout(120)) {
    // A remote worker (no pidfd) and a broker that would wait a minute of silence before
    // dropping it: only the worker's own word can make it leave sooner.
    auto options = small_cluster(0);
    options.listen.push_back("tcp://127.0.0.1:*");
    options.heartbeat_liveness = 240;
    dtask::Cluster cluster(options);
    const std::string endpoint = cluster.endpoints().back();
    TempDir gate;
    Process first(self_executable(), {"--dtask-worker", endpoint}, {}, worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    dtask::RunOptions run;
    run.max_attempts = 1;  // a spoiled attempt would fail the job
    auto handle = cluster.submit(gated, std::uint64_t{1}, Gate{gate.path(), 60'000}, run);
    // Its map runs now, and would wait a minute for the release.
    REQUIRE(wait_until([&] { return attempts_made(gate.path(), 0) == 1; }, 60s));
    first.signal(SIGTERM);
    const auto status = first.wait_exit(20s);
    REQUIRE_MESSAGE(status.has_value(), "the worker did not leave while its map ran");
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
                  "wait status " << *status << ", expected exit status 0");
    CHECK_MESSAGE(wait_until([&] { return cluster.workers() == 0; }, 20s),
                  "the broker did not hear the worker leave");
    // Its batch goes to the next worker, without counting an attempt.
    const int fd = open(gate_release(gate.path()).c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    Process second(self_executable(), {"--dtask-worker", endpoint}, {},
                   worker_environment(cluster));
    CHECK(get_within(handle, 60s) == std::set<std::int64_t>{second.pid()});
    CHECK(attempts_made(gate.path(), 0) == 2);
}

TEST_CASE("Reliability.local_workers_that_die_at_start_fail_jobs_at_once_and_are_retried_slowly" *
          doctest::timeout(120)) {
    // Local workers that die before main(), every time: a fork loop. After 5 such deaths in a
    // row the job waiting for a worker fails at once (not after its 60 s worker_wait), saying
    // why; the workers are still restarted, ever more slowly, never in a tight loop.
    TempDir starts;
    const ScopedEnvAppend dying("DTASK_TEST_DIE_AT_START", starts.path());
    const auto began = std::chrono::steady_clock::now();
    dtask::Cluster cluster(small_cluster(2));
    auto handle = cluster.submit(squares, std::uint64_t{10});  // worker_wait: 60 s
    const dtask::TimeoutError error = error_of<dtask::TimeoutError>(handle, 20s);
    const auto waited = std::chrono::steady_clock::now() - began;
    const std::string what = error.what();
    MESSAGE("failed after " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                            << " ms, " << workers_started(starts.path())
                            << " worker processes started");
    CHECK(error.reason() == dtask::TimeoutError::Reason::no_worker);
    CHECK(waited < 10s);
    CHECK_MESSAGE(contains(what, "local workers keep dying at start: "), what);
    CHECK_MESSAGE(contains(what, " before they joined; "), what);
    // Said once: by a notice to the waiting job, or by the failure, not both.
    std::size_t said = 0;
    for (auto at = what.find("at start"); at != std::string::npos;
         at = what.find("at start", at + 1))
        ++said;
    CHECK_MESSAGE(said == 1, what);
    CHECK_MESSAGE(contains(what,
                           "exited with status 7 before it joined (does main() call "
                           "dtask::init(argc, argv) first?)"),
                  what);
    // Restarts go on, slowly: more start, but not hundreds.
    const std::size_t at_failure = workers_started(starts.path());
    CHECK(wait_until([&] { return workers_started(starts.path()) > at_failure; }, 30s));
    CHECK(workers_started(starts.path()) < 30);
    // A job submitted now fails at once too.
    auto later = cluster.submit(squares, std::uint64_t{10});
    CHECK(contains(error_of<dtask::TimeoutError>(later, 5s).what(), "keep dying at start"));
}

TEST_CASE("Reliability.a_remote_client_hears_that_local_workers_cannot_start_not_why" *
          doctest::timeout(120)) {
    // How the host's local workers die names its processes and files: a client with a
    // credential (not the owner's) hears only that they cannot start.
    TempDir starts;
    const ScopedEnvAppend dying("DTASK_TEST_DIE_AT_START", starts.path());
    auto options = small_cluster(2);
    options.listen.push_back("tcp://127.0.0.1:*");
    dtask::Cluster cluster(options);
    dtask::ClientOptions remote;
    remote.token = cluster.client_token();
    dtask::Client client(cluster.endpoints().back(), remote);
    auto handle = client.submit(squares, std::uint64_t{10});  // worker_wait: 60 s
    const std::string what = error_of<dtask::TimeoutError>(handle, 60s).what();
    CHECK_MESSAGE(contains(what, "the host's local workers cannot start; the host's log says why"),
                  what);
    CHECK_MESSAGE(!contains(what, "exited with status"), what);
    CHECK_MESSAGE(!contains(what, "dtask::init"), what);
    // The owner's own client still reads why.
    auto own = cluster.submit(squares, std::uint64_t{10});
    CHECK(contains(error_of<dtask::TimeoutError>(own, 60s).what(), "keep dying at start"));
}

TEST_CASE("Reliability.job_waits_for_a_worker_and_runs_when_one_arrives" * doctest::timeout(120)) {
    // Submitted with no worker connected, a job waits (RunOptions::worker_wait, 60 s by
    // default) instead of failing at the broker's next look, and runs on the first worker.
    auto options = small_cluster(0);
    options.listen.push_back("tcp://127.0.0.1:*");
    dtask::Cluster cluster(options);
    const std::string endpoint = cluster.endpoints().back();
    // A client of its own, by hand, hears the broker's heartbeat on each tick, the tick on
    // which the broker also fails the jobs that waited too long for a worker.
    using namespace dtask::detail::protocol;
    zmq::context_t context(1);
    RawPeer ticks(context, endpoint, cluster.client_token());
    ticks.send(message_of(hello_header(), {hello_body(Role::client)}));

    std::promise<void> submitted;
    first_piece_made = &submitted;  // split runs after the submit went out
    auto handle = cluster.submit(signals_first_piece, std::uint64_t{100});
    REQUIRE(submitted.get_future().wait_for(30s) == std::future_status::ready);
    first_piece_made = nullptr;
    // The broker may have run the next tick before it read the submit, but not the one after
    // that: three ticks later it has looked at the job, with no worker, at least once.
    REQUIRE(ticks.until_heartbeats(3, 10s).has_value());
    Process worker(self_executable(), {"--dtask-worker", endpoint}, {},
                   worker_environment(cluster));
    CHECK(get_within(handle, 60s) == 100ULL * 99 / 2);
}

TEST_CASE("Reliability.worker_says_hello_again_on_a_new_connection_when_its_broker_falls_silent" *
          doctest::timeout(60)) {
    // A broker by hand welcomes a worker, then says nothing more: the worker must try again on
    // a fresh connection (a new routing id), not wait on the old one until it gives up.
    using namespace dtask::detail::protocol;
    FakeBroker broker;
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    broker.expect(Command::hello);
    const std::string first_id = broker.peer();
    // Welcomed with heartbeats every 100 ms, 3 missed meaning silence, then never a word.
    broker.send(first_id, message_of(header(Command::welcome, {100, 3, 0, 1})));
    std::optional<std::string> second_id;
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!second_id && std::chrono::steady_clock::now() < give_up) {
        auto message = broker.next(1s);  // heartbeats aside
        if (message) {
            REQUIRE_MESSAGE(message->command == Command::hello,
                            "a " << command_name(message->command) << " instead of a hello");
            second_id = broker.peer();
        }
    }
    REQUIRE_MESSAGE(second_id.has_value(), "the worker never said hello again");
    CHECK_MESSAGE(*second_id != first_id, "the worker said hello again on its old connection");
}
