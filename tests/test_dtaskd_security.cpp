// dtaskd's keys and join tokens, as users meet them: workers and clients refused without a
// token, with another broker's, with a rotated one or with the other role's; rotation that
// drops running holders; keys only their owner can reach; one dtaskd per keys directory;
// plain TCP only by name; --version and --help.

#include <chrono>
#include <string>

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include "dtaskd.hpp"
#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

/// No token from the environment the tests run in, whatever it holds.
const std::vector<std::string> no_token = {"DTASK_TOKEN=", "DTASK_TOKEN_FILE="};

std::string sum_squares() {
    return examples_directory() + "/sum_squares";
}

/// Runs a process to its end (bounded); its exit status (-1 if killed) and all its output.
CommandResult run_to_end(const std::string& program, const std::vector<std::string>& args,
                         const std::vector<std::string>& environment) {
    Process process(program, args, "|&", environment);
    CommandResult result;
    result.output = all_output(process, 90s);
    const auto status = process.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), program << " did not exit; it said:\n" << result.output);
    result.status = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return result;
}

/// A worker of sum_squares for `endpoint` with `environment`, run until it exits by itself.
CommandResult worker_run(const std::string& endpoint, const std::vector<std::string>& environment) {
    return run_to_end(sum_squares(), {"--dtask-worker", endpoint}, environment);
}

/// A client (sum_squares --connect) with `environment`, run to its end.
CommandResult client_run(const std::string& endpoint, const std::vector<std::string>& environment) {
    return run_to_end(sum_squares(), {"--connect", endpoint, "--n", "1000", "--wait", "20"},
                      environment);
}

/// A well-formed token of another keys directory: of another broker.
std::string foreign_token(const std::string& role) {
    TempDir other("dtaskd-other-keys");
    const auto result = run_dtaskd({"tokens", "--keys", other.path()});
    REQUIRE_MESSAGE(result.status == 0, result.output);
    const std::string token = token_in(result.output, role);
    REQUIRE(token.starts_with("DTASK-1-"));
    return token;
}

mode_t mode_of(const std::string& path) {
    struct stat info {};
    REQUIRE_MESSAGE(lstat(path.c_str(), &info) == 0, path);
    return info.st_mode & 07777;
}

/// The error a job of `client` ends with (it must fail with a TransportError).
std::string refusal_of_client(dtask::Client& client) {
    auto handle = client.submit(squares, std::uint64_t{10});
    return error_of<dtask::TransportError>(handle, 60s).what();
}

}  // namespace

TEST_CASE("Dtaskd.worker_without_a_token_is_told_to_set_DTASK_TOKEN" * doctest::timeout(120)) {
    Dtaskd broker;
    const auto worker = worker_run(broker.endpoint(), no_token);
    CHECK(worker.status == 2);
    CHECK_MESSAGE(contains(worker.output, "DTASK_TOKEN"), worker.output);
}

TEST_CASE("Dtaskd.worker_with_another_brokers_token_exits_3" * doctest::timeout(120)) {
    Dtaskd broker;
    const auto worker = worker_run(broker.endpoint(), {"DTASK_TOKEN=" + foreign_token("worker")});
    CHECK(worker.status == 3);
    CHECK_MESSAGE(contains(worker.output, "another broker"), worker.output);
}

TEST_CASE("Dtaskd.worker_with_a_rotated_token_exits_3" * doctest::timeout(120)) {
    Dtaskd broker;
    const std::string old_token = broker.token("worker");
    const std::string new_token = broker.rotate("worker");
    CHECK(new_token != old_token);
    CHECK(new_token == broker.token("worker"));  // the file holds the new one
    const auto worker = worker_run(broker.endpoint(), {"DTASK_TOKEN=" + old_token});
    CHECK(worker.status == 3);
    CHECK_MESSAGE(contains(worker.output, "refused the join token"), worker.output);
}

TEST_CASE("Dtaskd.client_without_a_token_is_told_to_set_one" * doctest::timeout(120)) {
    Dtaskd broker;
    const auto client = client_run(broker.endpoint(), no_token);
    CHECK(client.status != 0);
    CHECK_MESSAGE(contains(client.output, "needs a client token"), client.output);
}

TEST_CASE("Dtaskd.client_with_another_brokers_token_is_refused" * doctest::timeout(120)) {
    Dtaskd broker;
    const auto client = client_run(broker.endpoint(), {"DTASK_TOKEN=" + foreign_token("client")});
    CHECK(client.status != 0);
    CHECK_MESSAGE(contains(client.output, "another broker"), client.output);
}

