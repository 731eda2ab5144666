// Limits against hostile or buggy peers (docs/reliability.md, "Limits and hostile input"):
// the broker's maximum message size, the hello's smaller bound, the descriptor limit of
// dtaskd, and the rate limit of repeated warnings.

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include "broker/accept_failures.hpp"
#include "dtaskd.hpp"
#include "jobs.hpp"
#include "log.hpp"
#include "raw_peers.hpp"
#include "security/handshake_watch.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

/// Subtasks of `subtask_bytes` whose partial results are `partial_bytes` each.
struct Sizes {
    std::uint64_t count = 1;
    std::uint64_t subtask_bytes = 0;
    std::uint64_t partial_bytes = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, subtask_bytes, partial_bytes);
    }
};
struct SizedPiece {
    std::string payload;
    std::uint64_t partial_bytes = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(payload, partial_bytes);
    }
};

/// The sum of the partial results' lengths.
const dtask::Job<std::uint64_t> sized{
    "tests.limits.sized",
    [](const Sizes& sizes, dtask::SplitHint) {
        return dtask::pieces(sizes.count, [sizes](std::uint64_t) {
            return SizedPiece{std::string(sizes.subtask_bytes, 's'), sizes.partial_bytes};
        });
    },
    [](const SizedPiece& piece) { return std::string(piece.partial_bytes, 'p'); },
    [](std::uint64_t total, std::string part) { return total + part.size(); }};

/// A map that asks for a petabyte: it throws std::bad_alloc on every machine.
const dtask::Job<std::uint64_t> greedy{
    "tests.limits.greedy",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& i) -> std::uint64_t {
        // What an allocation past the machine's memory throws. Thrown by hand: compilers may
        // elide an unused allocation (clang does), and the sanitizers' allocators abort on a
        // huge one instead of throwing.
        if (i < std::numeric_limits<std::uint64_t>::max())
            throw std::bad_alloc();
        return i;
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// A memory figure of process `pid` ("VmHWM:" the peak resident, "VmRSS:" the resident
/// now), in bytes.
std::uint64_t memory_of(pid_t pid, const std::string& field = "VmHWM:") {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(field))
            return std::stoull(line.substr(field.size())) * 1024;
    }
    FAIL("no " << field << " in /proc/" << pid << "/status");
    return 0;
}

/// The port of a "tcp://127.0.0.1:PORT" endpoint.
std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
}

/// A TCP connection to 127.0.0.1:`port` begun and left idle: it says nothing, ever.
int idle_connection(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int result = connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    REQUIRE((result == 0 || errno == EINPROGRESS));
    return fd;
}

/// Lines of `text` that contain `part`.
std::size_t lines_with(const std::string& text, const std::string& part) {
    std::size_t count = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
        ++count;
    return count;
}

/// ASan keeps freed memory in a quarantine (256 MiB by default) to catch use after free: a
/// measure of what a process holds needs it off.
std::vector<std::string> without_asan_quarantine() {
    const char* options = std::getenv("ASAN_OPTIONS");
    return {"ASAN_OPTIONS=" + (options ? std::string(options) + ":" : std::string()) +
            "quarantine_size_mb=0"};
}

}  // namespace

