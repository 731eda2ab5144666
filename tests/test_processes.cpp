// Workers as separate processes: started by hand and joining over TCP, from another build,
// outliving a silent broker, dying with a host killed outright.

#include <sstream>

#include <dirent.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include "../examples/sum_squares_job.hpp"
#include "broker/local_workers.hpp"
#include "jobs.hpp"
#include "security/join_token.hpp"
#include "support.hpp"
#include "wire/protocol.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

TEST_CASE("Workers.started_by_hand_join_over_tcp_and_take_work" * doctest::timeout(120)) {
    dtask::Cluster cluster(listening_cluster());
    const std::string endpoint = tcp_endpoint(cluster);
    CHECK(endpoint.starts_with("tcp://127.0.0.1:"));
    Process worker(self_executable(), {"--dtask-worker", endpoint}, {},
                   worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const auto pids = run_within(cluster, worker_pids, std::uint64_t{50});
    CHECK(pids == std::set<std::int64_t>{worker.pid()});
    CHECK(run_within(cluster, squares, std::uint64_t{10'000}) == serial_squares(10'000));

    worker.signal(SIGTERM);  // a worker leaves cleanly on SIGTERM
    const auto status = worker.wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("Workers.pull_so_a_slow_worker_gets_fewer_subtasks" * doctest::timeout(120)) {
    dtask::Cluster cluster(listening_cluster());
    const std::string endpoint = tcp_endpoint(cluster);
    auto environment = worker_environment(cluster);
    Process fast_worker(self_executable(), {"--dtask-worker", endpoint}, {}, environment);
    environment.push_back("DTASK_TEST_SLOW=1");
    Process slow_worker(self_executable(), {"--dtask-worker", endpoint}, {}, environment);
    REQUIRE(cluster.wait_for_workers(2, 30s));
    // No backup copies: at the tail, a copy of the slow worker's last subtask on the fast
    // one would win, and the count would no longer say who pulled what.
    dtask::RunOptions no_backups;
    no_backups.backup_tasks = false;
    auto counts = run_within(cluster, counted_by_worker, std::uint64_t{400}, no_backups);
    CHECK(counts[fast_worker.pid()] + counts[slow_worker.pid()] == 400);
    CHECK(counts[slow_worker.pid()] >= 1);
    MESSAGE("fast worker ran " << counts[fast_worker.pid()] << " subtasks, slow worker "
                               << counts[slow_worker.pid()]);
    // 400 times less work per subtask: even on a loaded machine it takes far more of them.
    CHECK_MESSAGE(counts[fast_worker.pid()] > 3 * counts[slow_worker.pid()],
                  "fast worker ran " << counts[fast_worker.pid()] << ", slow worker "
                                     << counts[slow_worker.pid()]);
}

TEST_CASE("Workers.sum_squares_binary_serves_a_cluster" * doctest::timeout(120)) {
    using namespace sum_squares_example;
    dtask::Cluster cluster(listening_cluster());
    Process worker(examples_directory() + "/sum_squares", {"--dtask-worker", tcp_endpoint(cluster)},
                   {}, worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    auto handle = cluster.submit(sum_squares, Problem{1'000'000, 10});
    CHECK(to_string(get_within(handle)) == "333333833333500000");
}

TEST_CASE("Workers.from_another_build_are_refused_with_a_clear_error" * doctest::timeout(120)) {
    dtask::Cluster cluster(listening_cluster());
    TempDir logs;  // removed on every way out of the test
    const std::string log = logs.path() + "/other-build.log";
    Process worker(helpers_directory() + "/other_build_worker",
                   {"--dtask-worker", tcp_endpoint(cluster)}, log, worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    dtask::RunOptions options;
    options.worker_wait = 1500ms;
    auto handle = cluster.submit(squares, std::uint64_t{100}, options);
    REQUIRE(handle.wait_for(30s));
    try {
        handle.get();
        FAIL("no worker of this build serves the job: it must fail");
    } catch (const dtask::TimeoutError& e) {
        CHECK(e.reason() == dtask::TimeoutError::Reason::no_worker);
        const std::string what = e.what();
        CHECK(what.find("different definition of job 'tests.squares'") != std::string::npos);
        CHECK(what.find("unsigned int") != std::string::npos);   // the worker's subtask type
        CHECK(what.find("unsigned long") != std::string::npos);  // the client's
    }
    worker.signal(SIGTERM);
    REQUIRE(worker.wait_exit(10s).has_value());
    CHECK(read_file(log).find("different definition of job 'tests.squares'") != std::string::npos);
}

TEST_CASE("Workers.leave_when_the_broker_stays_silent" * doctest::timeout(60)) {
    // A ROUTER that never answers stands in for a broker that froze.
    zmq::context_t context(1);
    zmq::socket_t silent(context, zmq::socket_type::router);
    silent.set(zmq::sockopt::linger, 0);
    const auto keys = dtask::detail::new_curve_keys();
    silent.set(zmq::sockopt::curve_server, 1);
    silent.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    silent.bind("tcp://127.0.0.1:*");
    const std::string endpoint = silent.get(zmq::sockopt::last_endpoint);
    const auto token =
        dtask::detail::new_join_token(dtask::detail::TokenRole::worker, keys.public_key);
    Process worker(self_executable(), {"--dtask-worker", endpoint, "--dtask-give-up", "1"}, {},
                   {"DTASK_TOKEN=" + token.text()});

    // It introduced itself with a well-formed hello naming its jobs...
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t item{silent.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, 10s) == 1);
    REQUIRE(zmq::recv_multipart(silent, std::back_inserter(frames)));
    auto message = dtask::detail::protocol::parse(frames, 1);
    REQUIRE(message.command == dtask::detail::protocol::Command::hello);
    auto hello = dtask::detail::protocol::decode_body<dtask::detail::protocol::Hello>(
        message.body[0], "hello");
    CHECK(hello.role == dtask::detail::protocol::Role::worker);
    CHECK(hello.pid == worker.pid());
    CHECK(std::any_of(hello.jobs.begin(), hello.jobs.end(),
                      [](auto& job) { return job.first == "tests.squares"; }));

    // ...and, hearing nothing back, gives up and exits with status 4.
    const auto status = worker.wait_exit(20s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 4);
}

TEST_CASE("Workers.die_with_a_host_killed_outright" * doctest::timeout(60)) {
    Process host(helpers_directory() + "/host_that_waits", {}, "|");
    const auto line = host.read_line(30s);
    REQUIRE(line.has_value());
    std::istringstream pids_text(*line);
    std::vector<pid_t> pids;
    for (pid_t pid = 0; pids_text >> pid;)
        pids.push_back(pid);
    REQUIRE(pids.size() == 2);
    host.signal(SIGKILL);
    REQUIRE(host.wait_exit(10s).has_value());
    for (pid_t pid : pids)
        CHECK_MESSAGE(wait_gone(pid, 10s), "worker " << pid << " outlived its host");
}

TEST_CASE("Workers.a_local_worker_killed_25_times_after_joining_is_replaced_and_serves" *
          doctest::timeout(150)) {
    // Killed from outside each time after it joined and worked: 25 deaths in a row, past the
    // 20 after which the cluster used to stop restarting. Replacements slow down, never stop.
    // The backoff's cap is lowered so that the test waits 200 ms at most per death instead
    // of 30 s.
    auto options = small_cluster(1);
    options.respawn_max_delay = 200ms;
    dtask::Cluster cluster(options);
    dtask::RunOptions run;
    run.worker_wait = 20s;  // far above 200 ms: a job waits for the replacement
    for (int kill = 0; kill < 25; ++kill) {
        auto handle = cluster.submit(worker_pids, std::uint64_t{4}, run);
        const auto pids = get_within(handle, 60s);  // served: the worker joined and worked
        REQUIRE_MESSAGE(pids.size() == 1, "after " << kill << " kills");
        const auto pid = static_cast<pid_t>(*pids.begin());
        REQUIRE(::kill(pid, SIGKILL) == 0);
        REQUIRE(wait_gone(pid, 10s));
    }
    CHECK(run_within(cluster, squares, std::uint64_t{100}, run) == 100ULL * 101 * 201 / 6);
}

namespace {

/// Runs the beginner_mistakes host in `mode` (its environment variable) and returns the line
/// it printed: "failed after N ms: ERROR". Checks that it failed within 2 s and exited 0.
std::string mistake_reported(const std::string& mode, const TempDir& marks) {
    Process host(helpers_directory() + "/beginner_mistakes", {}, "|", {mode + "=" + marks.path()});
    const auto line = host.read_line(20s);
    REQUIRE_MESSAGE(line.has_value(), "the host did not fail within 20 s");
    MESSAGE(*line);
    REQUIRE(line->starts_with("failed after "));
    const unsigned long took = std::stoul(line->substr(13));
    CHECK_MESSAGE(took < 2000, "failed after " << took << " ms");
    const auto status = host.wait_exit(20s);
    REQUIRE(status.has_value());
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
    return *line;
}

/// How many times main() ran: the marks beginner_mistakes left in `marks`.
std::size_t runs_of_main(const TempDir& marks) {
    std::size_t runs = 0;
    if (DIR* dir = opendir(marks.path().c_str())) {
        while (dirent* entry = readdir(dir))
            runs += std::string(entry->d_name).starts_with("main-") ? 1 : 0;
        closedir(dir);
    }
    return runs;
}

}  // namespace

TEST_CASE("Workers.a_host_whose_main_forgot_init_is_told_before_any_worker_starts" *
          doctest::timeout(60)) {
    // The host never called dtask::init, so its local workers would run main() again: its
    // Cluster refuses at once, with the fix in its message, and starts no worker at all.
    TempDir marks;
    const auto line = mistake_reported("DTASK_TEST_NO_INIT", marks);
    CHECK(contains(line, "needs dtask::init(argc, argv) first thing in main()"));
    CHECK(runs_of_main(marks) == 1);
}

TEST_CASE("Workers.a_worker_whose_main_skips_init_fails_the_job_at_once_saying_so" *
          doctest::timeout(60)) {
    // The host called dtask::init, its local workers (started with arguments) did not: each
    // runs main() and must exit at its Cluster, before starting workers of its own, and the
    // host's job must fail at once (not after its 60 s worker_wait) with the fix in its message.
    TempDir marks;
    const auto line = mistake_reported("DTASK_TEST_INIT_WITHOUT_ARGUMENTS", marks);
    CHECK(contains(line,
                   "ran the host's main() instead of serving: call dtask::init(argc, "
                   "argv) first thing in main()"));
    // main() ran in the host and in its two local workers, once each: none was replaced, and
    // none started workers of its own.
    CHECK(runs_of_main(marks) <= 3);
}
