// The Liveness rule (src/wire/liveness.hpp), tested directly: a peer is silent only after
// interval × liveness, counted up to when the reader last knew it had read everything; a
// welcome sets interval and liveness, within bounds; a silent peer whose connection
// received bytes since half the silence is moving (wire/connection_progress.hpp), with
// scripted looks at a connection and with real ones.

#include <chrono>
#include <cstring>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include "wire/connection_progress.hpp"
#include "wire/liveness.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

namespace {
const Liveness::Clock::time_point t0{};

/// What the scripted probe says a connection looks like: the test changes it between looks.
ConnectionSample scripted;
ConnectionSample scripted_probe(int fd) {
    ConnectionSample sample = scripted;
    sample.fd = fd;
    return sample;
}
/// A TCP connection on descriptor 7 from 10.0.0.2:`port` to 10.0.0.1:5555 that had received
/// `bytes`.
ConnectionSample tcp_connection(std::uint16_t port, std::uint64_t bytes) {
    ConnectionSample sample;
    sample.local = {AF_INET, 0, 0x15, 0xb3, 10, 0, 0, 1};
    sample.peer = {AF_INET,
                   0,
                   static_cast<unsigned char>(port >> 8),
                   static_cast<unsigned char>(port & 255),
                   10,
                   0,
                   0,
                   2};
    sample.bytes_received = bytes;
    sample.valid = true;
    return sample;
}
const auto none_unread = [] { return false; };
}  // namespace

TEST_CASE("Liveness.silent_only_after_interval_times_liveness" * doctest::timeout(30)) {
    const Liveness liveness(100ms, 5);
    CHECK(liveness.silence() == 500ms);
    int asked = 0;
    const auto nothing_unread = [&] {
        ++asked;
        return false;
    };
    CHECK_FALSE(liveness.silent(t0, t0 + 500ms, nothing_unread, t0 + 500ms));
    CHECK(asked == 0);  // not overdue: the socket is not asked
    CHECK(liveness.silent(t0, t0 + 501ms, nothing_unread, t0 + 501ms));
    CHECK(asked == 1);
    CHECK_FALSE(liveness.silent(t0 + 400ms, t0 + 900ms, nothing_unread, t0 + 900ms));
}

TEST_CASE("Liveness.no_verdict_while_messages_wait_unread" * doctest::timeout(30)) {
    const Liveness liveness(100ms, 5);
    const auto unread = [] { return true; };
    const auto now = t0 + 2s;
    // Messages wait, and reading found the socket empty soon after the peer's last message:
    // what waits may be its heartbeats.
    CHECK_FALSE(liveness.silent(t0, now, unread, t0 + 100ms));
    CHECK_FALSE(liveness.silent(t0, now, unread, t0 + 500ms));
    // The socket was empty, with nothing from the peer, for longer than the silence: proven.
    CHECK(liveness.silent(t0, now, unread, t0 + 501ms));
    CHECK(liveness.silent(
        t0, now, [] { return false; }, now));
}

TEST_CASE("Liveness.a_stalled_reader_blames_no_peer_whose_messages_wait_unread" *
          doctest::timeout(30)) {
    // The reader last emptied its socket just after the peer's last message, then stalled
    // for 3 s (far past the silence). Whatever came meanwhile waits unread.
    const Liveness liveness(100ms, 5);
    const auto last_heard = t0;
    const auto last_drained = t0 + 10ms;
    const auto after_stall = t0 + 3s;
    CHECK_FALSE(liveness.silent(
        last_heard, after_stall, [] { return true; }, last_drained));
    // Once it has read everything and nothing came from the peer, the verdict stands.
    CHECK(liveness.silent(
        last_heard, after_stall, [] { return false; }, after_stall));
}

TEST_CASE("Liveness.a_stall_of_the_reader_itself_restarts_the_count" * doctest::timeout(30)) {
    // The reader planned to wake at t0 + 100 ms and woke 3 s later: stopped, or not
    // scheduled. The peer's messages of those 3 s may still be on their way in, not yet
    // unread in the socket, so the peer gets a whole silence from the wake-up.
    Liveness liveness(100ms, 5);
    const auto nothing_unread = [] { return false; };
    const auto woke_at = t0 + 3s;
    liveness.woke(t0 + 100ms, woke_at);
    CHECK_FALSE(liveness.silent(t0, woke_at, nothing_unread, woke_at));
    CHECK_FALSE(liveness.silent(t0, woke_at + 500ms, nothing_unread, woke_at + 500ms));
    CHECK(liveness.silent(t0, woke_at + 501ms, nothing_unread, woke_at + 501ms));
    // A wake-up late by less than an interval is no stall.
    Liveness steady(100ms, 5);
    steady.woke(t0 + 100ms, t0 + 200ms);
    CHECK(steady.silent(t0, t0 + 501ms, nothing_unread, t0 + 501ms));
}