TEST_CASE("Dtaskd.client_with_a_rotated_token_is_refused" * doctest::timeout(120)) {
    Dtaskd broker;
    const std::string old_token = broker.token("client");
    broker.rotate("client");
    const auto client = client_run(broker.endpoint(), {"DTASK_TOKEN=" + old_token});
    CHECK(client.status != 0);
    CHECK_MESSAGE(contains(client.output, "refused the join token"), client.output);
}

TEST_CASE("Dtaskd.a_worker_token_cannot_submit_jobs" * doctest::timeout(120)) {
    Dtaskd broker;
    dtask::ClientOptions options;
    options.token = broker.token("worker");
    dtask::Client client(broker.endpoint(), options);
    const std::string why = refusal_of_client(client);
    CHECK_MESSAGE(contains(why, "its join token is a worker's: it cannot submit jobs"), why);
}

TEST_CASE("Dtaskd.a_client_token_cannot_serve" * doctest::timeout(120)) {
    Dtaskd broker;
    const auto worker = worker_run(broker.endpoint(), broker.client_environment());
    CHECK(worker.status == 3);
    CHECK_MESSAGE(contains(worker.output, "its join token is a client's"), worker.output);
    // And a worker with the right token is served: the refusal was the token's.
    Process good(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                 broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    CHECK(run_within(client, squares, std::uint64_t{50}) == serial_squares(50));
}

TEST_CASE("Dtaskd.rotating_the_worker_credential_drops_running_workers" * doctest::timeout(150)) {
    Dtaskd broker;
    Process old_worker(self_executable(), {"--dtask-worker", broker.endpoint()}, "|&",
                       broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));
    CHECK(run_within(client, worker_pids, std::uint64_t{20}) ==
          std::set<std::int64_t>{old_worker.pid()});

    const std::string new_token = broker.rotate("worker");
    // The running worker is refused at its next message, within about a heartbeat.
    const auto status = old_worker.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), "the worker of the rotated credential still runs");
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 3);
    const std::string said = all_output(old_worker, 5s);
    CHECK_MESSAGE(contains(said, "rotated"), said);

    // A worker with the new token joins and serves; the client's credential still holds.
    Process new_worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                       {"DTASK_TOKEN=" + new_token});
    CHECK(run_within(client, worker_pids, std::uint64_t{20}) ==
          std::set<std::int64_t>{new_worker.pid()});
}

TEST_CASE("Dtaskd.rotating_the_client_credential_fails_running_clients_jobs" *
          doctest::timeout(150)) {
    Dtaskd broker;
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client old_client(broker.endpoint(), broker.client_options());
    REQUIRE(old_client.wait_for_workers(1, 30s));
    auto endless = old_client.submit(busy, Busy{1'000'000, 1000});
    REQUIRE(wait_until([&] { return endless.progress().done >= 1; }, 60s));

    broker.rotate("client");
    const std::string why = error_of<dtask::TransportError>(endless, 60s).what();
    CHECK_MESSAGE(contains(why, "rotated"), why);
    // The worker's credential was not touched: a client with the new token is served.
    dtask::Client new_client(broker.endpoint(), broker.client_options());
    CHECK(run_within(new_client, squares, std::uint64_t{50}) == serial_squares(50));
}

TEST_CASE("Dtaskd.rotation_without_a_running_dtaskd_is_in_force_at_its_start" *
          doctest::timeout(120)) {
    TempDir keys("dtaskd-keys");
    const auto before = run_dtaskd({"tokens", "--keys", keys.path()});
    REQUIRE_MESSAGE(before.status == 0, before.output);
    const auto rotated = run_dtaskd({"rotate", "worker", "--keys", keys.path()});
    REQUIRE_MESSAGE(rotated.status == 0, rotated.output);
    const std::string old_token = token_in(before.output, "worker");
    const std::string new_token = token_in(rotated.output, "worker");
    CHECK(new_token != old_token);
    // The client's credential is untouched.
    CHECK(token_in(run_dtaskd({"tokens", "--keys", keys.path()}).output, "client") ==
          token_in(before.output, "client"));

    Dtaskd broker({}, "tcp://127.0.0.1:*", keys.path());
    CHECK(broker.token("worker") == new_token);
    CHECK(worker_run(broker.endpoint(), {"DTASK_TOKEN=" + old_token}).status == 3);
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   {"DTASK_TOKEN=" + new_token});
    dtask::Client client(broker.endpoint(), broker.client_options());
    CHECK(run_within(client, squares, std::uint64_t{50}) == serial_squares(50));
}

