// The heartbeat pace (src/broker/heartbeat_pace.hpp), tested directly: the interval doubles
// as peers join past the budget, halves as they leave with a margin, and silence is judged
// with the longer interval until the peers have heard of a shorter one. Then for real: a
// dtaskd with a small budget tells its peers the new pace, welcomes newcomers with it, and
// drops none of them on the way; and a worker whose connection closed is dropped at the next
// beat, without waiting for its silence.

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <signal.h>

#include "broker/heartbeat_pace.hpp"
#include "dtaskd.hpp"
#include "raw_peers.hpp"
#include "support.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;
using test_support::Dtaskd;
using test_support::Process;

namespace {
const HeartbeatPace::Clock::time_point start{};
}  // namespace

TEST_CASE("HeartbeatPace.doubles_as_peers_pass_the_budget" * doctest::timeout(30)) {
    HeartbeatPace pace(250ms, 5, 600);
    CHECK_FALSE(pace.update(150, start));  // 600 a second: within
    CHECK(pace.interval() == 250ms);
    CHECK(pace.update(151, start));
    CHECK(pace.interval() == 500ms);
    CHECK(pace.update(1001, start));  // straight to the step that fits
    CHECK(pace.interval() == 2000ms);
    CHECK(pace.judged(start) == 2000ms);  // a longer interval is judged with at once
    CHECK_FALSE(pace.update(1200, start));
    CHECK(pace.interval() == 2000ms);
}

TEST_CASE("HeartbeatPace.doubles_at_most_32_times_the_configured_interval" * doctest::timeout(30)) {
    HeartbeatPace pace(250ms, 5, 600);
    pace.update(1'000'000, start);
    CHECK(pace.interval() == 250ms * 32);
}

TEST_CASE("HeartbeatPace.no_budget_keeps_the_configured_interval" * doctest::timeout(30)) {
    HeartbeatPace pace(250ms, 5, 0);
    CHECK_FALSE(pace.update(100'000, start));
    CHECK(pace.interval() == 250ms);
}

TEST_CASE("HeartbeatPace.halves_only_with_a_quarter_of_the_budget_spare" * doctest::timeout(30)) {
    HeartbeatPace pace(250ms, 5, 600);
    pace.update(1001, start);
    REQUIRE(pace.interval() == 2000ms);
    // 1 s would fit 600 peers; halved only at 450 or fewer (600 × 3/4).
    CHECK_FALSE(pace.update(600, start));
    CHECK_FALSE(pace.update(451, start));
    CHECK(pace.interval() == 2000ms);
    CHECK(pace.update(450, start));
    CHECK(pace.interval() == 1000ms);
    // One peer more or less near a step does not flap.
    CHECK_FALSE(pace.update(451, start));
    CHECK_FALSE(pace.update(450, start));
    CHECK(pace.update(1, start));
    CHECK(pace.interval() == 250ms);
}

TEST_CASE("HeartbeatPace.silence_is_judged_with_the_longer_interval_until_peers_heard" *
          doctest::timeout(30)) {
    HeartbeatPace pace(250ms, 5, 600);
    pace.update(1001, start);
    const auto t1 = start + 60s;
    REQUIRE(pace.update(1, t1));
    CHECK(pace.interval() == 250ms);
    // Peers told now heartbeat every 2 s until they hear: the old silence (10 s), and two
    // new intervals for the news and the first beat after it.
    CHECK(pace.judged(t1) == 2000ms);
    CHECK(pace.judged(t1 + 10s + 499ms) == 2000ms);
    CHECK(pace.judged(t1 + 10s + 500ms) == 250ms);
    // Up again and down again meanwhile: the longest still counts.
    HeartbeatPace twice(250ms, 5, 600);
    twice.update(1001, start);
    twice.update(1, t1);
    twice.update(200, t1 + 1s);  // 500 ms
    twice.update(1, t1 + 2s);    // 250 ms again
    CHECK(twice.judged(t1 + 2s + 9s) == 2000ms);
}

TEST_CASE("HeartbeatPace.dtaskd_paces_its_peers_and_drops_none" * doctest::timeout(120)) {
    using namespace dtask::detail::protocol;
    // 4 heartbeats a second at most: 1 peer at 250 ms; 2 peers at 500 ms; 3 at 1 s.
    Dtaskd broker({"--heartbeat", "250", "--heartbeats-per-second", "4"});
    zmq::context_t context;
    RawPeer first(context, broker.endpoint(), broker.token("worker"));
    first.send(message_of(hello_header(), {hello_body(Role::worker, 4)}));
    CHECK(first.expect(Command::welcome).fields[0] == 250);
    RawPeer second(context, broker.endpoint(), broker.token("worker"));
    second.send(message_of(hello_header(), {hello_body(Role::worker, 4)}));
    second.expect(Command::welcome);
    // At the next tick, both are told the new pace.
    for (RawPeer* peer : {&first, &second}) {
        const auto told = peer->next(10s);
        REQUIRE(told.has_value());
        CHECK(told->command == Command::pace);
        CHECK(told->fields[0] == 500);
    }
    RawPeer third(context, broker.endpoint(), broker.token("client"));
    third.send(message_of(hello_header(), {hello_body(Role::client)}));
    const auto welcome = third.next(10s);
    REQUIRE(welcome.has_value());
    CHECK(welcome->command == Command::welcome);
    CHECK(welcome->fields[0] == 500);  // a newcomer is welcomed with the pace of the time
    // Every peer is served on at the new pace (each answers heartbeats as it reads):
    // none dropped, none told to reconnect.
    for (RawPeer* peer : {&first, &second, &third}) {
        const auto others = peer->until_heartbeats(3, 20s);
        REQUIRE(others.has_value());
        for (const Command command : *others)
            CHECK(command != Command::reconnect);
    }
}

TEST_CASE("HeartbeatPace.a_killed_worker_is_dropped_at_the_next_beat_not_after_its_silence" *
          doctest::timeout(120)) {
    // 1,000 heartbeats missed (250 s) before silence counts: only its closed connection can
    // make dtaskd drop the worker within the test's time.
    Dtaskd broker({"--heartbeat", "250", "--liveness", "1000"});
    Process worker(test_support::self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 60s));
    worker.signal(SIGKILL);
    REQUIRE(worker.wait_exit(10s).has_value());
    // The count comes to the client in a status message as soon as it changes.
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (client.workers() > 0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(10ms);  // polls a count with a deadline
    CHECK(client.workers() == 0);
}
