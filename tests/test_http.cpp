// dtaskd's HTTP endpoint (--http): /metrics parsed by Prometheus' own parser and compared
// with the numbers of the jobs that ran, /api/status checked against its schema, many
// requests at once while a job runs, the rules beyond loopback, and `dtaskd status`.

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "dtaskd.hpp"
#include "jobs.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string python = DTASK_TEST_PYTHON;
const std::string checks = std::string(DTASK_TEST_SOURCE_DIR) + "/tests/http";

/// A dtaskd with --http on a free loopback port (plus `args`), and the port it serves on.
struct HttpDtaskd {
    explicit HttpDtaskd(std::vector<std::string> args = {"--http", "127.0.0.1:0"})
        : broker(std::move(args)) {
        const std::string prefix = "dtaskd: dashboard on http://";
        const auto line = broker.process().read_line(30s);
        REQUIRE_MESSAGE(line.has_value(), "dtaskd did not say where its dashboard is");
        REQUIRE_MESSAGE(line->starts_with(prefix), *line);
        const auto colon = line->find(':', prefix.size());
        host = line->substr(prefix.size(), colon - prefix.size());
        port = std::stoi(line->substr(colon + 1));
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port); }

    Dtaskd broker;
    std::string host;
    int port = 0;
};

/// An HttpDtaskd with `count` workers of this binary, and a client that has seen them join.
struct HttpDtaskdAtWork {
    explicit HttpDtaskdAtWork(int count) {
        workers.reserve(count);
        for (int i = 0; i < count; ++i)
            workers.emplace_back(self_executable(),
                                 std::vector<std::string>{"--dtask-worker", http.broker.endpoint()},
                                 std::string{}, http.broker.worker_environment());
        REQUIRE(client.wait_for_workers(count, 60s));
    }

    HttpDtaskd http;
    std::vector<Process> workers;
    dtask::Client client{http.broker.endpoint(), http.broker.client_options()};
};

httplib::Result get(int port, const std::string& path, const std::string& token = {}) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!token.empty())
        headers.emplace("Authorization", "Bearer " + token);
    return client.Get(path, headers);
}

std::string body_of(int port, const std::string& path) {
    const auto result = get(port, path);
    REQUIRE_MESSAGE(result, "GET " << path << " failed: " << httplib::to_string(result.error()));
    REQUIRE_MESSAGE(result->status == 200, path << ": " << result->status << " " << result->body);
    return result->body;
}

/// Polls /api/status until `holds(status)`, at most 60 s (the loop publishes every 250 ms).
template <class Holds>
nlohmann::json status_when(int port, Holds&& holds) {
    const auto deadline = Clock::now() + 60s;
    nlohmann::json status;
    while (Clock::now() < deadline) {
        status = nlohmann::json::parse(body_of(port, "/api/status"));
        if (holds(status))
            return status;
        std::this_thread::sleep_for(50ms);  // a poll's pace, not a synchronisation
    }
    FAIL("the status never reached the expected state; it was:\n" << status.dump(2));
    return status;
}

/// Runs a check script of tests/http on `text` (written to a file); its output if it fails.
void check_with_python(const std::string& script, const std::string& text,
                       const std::vector<std::string>& args = {}) {
    TempDir dir("dtask-http");
    const std::string file = dir.path() + "/answer";
    std::ofstream(file) << text;
    std::vector<std::string> all{checks + "/" + script, file};
    all.insert(all.end(), args.begin(), args.end());
    Process check(python, all, "|&");
    const std::string output = all_output(check, 60s);
    const auto status = check.wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 0), script << ":\n" << output);
}

}  // namespace

