// The Liveness rule (src/wire/liveness.hpp), tested directly: a peer is silent only after
// interval × liveness; no verdict while messages wait unread, unless reading has been behind
// as long; a welcome sets interval and liveness, within bounds.

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
    // Messages wait, and reading found the socket empty recently: they may be heartbeats.
    CHECK_FALSE(liveness.silent(t0, now, unread, now - 100ms));
    CHECK_FALSE(liveness.silent(t0, now, unread, now - 499ms));
    // Reading has been behind as long as the silence: the verdict stands.
    CHECK(liveness.silent(t0, now, unread, now - 500ms));
    CHECK(liveness.silent(
        t0, now, [] { return false; }, now));
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
