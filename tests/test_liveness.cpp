// The Liveness rule (src/wire/liveness.hpp), tested directly: a peer is silent only after
// interval × liveness, counted up to when the reader last knew it had read everything; a
// welcome sets interval and liveness, within bounds.

#include <chrono>

#include <doctest/doctest.h>

#include "wire/liveness.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

namespace {
const Liveness::Clock::time_point t0{};
}

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