TEST_CASE("Liveness.adopt_takes_the_welcome_within_bounds" * doctest::timeout(30)) {
    Liveness liveness(250ms, 5);
    protocol::Inbound welcome;
    welcome.command = protocol::Command::welcome;

    welcome.fields = {1000, 3, 0, 0};
    liveness.adopt(welcome);
    CHECK(liveness.interval() == 1000ms);
    CHECK(liveness.liveness() == 3);
    CHECK(liveness.silence() == 3s);

    welcome.fields = {0, 0, 0, 0};  // a zero keeps the current setting
    liveness.adopt(welcome);
    CHECK(liveness.interval() == 1000ms);
    CHECK(liveness.liveness() == 3);

    welcome.fields = {UINT64_MAX, UINT64_MAX, 0, 0};
    liveness.adopt(welcome);
    CHECK(liveness.interval() == std::chrono::milliseconds(Liveness::max_interval_ms));
    CHECK(liveness.interval() == 1h);
    CHECK(liveness.liveness() == Liveness::max_liveness);
    CHECK(liveness.liveness() == 1000);
    CHECK(liveness.silence() == 1000h);
    CHECK(liveness.silence() > 0s);  // no overflow
}

TEST_CASE("Liveness.a_silent_peer_whose_connection_received_bytes_lately_is_moving" *
          doctest::timeout(30)) {
    const Liveness liveness(100ms, 5);  // silent after 500 ms
    scripted = tcp_connection(40000, 1000);
    ConnectionProgress progress(7, scripted_probe);
    using Verdict = Liveness::Verdict;
    // Quiet for less than an interval: no look.
    scripted.bytes_received = 2000;
    CHECK(liveness.judge(t0, t0 + 50ms, none_unread, t0 + 50ms, progress) == Verdict::heard);
    // The first look of the spell finds nothing to compare with: bytes before it do not count.
    CHECK(liveness.judge(t0, t0 + 150ms, none_unread, t0 + 150ms, progress) == Verdict::heard);
    CHECK(liveness.judge(t0, t0 + 250ms, none_unread, t0 + 250ms, progress) == Verdict::heard);
    scripted.bytes_received = 2001;  // one byte since the last look
    CHECK(liveness.judge(t0, t0 + 350ms, none_unread, t0 + 350ms, progress) == Verdict::moving);

    // Counted heard at 350 ms (the caller's part): that look begins the new spell's account.
    auto heard = t0 + 350ms;
    scripted.data_segs_in = 1;  // a segment out of order after a loss: the link is carrying data
    CHECK(liveness.judge(heard, heard + 150ms, none_unread, heard + 150ms, progress) ==
          Verdict::moving);
    heard += 150ms;
    // Then nothing more: a whole silence without a byte, and the peer is silent.
    for (auto at = 150ms; at <= 500ms; at += 100ms)
        CHECK(liveness.judge(heard, heard + at, none_unread, heard + at, progress) ==
              Verdict::heard);
    CHECK(liveness.judge(heard, heard + 550ms, none_unread, heard + 550ms, progress) ==
          Verdict::silent);
    // A look from an earlier spell does not count in a later one.
    scripted.bytes_received = 9000;
    const auto later = heard + 2s;
    CHECK(liveness.judge(later, later + 600ms, none_unread, later + 600ms, progress) ==
          Verdict::silent);
}

TEST_CASE("Liveness.a_descriptor_reused_by_another_connection_shows_no_progress" *
          doctest::timeout(30)) {
    const Liveness liveness(100ms, 5);
    scripted = tcp_connection(40000, 1000);
    ConnectionProgress progress(7, scripted_probe);
    CHECK(liveness.judge(t0, t0 + 300ms, none_unread, t0 + 300ms, progress) ==
          Liveness::Verdict::heard);
    scripted = tcp_connection(40001, 2000);  // descriptor 7 closed and reused: another port
    CHECK(liveness.judge(t0, t0 + 400ms, none_unread, t0 + 400ms, progress) ==
          Liveness::Verdict::heard);
    scripted.bytes_received = 3000;
    CHECK(liveness.judge(t0, t0 + 600ms, none_unread, t0 + 600ms, progress) ==
          Liveness::Verdict::silent);
    CHECK(same_connection(tcp_connection(40001, 0), tcp_connection(40001, 9)));
    CHECK_FALSE(same_connection(tcp_connection(40001, 0), tcp_connection(40000, 0)));
}