TEST_CASE("Http.metrics_equal_the_numbers_of_the_jobs_that_ran" * doctest::timeout(180)) {
    HttpDtaskdAtWork at_work(2);
    auto& http = at_work.http;
    auto& client = at_work.client;
    // No backup copies: each subtask's result then comes back exactly once.
    const dtask::RunOptions once{.backup_tasks = false};
    CHECK(client.submit(squares, std::uint64_t{20'000}, once).get() == serial_squares(20'000));
    CHECK_THROWS_AS(client.submit(throws_on_seven, std::uint64_t{10}, once).get(),
                    dtask::TaskError);
    status_when(http.port, [](const nlohmann::json& status) {
        return status["jobs"].size() == 2 && status["jobs"][1]["state"] == "failed";
    });
    // throws_on_seven's 10 subtasks: 7 failed; of the others, those whose results came back
    // before the failure are done (the rest ran on a worker too late, or never).
    const std::string metrics = body_of(http.port, "/metrics");
    check_with_python("check_metrics.py", metrics,
                      {"dtask_subtasks_failed_total=1", "dtask_subtasks_retried_total=0",
                       "dtask_backup_copies_total=0", "dtask_workers=2", "dtask_jobs=0",
                       "dtask_queued_subtasks=0", "dtask_batch_map_seconds_count=>0",
                       "dtask_bytes_received_total{role=\"worker\"}=>0",
                       "dtask_bytes_received_total{role=\"client\"}=>0",
                       "dtask_bytes_sent_total{role=\"worker\"}=>0",
                       "dtask_bytes_sent_total{role=\"client\"}=>0"});
    // Done: all of squares, and of throws_on_seven what its status says came back.
    const auto status = nlohmann::json::parse(body_of(http.port, "/api/status"));
    const std::uint64_t failed_done = status["jobs"][1]["done"];
    CHECK(failed_done <= 9);
    check_with_python("check_metrics.py", metrics,
                      {"dtask_subtasks_done_total=" + std::to_string(20'000 + failed_done)});
    std::uint64_t by_workers = 0;
    for (const auto& worker : status["workers"])
        by_workers += worker["subtasks_done"].get<std::uint64_t>();
    // A worker's count has the results that came after their job failed too.
    CHECK(by_workers >= 20'000 + failed_done);
    CHECK(by_workers <= 20'000 + 10);
}

TEST_CASE("Http.status_follows_its_schema" * doctest::timeout(180)) {
    HttpDtaskdAtWork at_work(1);
    auto& http = at_work.http;
    auto& client = at_work.client;
    CHECK(client.submit(squares, std::uint64_t{5'000}).get() == serial_squares(5'000));
    CHECK_THROWS_AS(client.submit(throws_on_seven, std::uint64_t{10}).get(), dtask::TaskError);
    const auto status = status_when(http.port, [](const nlohmann::json& s) {
        return s["jobs"].size() == 2 && s["jobs"][1]["state"] == "failed";
    });
    check_with_python("check_status.py", status.dump());
    CHECK(status["workers"].size() == 1);
    CHECK(status["workers"][0]["local"] == false);
    const auto& done = status["jobs"][0];
    CHECK(done["name"] == "tests.squares");
    CHECK(done["state"] == "done");
    CHECK(done["done"] == 5'000);
    CHECK(done["total"] == 5'000);
    CHECK(done["error"].is_null());
    const auto& failed = status["jobs"][1];
    CHECK(failed["name"] == "tests.throws_on_seven");
    CHECK_MESSAGE(failed["error"].get<std::string>().find("bad input 7") != std::string::npos,
                  failed.dump());
    CHECK(!status["stream"].empty());
    std::vector<std::string> kinds;
    for (const auto& event : status["events"])
        kinds.push_back(event["kind"]);
    CHECK(kinds == std::vector<std::string>{"worker_joined", "job_started", "job_done",
                                            "job_started", "job_failed"});
    // The page is served from the binary.
    CHECK(body_of(http.port, "/").find("dtask dashboard") != std::string::npos);
}

TEST_CASE("Http.a_hundred_requests_at_once_leave_a_running_job_exact" * doctest::timeout(180)) {
    HttpDtaskdAtWork at_work(2);
    auto& http = at_work.http;
    auto& client = at_work.client;
    auto handle =
        client.submit(squares, std::uint64_t{300'000}, dtask::RunOptions{.batch_size = 1});
    std::atomic<int> answered{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 100; ++i)
        readers.emplace_back([&, i] {
            const char* paths[] = {"/metrics", "/api/status", "/"};
            const auto result = get(http.port, paths[i % 3]);
            if (result && result->status == 200 && !result->body.empty())
                ++answered;
        });
    for (auto& reader : readers)
        reader.join();
    CHECK(answered == 100);
    REQUIRE(handle.wait_for(120s));
    CHECK(handle.get() == serial_squares(300'000));
}

TEST_CASE("Http.beyond_loopback_needs_the_option_and_then_the_token" * doctest::timeout(120)) {
    const auto refused =
        run_dtaskd({"--insecure-tcp", "--listen", "tcp://127.0.0.1:*", "--http", "0.0.0.0:0"});
    CHECK(refused.status == 1);
    CHECK_MESSAGE(refused.output.find("is not loopback") != std::string::npos, refused.output);
    CHECK_MESSAGE(refused.output.find("--http-allow-remote") != std::string::npos, refused.output);
    CHECK(refused.output.find("listening on") == std::string::npos);

    HttpDtaskd http({"--http", "0.0.0.0:0", "--http-allow-remote"});
    const std::string token = read_file(http.broker.keys() + "/monitor.token");
    const std::string bare = token.substr(0, token.find('\n'));
    CHECK(bare.starts_with("DTASK-MONITOR-"));
    // The page, which holds no data, is served to anyone; it takes the token from its address.
    const auto page = get(http.port, "/");
    REQUIRE(page);
    CHECK(page->status == 200);
    CHECK(page->body.find("DTASK-MONITOR") == std::string::npos);
    for (const char* path : {"/api/status", "/metrics"}) {
        const auto anonymous = get(http.port, path);
        REQUIRE(anonymous);
        CHECK(anonymous->status == 401);
        CHECK(anonymous->has_header("WWW-Authenticate"));
        CHECK(anonymous->body.find("DTASK-MONITOR") == std::string::npos);
        const auto wrong = get(http.port, path, "DTASK-MONITOR-" + std::string(64, '0'));
        REQUIRE(wrong);
        CHECK(wrong->status == 401);
        CHECK_FALSE(wrong->has_header("WWW-Authenticate"));  // no prompt over the page's banner
        const auto other_token = get(http.port, path, http.broker.token("client"));
        REQUIRE(other_token);
        CHECK(other_token->status == 401);
        const auto right = get(http.port, path, bare);
        REQUIRE(right);
        CHECK(right->status == 200);
    }
    // dtaskd status says what it needs, and reads with it.
    const auto without = run_dtaskd({"status", http.address()});
    CHECK(without.status == 1);
    CHECK_MESSAGE(without.output.find("needs the monitoring token") != std::string::npos,
                  without.output);
    const auto with = run_dtaskd(
        {"status", http.address(), "--token-file", http.broker.keys() + "/monitor.token"});
    CHECK_MESSAGE(with.status == 0, with.output);
}

TEST_CASE("Http.dtaskd_status_prints_workers_jobs_and_events" * doctest::timeout(120)) {
    HttpDtaskdAtWork at_work(1);
    auto& http = at_work.http;
    auto& client = at_work.client;
    CHECK(client.submit(squares, std::uint64_t{3'000}).get() == serial_squares(3'000));
    status_when(http.port, [](const nlohmann::json& s) {
        return s["jobs"].size() == 1 && s["jobs"][0]["state"] == "done";
    });
    const auto result = run_dtaskd({"status", http.address()});
    CHECK_MESSAGE(result.status == 0, result.output);
    for (const char* expected :
         {"Workers: 1", "remote", "Jobs: 1", "tests.squares", "3000/3000 (100%)",
          "Recent events:", "joined", "is done: 3000 subtasks"})
        CHECK_MESSAGE(result.output.find(expected) != std::string::npos, expected << " is not in:\n"
                                                                                  << result.output);
}

TEST_CASE("Http.dtaskd_status_fails_clearly_without_a_broker" * doctest::timeout(60)) {
    // A port that was free a moment ago and that nothing listens on now: a connection to it
    // is refused at once.
    int port = 0;
    {
        const int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(probe >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        REQUIRE(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size) == 0);
        port = ntohs(address.sin_port);
        close(probe);
    }
    const auto result = run_dtaskd({"status", "127.0.0.1:" + std::to_string(port)});
    CHECK(result.status == 1);
    CHECK_MESSAGE(result.output.find("cannot reach a dtaskd at http://127.0.0.1:" +
                                     std::to_string(port)) != std::string::npos,
                  result.output);
    const auto usage = run_dtaskd({"status", "not-an-address:x"});
    CHECK(usage.status == 2);
    CHECK_MESSAGE(usage.output.find("not a number") != std::string::npos, usage.output);
}

TEST_CASE("Http.an_embedded_cluster_serves_its_status" * doctest::timeout(120)) {
    dtask::ClusterOptions options;
    options.local_workers = 2;
    options.http = "127.0.0.1:0";
    dtask::Cluster cluster(options);
    REQUIRE(cluster.http_url().starts_with("http://127.0.0.1:"));
    CHECK(cluster.monitor_token().empty());
    const int port = std::stoi(cluster.http_url().substr(cluster.http_url().rfind(':') + 1));
    REQUIRE(cluster.wait_for_workers(2, 60s));
    CHECK(cluster.submit(squares, std::uint64_t{4'000}, dtask::RunOptions{.backup_tasks = false})
              .get() == serial_squares(4'000));
    const auto status = status_when(port, [](const nlohmann::json& s) {
        return s["jobs"].size() == 1 && s["jobs"][0]["state"] == "done" && s["workers"].size() == 2;
    });
    CHECK(status["workers"][0]["local"] == true);
    check_with_python("check_metrics.py", body_of(port, "/metrics"),
                      {"dtask_subtasks_done_total=4000", "dtask_workers=2", "dtask_jobs=0"});

    // Beyond loopback only when allowed, and then with a token of its own.
    options.http = "0.0.0.0:0";
    options.local_workers = 0;
    CHECK_THROWS_WITH_AS(dtask::Cluster{options}, doctest::Contains("--http-allow-remote"),
                         dtask::Error);
    options.http_allow_remote = true;
    dtask::Cluster remote(options);
    const int remote_port = std::stoi(remote.http_url().substr(remote.http_url().rfind(':') + 1));
    CHECK(remote.monitor_token().starts_with("DTASK-MONITOR-"));
    CHECK(get(remote_port, "/metrics")->status == 401);
    CHECK(get(remote_port, "/metrics", remote.monitor_token())->status == 200);
}