TEST_CASE("Dtaskd.control_socket_answers_nothing_but_its_requests" * doctest::timeout(60)) {
    Dtaskd broker;
    const std::string worker_token = broker.token("worker");
    zmq::context_t context;
    zmq::socket_t control(context, zmq::socket_type::req);
    control.set(zmq::sockopt::linger, 0);
    control.set(zmq::sockopt::rcvtimeo, 10'000);  // a bound on the wait, not a delay
    control.connect("ipc://" + broker.keys() + "/control");
    auto ask = [&](const std::string& request) {
        control.send(zmq::buffer(request), zmq::send_flags::none);
        zmq::message_t reply;
        REQUIRE_MESSAGE(control.recv(reply), "no answer to '" << request << "'");
        return reply.to_string();
    };
    CHECK(ask("rotate everyone").starts_with("error "));
    CHECK(ask("rotate worker\nrotate client").starts_with("error "));
    CHECK(broker.token("worker") == worker_token);  // nothing rotated
    // A request longer than the socket takes is dropped with its connection, unanswered;
    // dtaskd goes on serving.
    zmq::socket_t flood(context, zmq::socket_type::req);
    flood.set(zmq::sockopt::linger, 0);
    flood.connect("ipc://" + broker.keys() + "/control");
    flood.send(zmq::buffer(std::string(100'000, 'x')), zmq::send_flags::none);
    const std::string reply = ask("rotate worker");
    CHECK(reply.starts_with("ok DTASK-1-W-"));
    CHECK(reply.substr(3) == broker.token("worker"));
}

TEST_CASE("Dtaskd.refuses_a_keys_directory_others_can_read" * doctest::timeout(60)) {
    TempDir keys("dtaskd-keys");
    REQUIRE(chmod(keys.path().c_str(), 0755) == 0);
    const auto result = run_dtaskd({"--listen", "tcp://127.0.0.1:*", "--keys", keys.path()});
    CHECK(result.status != 0);
    CHECK_MESSAGE(contains(result.output, "'" + keys.path() + "' has mode 0755"), result.output);
    CHECK_MESSAGE(contains(result.output, "chmod 700 '" + keys.path() + "'"), result.output);
    CHECK_MESSAGE(!contains(result.output, "listening on"), result.output);
}

TEST_CASE("Dtaskd.refuses_a_key_file_others_can_read" * doctest::timeout(60)) {
    TempDir keys("dtaskd-keys");
    REQUIRE(run_dtaskd({"tokens", "--keys", keys.path()}).status == 0);
    const std::string file = keys.path() + "/worker.token";
    REQUIRE(chmod(file.c_str(), 0644) == 0);
    const auto result = run_dtaskd({"--listen", "tcp://127.0.0.1:*", "--keys", keys.path()});
    CHECK(result.status != 0);
    CHECK_MESSAGE(contains(result.output, "'" + file + "' has mode 0644"), result.output);
    CHECK_MESSAGE(contains(result.output, "chmod 600 '" + file + "'"), result.output);
    CHECK_MESSAGE(!contains(result.output, "listening on"), result.output);
    // Printing the tokens is refused too: they would be printed from a file others can read.
    CHECK(run_dtaskd({"tokens", "--keys", keys.path()}).status != 0);
}

TEST_CASE("Dtaskd.makes_its_default_keys_owner_only" * doctest::timeout(60)) {
    TempDir home("dtaskd-home");
    const std::string config = home.path() + "/.config";
    const std::string keys = config + "/dtaskd";
    struct Cleanup {  // TempDir removes files, not the directories made here
        std::string config, keys;
        ~Cleanup() {
            for (const char* name :
                 {"broker.key", "worker.token", "client.token", "monitor.token", "lock"})
                unlink((keys + "/" + name).c_str());
            rmdir(keys.c_str());
            rmdir(config.c_str());
        }
    } cleanup{config, keys};
    const auto result = run_dtaskd({"tokens"}, {"HOME=" + home.path()});
    REQUIRE_MESSAGE(result.status == 0, result.output);
    CHECK(mode_of(config) == 0700);
    CHECK(mode_of(keys) == 0700);
    for (const char* name : {"broker.key", "worker.token", "client.token", "monitor.token", "lock"})
        CHECK_MESSAGE(mode_of(keys + "/" + name) == 0600, name);
    // What 'tokens' printed is what the files hold, for DTASK_TOKEN_FILE on this machine.
    CHECK(token_in(result.output, "worker") + "\n" == read_file(keys + "/worker.token"));
    CHECK(token_in(result.output, "client") + "\n" == read_file(keys + "/client.token"));
    CHECK(token_in(result.output, "worker").starts_with("DTASK-1-W-"));
    CHECK(token_in(result.output, "client").starts_with("DTASK-1-C-"));
}

TEST_CASE("Dtaskd.control_socket_is_owner_only_and_goes_with_dtaskd" * doctest::timeout(60)) {
    TempDir keys("dtaskd-keys");
    {
        Dtaskd broker({}, "tcp://127.0.0.1:*", keys.path());
        CHECK(mode_of(keys.path() + "/control") == 0600);
        broker.process().signal(SIGTERM);
        const auto status = broker.process().wait_exit(30s);
        REQUIRE(status.has_value());
        CHECK(WEXITSTATUS(*status) == 0);
    }
    CHECK(access((keys.path() + "/control").c_str(), F_OK) != 0);
}

TEST_CASE("Dtaskd.a_second_dtaskd_on_the_same_keys_refuses" * doctest::timeout(60)) {
    Dtaskd first;
    const auto second = run_dtaskd({"--listen", "tcp://127.0.0.1:*", "--keys", first.keys()});
    CHECK(second.status != 0);
    CHECK_MESSAGE(contains(second.output,
                           "another broker (a dtaskd or a Cluster) runs with the keys directory '" +
                               first.keys() + "'"),
                  second.output);
    // The first one goes on, with its keys as they were.
    Process worker(self_executable(), {"--dtask-worker", first.endpoint()}, {},
                   first.worker_environment());
    dtask::Client client(first.endpoint(), first.client_options());
    CHECK(run_within(client, squares, std::uint64_t{50}) == serial_squares(50));
}

TEST_CASE("Dtaskd.insecure_tcp_warns_and_serves_plain_peers" * doctest::timeout(120)) {
    // DTASK_LOG=quiet silences the library's warnings, never this one.
    Dtaskd broker({"--insecure-tcp"}, "tcp://127.0.0.1:*", {}, {"DTASK_LOG=quiet"});
    CHECK_MESSAGE(contains(broker.before_listening(), "WARNING: --insecure-tcp"),
                  broker.before_listening());
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint(), "--dtask-insecure-tcp"},
                   {}, no_token);
    dtask::ClientOptions options;
    options.insecure_tcp = true;
    dtask::Client client(broker.endpoint(), options);
    CHECK(run_within(client, squares, std::uint64_t{50}) == serial_squares(50));
}

TEST_CASE("Dtaskd.a_worker_with_a_token_at_an_insecure_dtaskd_exits_3" * doctest::timeout(120)) {
    Dtaskd broker({"--insecure-tcp"});
    const auto worker = worker_run(broker.endpoint(), {"DTASK_TOKEN=" + foreign_token("worker")});
    CHECK(worker.status == 3);
    // Which side notices the mismatch first is a race: the worker's reason names either.
    CHECK_MESSAGE((contains(worker.output, "another security mechanism") ||
                   contains(worker.output, "or the broker runs with plain TCP")),
                  worker.output);
}

TEST_CASE("Dtaskd.version_help_and_usage_errors" * doctest::timeout(60)) {
    const auto version = run_dtaskd({"--version"});
    CHECK(version.status == 0);
    CHECK_MESSAGE(version.output.starts_with("dtaskd " + std::to_string(DTASK_VERSION_MAJOR) + "." +
                                             std::to_string(DTASK_VERSION_MINOR) + "."),
                  version.output);
    const auto help = run_dtaskd({"--help"});
    CHECK(help.status == 0);
    for (const char* part : {"--listen", "--keys", "--insecure-tcp", "tokens", "rotate"})
        CHECK_MESSAGE(contains(help.output, part), help.output);
    CHECK(run_dtaskd({"--no-such-option"}).status == 2);
    CHECK(run_dtaskd({"--heartbeat", "5"}).status == 2);
    CHECK(run_dtaskd({"rotate", "everyone"}).status == 2);
    CHECK(run_dtaskd({"tokens", "--listen", "tcp://127.0.0.1:*"}).status == 2);
}