TEST_CASE("Liveness.without_a_tcp_connection_silence_is_all_that_counts" * doctest::timeout(30)) {
    const Liveness liveness(100ms, 5);
    scripted = tcp_connection(40000, 1000);
    scripted.valid = false;  // ipc, inproc, or counters the kernel does not have
    ConnectionProgress progress(7, scripted_probe);
    ConnectionProgress nothing;  // no descriptor known (before the welcome)
    for (ConnectionProgress* watched : {&progress, &nothing}) {
        CHECK(liveness.judge(t0, t0 + 300ms, none_unread, t0 + 300ms, *watched) ==
              Liveness::Verdict::heard);
        scripted.bytes_received += 1000;
        CHECK(liveness.judge(t0, t0 + 400ms, none_unread, t0 + 400ms, *watched) ==
              Liveness::Verdict::heard);
        scripted.bytes_received += 1000;
        CHECK(liveness.judge(t0, t0 + 600ms, none_unread, t0 + 600ms, *watched) ==
              Liveness::Verdict::silent);
    }
}

TEST_CASE("Liveness.a_real_connection_is_sampled_and_told_from_its_successor" *
          doctest::timeout(30)) {
    // A listener on a free loopback port, and one connection to it.
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(listen(listener, 4) == 0);
    REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    const auto connect_one = [&] {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        return fd;
    };
    const int sender = connect_one();
    const int receiver = accept(listener, nullptr, nullptr);
    REQUIRE(receiver >= 0);

    const ConnectionSample before = sample_connection(receiver);
    REQUIRE(before.valid);
    const char bytes[100] = {};
    REQUIRE(write(sender, bytes, sizeof bytes) == sizeof bytes);
    char got[100];
    REQUIRE(read(receiver, got, sizeof got) == sizeof got);
    const ConnectionSample after = sample_connection(receiver);
    CHECK(same_connection(before, after));
    CHECK(after.bytes_received == before.bytes_received + sizeof bytes);
    CHECK_FALSE(sample_connection(listener).valid);  // not connected
    CHECK_FALSE(sample_connection(-1).valid);
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    CHECK_FALSE(sample_connection(pair[0]).valid);  // not TCP

    // The receiver's descriptor, closed and taken by the next connection accepted.
    close(receiver);
    close(sender);
    const int sender2 = connect_one();
    const int receiver2 = accept(listener, nullptr, nullptr);
    REQUIRE(receiver2 == receiver);
    CHECK_FALSE(same_connection(before, sample_connection(receiver2)));
    for (const int fd : {sender2, receiver2, pair[0], pair[1], listener})
        close(fd);
}

TEST_CASE("Liveness.a_zeromq_message_names_the_descriptor_of_its_tcp_connection" *
          doctest::timeout(30)) {
    zmq::context_t context;
    zmq::socket_t router(context, zmq::socket_type::router);
    router.bind("tcp://127.0.0.1:*");
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::linger, 0);
    dealer.connect(router.get(zmq::sockopt::last_endpoint));
    dealer.send(zmq::str_buffer("hello"));
    zmq::message_t id, body;
    REQUIRE(router.recv(id));
    REQUIRE(router.recv(body));
    const int fd = connection_fd(body);
    REQUIRE(fd >= 0);
    const ConnectionSample sample = sample_connection(fd);
    REQUIRE(sample.valid);
    CHECK(sample.bytes_received >= body.size());
    CHECK(connection_fd(zmq::message_t(std::string("not received"))) == -1);

    zmq::socket_t inproc_a(context, zmq::socket_type::pair),
        inproc_b(context, zmq::socket_type::pair);
    inproc_a.bind("inproc://progress");
    inproc_b.connect("inproc://progress");
    inproc_b.send(zmq::str_buffer("x"));
    zmq::message_t in_process;
    REQUIRE(inproc_a.recv(in_process));
    CHECK(connection_fd(in_process) == -1);
}