TEST_CASE("Limits.an_oversize_frame_is_refused_unread_and_a_job_goes_on" * doctest::timeout(150)) {
    Dtaskd broker({"--max-message-mib", "8"});
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));
    auto running = client.submit(squares, std::uint64_t{20'000});
    const std::uint64_t before = memory_of(broker.process().pid());

    // A peer with a valid credential sends a 64 MiB frame: it is cut off from its size.
    zmq::context_t context(1);
    zmq::socket_t peer(context, zmq::socket_type::dealer);
    peer.set(zmq::sockopt::linger, 0);
    dtask::detail::use_token(peer, dtask::detail::parse_join_token(broker.token("client")));
    dtask::detail::SocketMonitor monitor(context, peer,
                                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    peer.connect(broker.endpoint());
    const std::size_t frame_bytes = std::size_t{64} << 20;
    zmq::message_t frame(frame_bytes);
    std::memset(frame.data(), 0, frame_bytes);
    REQUIRE(peer.send(frame, zmq::send_flags::none));

    bool disconnected = false;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!disconnected && std::chrono::steady_clock::now() < give_up) {
        while (const auto event = monitor.next())
            disconnected = disconnected || event->event == ZMQ_EVENT_DISCONNECTED;
        if (!disconnected)
            poll_readable(monitor.fd(), 1s);
    }
    CHECK_MESSAGE(disconnected, "the broker kept the connection of the oversize frame");
    const std::uint64_t peak = memory_of(broker.process().pid());
    CHECK_MESSAGE(peak - before < frame_bytes / 2,
                  "dtaskd's peak memory grew from " << before << " to " << peak << " bytes");

    CHECK(get_within(running) == serial_squares(20'000));
    CHECK(run_within(client, squares, std::uint64_t{100}) == serial_squares(100));
}

TEST_CASE("Limits.data_larger_than_the_brokers_maximum_fails_its_job_naming_it" *
          doctest::timeout(150)) {
    Dtaskd broker({"--max-message-mib", "1"});
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));  // welcomed: the client knows the maximum
    const std::uint64_t two_mib = std::uint64_t{2} << 20;

    SUBCASE("job-wide data") {
        Scale scale{3, std::vector<std::uint64_t>(two_mib / 8, 1)};
        auto handle = client.submit(scaled, std::uint64_t{10}, scale);
        const std::string what = error_of<dtask::Error>(handle, 60s).what();
        CHECK_MESSAGE(contains(what, "its job-wide data is"), what);
        CHECK_MESSAGE(contains(what, "--max-message-mib"), what);
    }
    SUBCASE("one subtask") {
        auto handle = client.submit(sized, Sizes{3, two_mib, 8});
        const std::string what = error_of<dtask::Error>(handle, 60s).what();
        CHECK_MESSAGE(contains(what, "one subtask is"), what);
        CHECK_MESSAGE(contains(what, "maximum message size of 1048576 bytes"), what);
    }
    SUBCASE("one partial result") {
        auto handle = client.submit(sized, Sizes{3, 8, two_mib});
        const std::string what = error_of<dtask::TaskError>(handle, 60s).what();
        CHECK_MESSAGE(contains(what, "partial result is"), what);
        CHECK_MESSAGE(contains(what, "maximum message size of 1048576 bytes"), what);
    }
    SUBCASE("partial results that fit one by one go in several messages") {
        const std::uint64_t third = (std::uint64_t{1} << 20) / 3;
        CHECK(run_within(client, sized, Sizes{12, 8, third}, dtask::RunOptions{.batch_size = 12}) ==
              12 * third);
    }
    // Nothing was cut off: the same client and worker serve the next job.
    CHECK(run_within(client, squares, std::uint64_t{100}) == serial_squares(100));
}

TEST_CASE("Limits.a_flood_of_malformed_messages_from_a_peer_that_never_reads_costs_little" *
          doctest::timeout(170)) {
    const auto started = std::chrono::steady_clock::now();
    // Plain TCP: every peer there is the owner's, whose warnings are not limited per address.
    Dtaskd broker({"--insecure-tcp", "--liveness", "40"}, "tcp://127.0.0.1:*", {},
                  without_asan_quarantine());
    Process worker(self_executable(),
                   {"--dtask-worker", broker.endpoint(), "--dtask-insecure-tcp"});
    dtask::ClientOptions options;
    options.insecure_tcp = true;
    dtask::Client client(broker.endpoint(), options);
    REQUIRE(client.wait_for_workers(1, 30s));
    const std::uint64_t before = memory_of(broker.process().pid(), "VmRSS:");
    auto running = client.submit(squares, std::uint64_t{20'000});

    // A million malformed messages, each worth a refusal, from a peer that reads none; then
    // a worker's hello (serving no job), which the broker takes after all of them.
    zmq::context_t context(1);
    zmq::socket_t flood(context, zmq::socket_type::dealer);
    flood.set(zmq::sockopt::linger, 0);
    flood.connect(broker.endpoint());
    const std::size_t count = 1'000'000;
    std::size_t sent = 0;
    for (std::size_t i = 0; i < count; ++i)
        sent += flood.send(zmq::buffer(std::string_view("garbage")), zmq::send_flags::none) ? 1 : 0;
    REQUIRE(sent == count);
    using dtask::detail::protocol::Command;
    using dtask::detail::protocol::hello_header;
    using dtask::detail::protocol::Role;
    auto hello = message_of(hello_header(), {hello_body(Role::worker, 1)});
    REQUIRE(zmq::send_multipart(flood, hello));
    REQUIRE_MESSAGE(client.wait_for_workers(2, 120s), "the broker never took the hello");

    const std::uint64_t after = memory_of(broker.process().pid(), "VmRSS:");
    CHECK_MESSAGE(after < before + (std::uint64_t{32} << 20),
                  "dtaskd's memory grew from " << before << " to " << after << " bytes");
    CHECK(get_within(running) == serial_squares(20'000));

    broker.process().signal(SIGTERM);
    const std::string said = all_output(broker.process(), 60s);
    // One line, then at most one per 10 s (slower on a loaded machine, never more often).
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
            .count();
    CHECK_MESSAGE(lines_with(said, "malformed message") <= 1 + seconds / 10 + 1,
                  "in " << seconds << " s: " << said.substr(0, 2000));
}

TEST_CASE("Limits.a_hello_past_its_bound_is_refused_unread" * doctest::timeout(120)) {
    Dtaskd broker;
    zmq::context_t context(1);
    RawPeer peer(context, broker.endpoint(), broker.token("client"));
    using dtask::detail::protocol::Command;
    using dtask::detail::protocol::hello_header;
    const std::string refusal =
        peer.refusal_of(message_of(hello_header(), {std::string((1 << 20) + 1, 'h')}));
    CHECK_MESSAGE(contains(refusal, "a hello of 1048577 bytes, more than the 1048576"), refusal);
}

TEST_CASE("Limits.dtaskd_raises_its_descriptor_limit_and_says_when_it_is_at_it" *
          doctest::timeout(170)) {
    Dtaskd broker({}, "tcp://127.0.0.1:*", {}, {}, {"/usr/bin/prlimit", "--nofile=64:128"});
    CHECK_MESSAGE(
        contains(broker.before_listening(), "open descriptors: at most 128 (raised from 64)"),
        broker.before_listening());

    // More idle connections than 128 descriptors hold: each accepted one takes one.
    std::vector<int> idle;
    for (int i = 0; i < 250; ++i)
        idle.push_back(idle_connection(port_of(broker.endpoint())));
    const auto at_limit = broker.read_until("at the limit of 128 open descriptors", 60s);
    REQUIRE_MESSAGE(at_limit.found, "dtaskd never said it was at its limit:\n" << at_limit.text);
    std::string said = at_limit.text;
    for (const int fd : idle)
        close(fd);

    // Once they are gone, peers are served again.
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 60s));
    CHECK(run_within(client, squares, std::uint64_t{1000}) == serial_squares(1000));

    // Accepts that failed over and over were logged a bounded number of times.
    broker.process().signal(SIGTERM);
    said += all_output(broker.process(), 60s);
    CHECK_MESSAGE(lines_with(said, "cannot accept a connection") <= 4, said);
}

TEST_CASE("Limits.repeated_warnings_are_written_once_per_interval_then_counted" *
          doctest::timeout(10)) {
    using dtask::detail::RepeatedWarning;
    const RepeatedWarning::Clock::time_point start{};
    RepeatedWarning warning(10s);
    CHECK(warning.admit(start) == std::string());
    CHECK_FALSE(warning.admit(start + 1s).has_value());
    CHECK_FALSE(warning.admit(start + 9s).has_value());
    CHECK(warning.skipped() == 2);
    CHECK(warning.admit(start + 10s) ==
          std::string(" (and 2 more like it since the last one logged)"));
    CHECK(warning.skipped() == 0);
    CHECK(warning.admit(start + 25s) == std::string());
}

TEST_CASE("Limits.accept_failures_name_the_descriptor_limit" * doctest::timeout(10)) {
    dtask::detail::AcceptFailures failures;
    const dtask::detail::AcceptFailures::Clock::time_point start{};
    const auto first = failures.on_failure(EMFILE, 128, start);
    REQUIRE(first.has_value());
    CHECK_MESSAGE(contains(*first, "at the limit of 128 open descriptors"), *first);
    for (int i = 0; i < 1000; ++i)
        CHECK_FALSE(failures.on_failure(EMFILE, 128, start + 1s).has_value());
    const auto later = failures.on_failure(ENFILE, 128, start + 31s);
    REQUIRE(later.has_value());
    CHECK_MESSAGE(contains(*later, "table of open files is full"), *later);
    CHECK_MESSAGE(contains(*later, "and 1000 more like it"), *later);
}

TEST_CASE("Limits.a_map_out_of_memory_is_said_as_such" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    auto handle = cluster.submit(greedy, std::uint64_t{2});
    const std::string what = error_of<dtask::TaskError>(handle, 60s).what();
    CHECK_MESSAGE(contains(what, "out of memory (std::bad_alloc)"), what);
    // The worker goes on serving.
    CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
}

TEST_CASE("Limits.a_worker_that_cannot_start_threads_says_so_and_exits_7" * doctest::timeout(120)) {
    // A stack limit of 4 TiB: each new thread's stack is that large, and cannot be mapped.
    // (As root, RLIMIT_NPROC is not enforced; this limit is, for any user.)
    Process worker("/usr/bin/prlimit",
                   {"--stack=4398046511104:unlimited", self_executable(), "--dtask-worker",
                    "tcp://127.0.0.1:1", "--dtask-insecure-tcp"},
                   "|&");
    const std::string said = all_output(worker, 60s);
    const auto status = worker.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), said);
#if defined(__SANITIZE_THREAD__)
    // TSan's own runtime cannot start under this limit (SIGSEGV before main): in that build
    // only the bounded end above is the worker's.
    return;
#endif
    CHECK_MESSAGE(WIFEXITED(*status), "status " << *status << ": " << said);
    CHECK_MESSAGE(WEXITSTATUS(*status) == 7, said);
    CHECK_MESSAGE(contains(said, "cannot start a thread"), said);
}

TEST_CASE("Limits.a_peer_that_reads_nothing_is_dropped_when_its_queue_is_full" *
          doctest::timeout(170)) {
    using namespace dtask::detail::protocol;
    // Silence alone would drop the client that reads nothing after 50 s: it is its queue.
    // The bound is above every message the real client below ever gets (its job has 1,000
    // subtasks), so that client cannot be taken for one that reads nothing, however late the
    // broker's I/O thread or the client's runs: ZeroMQ counts messages as read in steps.
    Dtaskd broker({"--max-unsent-per-peer", "2000", "--liveness", "200"}, "tcp://127.0.0.1:*", {},
                  without_asan_quarantine());
    zmq::context_t context(1);
    RawPeer worker(context, broker.endpoint(), broker.token("worker"));
    worker.send(message_of(hello_header(),
                           {hello_body(Role::worker, 8, {{"by-hand.echo", "by-hand-signature"}})}));
    worker.expect(Command::welcome);
    // The client takes its welcome, then reads nothing: ten messages wait on its side at
    // most, the rest in the kernel's buffers and then in the broker.
    RawPeer client(context, broker.endpoint(), broker.token("client"), 10);
    client.send(message_of(hello_header(), {hello_body(Role::client)}));
    client.expect(Command::welcome);
    JobSettings settings;
    settings.backup_tasks = false;
    std::string settings_body;
    dtask::detail::save_to(settings_body, settings);
    client.send(message_of(header(Command::submit, {1}),
                           {"by-hand.echo", "by-hand-signature", "", settings_body}));
    // 32 KiB a result, one message each: 4000 of them are 128 MiB, more than 2000 of them
    // and every buffer between the broker and the client hold.
    constexpr std::uint64_t subtasks = 4000;
    for (std::uint64_t i = 0; i < subtasks; ++i)
        client.send(one_frame(batch_frame(Command::task, 1, {i, 1}, {"subtask"})));
    const std::string partial(32 << 10, 'r');
    std::uint64_t answered = 0;
    bool ended = false;
    while (!ended) {
        auto message = worker.next(60s);
        REQUIRE_MESSAGE(message.has_value(),
                        "the worker heard nothing after " << answered << " results");
        if (message->command == Command::end) {
            ended = true;
        } else if (message->command == Command::task) {
            std::vector<std::string> partials(message->fields[2], partial);
            worker.send(
                one_frame(batch_frame(Command::result, message->fields[0],
                                      {message->fields[1], message->fields[2], 1000}, partials)));
            answered += message->fields[2];
        }
    }
    // The job ended because its client was dropped, long before all its results were made.
    CHECK_MESSAGE(answered < subtasks, answered << " results");

    // The broker goes on: a real client and worker run a job.
    Process real_worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                        broker.worker_environment());
    dtask::Client real(broker.endpoint(), broker.client_options());
    REQUIRE(real.wait_for_workers(2, 30s));
    CHECK(run_within(real, squares, std::uint64_t{1000}) == serial_squares(1000));

    broker.process().signal(SIGTERM);
    const std::string said = all_output(broker.process(), 60s);
    CHECK_MESSAGE(contains(said, "it left 2000 messages unread"), said.substr(0, 2000));
}
