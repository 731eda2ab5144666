// The security policies without sockets: join tokens, which refusals the broker logs, and
// how a peer judges its handshakes.

#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "security/handshake_verdict.hpp"
#include "security/join_token.hpp"
#include "security/refusal_log.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

TEST_CASE("JoinToken.round_trip_and_clear_errors") {
    const auto broker = new_curve_keys();
    const auto token = new_join_token(TokenRole::client, broker.public_key);
    const std::string text = token.text();
    CHECK(text.starts_with("DTASK-1-C-"));
    CHECK(text.find_first_not_of("DTASK-1C0123456789abcdef") == std::string::npos);
    const auto back = parse_join_token("  " + text + "\n");  // as a file or a paste has it
    CHECK(back.role == TokenRole::client);
    CHECK(back.broker_public_key == broker.public_key);
    CHECK(back.credential.secret_key == token.credential.secret_key);
    CHECK(back.credential.public_key == token.credential.public_key);

    auto error_of = [](const std::string& bad) {
        try {
            parse_join_token(bad);
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK(error_of("hello").find("not a dtask join token") != std::string::npos);
    CHECK(error_of(text.substr(0, 80)).find("is damaged: it has 80 characters") != std::string::npos);
    std::string not_hex = text;
    not_hex[20] = 'z';
    CHECK(error_of(not_hex).find("must be hexadecimal") != std::string::npos);
    std::string no_role = text;
    no_role[8] = 'X';
    CHECK(error_of(no_role).find("names no role") != std::string::npos);
    // No message quotes the secret half.
    for (const auto& bad : {text.substr(0, 80), not_hex, no_role})
        CHECK(error_of(bad).find(text.substr(text.size() - 30)) == std::string::npos);
}

TEST_CASE("RefusalLog.once_per_address_per_minute_and_bounded") {
    RefusalLog log;
    const auto start = RefusalLog::Clock::time_point{} + 1h;
    CHECK(log.should_log("10.0.0.1", start));
    CHECK(!log.should_log("10.0.0.1", start + 59s));
    CHECK(log.should_log("10.0.0.2", start + 1s));
    CHECK(log.take_unlogged() == 1);
    CHECK(log.should_log("10.0.0.1", start + 60s));
    // A flood from many addresses: the table stops at its bound, the rest are counted.
    for (std::size_t i = 0; i < RefusalLog::max_addresses + 10; ++i)
        log.should_log("192.168." + std::to_string(i), start + 61s);
    // 1022 fit beside the two; the expired 10.0.0.2 makes room for one more: 11 did not.
    CHECK(log.take_unlogged() == 11);
    CHECK(!log.should_log("172.16.0.1", start + 62s));
    // A minute on, old entries make room again.
    CHECK(log.should_log("172.16.0.1", start + 122s));
}

TEST_CASE("HandshakeVerdict.refusal_and_mismatch_are_final_cuts_after_three") {
    const std::string at = "tcp://h:1";
    SUBCASE("refused by the gatekeeper") {
        HandshakeVerdict verdict;
        const auto why = verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 400, at);
        REQUIRE(why.has_value());
        CHECK(why->find("refused the join token (status 400)") != std::string::npos);
    }
    SUBCASE("mechanisms differ") {
        HandshakeVerdict verdict;
        CHECK(verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, 0, at).has_value());
    }
    SUBCASE("cut without a word: three in a row, a success between starts again") {
        HandshakeVerdict verdict;
        CHECK(!verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, at));
        CHECK(!verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, at));
        CHECK(!verdict.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0, at));
        CHECK(!verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, at));
        CHECK(!verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, at));
        const auto why = verdict.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, at);
        REQUIRE(why.has_value());
        CHECK(why->find("belongs to another broker") != std::string::npos);
    }
    SUBCASE("other events say nothing") {
        HandshakeVerdict verdict;
        CHECK(!verdict.on_event(ZMQ_EVENT_CONNECTED, 0, at));
        CHECK(!verdict.on_event(ZMQ_EVENT_DISCONNECTED, 0, at));
    }
}
