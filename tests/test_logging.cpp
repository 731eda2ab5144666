// Log levels, DTASK_LOG and the host's log handler, on real clusters and a real dtaskd.

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <signal.h>

#include "dtaskd.hpp"
#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

struct Line {
    dtask::LogLevel level;
    std::string component;
    std::string text;
};

/// The messages a handler received.
struct Received {
    std::mutex mutex;
    std::vector<Line> lines;

    dtask::LogHandler handler() {
        return [this](dtask::LogLevel level, std::string_view component, std::string_view text) {
            std::lock_guard lock(mutex);
            lines.push_back({level, std::string(component), std::string(text)});
        };
    }
    /// How many lines have all of `parts` in their text.
    std::size_t count(const std::vector<std::string>& parts) {
        std::lock_guard lock(mutex);
        std::size_t found = 0;
        for (const Line& line : lines) {
            bool all = true;
            for (const auto& part : parts)
                all = all && contains(line.text, part);
            found += all ? 1 : 0;
        }
        return found;
    }
    std::string transcript() {
        std::lock_guard lock(mutex);
        std::string text;
        for (const Line& line : lines)
            text += std::string(dtask::log_level_name(line.level)) + " " + line.component + ": " +
                    line.text + "\n";
        return text;
    }
};

}  // namespace

TEST_CASE("Logging.the_handler_receives_workers_and_jobs_as_info_lines" * doctest::timeout(120)) {
    Received received;
    dtask::set_log_level(dtask::LogLevel::info);
    dtask::set_log_handler(received.handler());
    {
        dtask::Cluster cluster(listening_cluster(1));
        Process remote(self_executable(), {"--dtask-worker", tcp_endpoint(cluster)}, {},
                       worker_environment(cluster));
        REQUIRE_MESSAGE(wait_until([&] { return received.count({" joined ("}) >= 2; }, 60s),
                        received.transcript());
        CHECK(received.count({"worker ", " joined (local"}) == 1);
        CHECK(received.count({"worker ", " joined (remote"}) == 1);

        CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
        CHECK(received.count({"job 'tests.squares' (", ") started: client "}) == 1);
        // The client tells the broker of the end with its next message (a heartbeat at most).
        CHECK_MESSAGE(
            wait_until(
                [&] {
                    return received.count({"job 'tests.squares' (", ") ended: done"}) == 1;
                },
                60s),
            received.transcript());

        remote.signal(SIGKILL);
        CHECK_MESSAGE(wait_until(
                          [&] {
                              return received.count({"worker ", " left ("}) == 1;
                          },
                          60s),
                      received.transcript());
        {
            std::lock_guard lock(received.mutex);
            for (const Line& line : received.lines) {
                if (contains(line.text, " joined (") || contains(line.text, " started: ") ||
                    contains(line.text, " ended: ") || contains(line.text, " left (")) {
                    CHECK(line.level == dtask::LogLevel::info);
                    CHECK(line.component == "broker");
                }
            }
        }

        // Removed: the next job's start, logged before its first subtask goes out, is not
        // handed to it.
        dtask::set_log_handler(nullptr);
        CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
        CHECK(received.count({"job 'tests.squares' (", ") started: "}) == 1);
    }
    dtask::set_log_level(dtask::LogLevel::warn);
}

TEST_CASE("Logging.dtaskd_logs_info_unless_DTASK_LOG_says_otherwise" * doctest::timeout(180)) {
    struct Case {
        std::vector<std::string> environment;
        bool info;            // info lines expected
        bool bad_value_told;  // the warning about DTASK_LOG's value expected
    };
    for (const Case& c : {Case{{}, true, false}, Case{{"DTASK_LOG=error"}, false, false},
                          Case{{"DTASK_LOG=loud"}, true, true}}) {
        CAPTURE(c.environment.size());
        Dtaskd broker({}, "tcp://127.0.0.1:*", {}, c.environment);
        {
            Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                           broker.worker_environment());
            dtask::Client client(broker.endpoint(), broker.client_options());
            REQUIRE(client.wait_for_workers(1, 60s));
            CHECK(run_within(client, squares, std::uint64_t{100}) == serial_squares(100));
        }
        // Everything it wrote, to its end: the lines of the join and the job came before.
        broker.process().signal(SIGTERM);
        const std::string said = broker.before_listening() + all_output(broker.process());
        CHECK(broker.process().wait_exit(30s).has_value());
        CAPTURE(said);
        CHECK(contains(said, "dtask broker: info: worker ") == c.info);
        CHECK(contains(said, " joined (remote, 1 worker(s) now)") == c.info);
        CHECK(contains(said, "dtask broker: info: job 'tests.squares' (") == c.info);
        const std::string told =
            "dtask log: DTASK_LOG='loud' names no log level (error, warn, info, debug, or quiet)";
        CHECK(contains(said, told) == c.bad_value_told);
        if (c.bad_value_told)
            CHECK(said.find(told) == said.rfind(told));  // once
    }
}
