#pragma once
// What a worker or client makes of its secure handshakes with the broker. A refusal by the
// broker's gatekeeper and a mismatch of mechanisms (plain on one side, CurveZMQ on the
// other) are final at once. A handshake the broker cut without a word is what a wrong broker
// key looks like (the token belongs to another broker), but also what a link that broke at
// that moment looks like, and a mismatch of mechanisms when the other side hangs up before
// its greeting is read: final after three in a row with no success between.

#include <cstdint>
#include <optional>
#include <string>

#include <zmq.h>

namespace dtask::detail {

class HandshakeVerdict {
public:
    static constexpr unsigned cut_limit = 3;

    /// The judgement of one monitor event of the connection to `endpoint`: why to give up,
    /// or nullopt to go on.
    std::optional<std::string> on_event(std::uint16_t event, std::uint32_t value,
                                        const std::string& endpoint) {
        switch (event) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
                cuts_ = 0;
                return std::nullopt;
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                return "the broker at " + endpoint + " refused the join token (status " +
                       std::to_string(value) +
                       "): it is wrong, or was rotated; ask the broker's owner for the current one";
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
                return "the broker at " + endpoint +
                       " speaks another security mechanism: one side uses CurveZMQ (a join "
                       "token), the other plain TCP (insecure_tcp); both must agree";
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                if (++cuts_ < cut_limit)
                    return std::nullopt;
                return "the broker at " + endpoint + " cut the secure handshake " +
                       std::to_string(cuts_) +
                       " times: the join token belongs to another broker (or an earlier run "
                       "of this one), or the broker runs with plain TCP (insecure_tcp)";
            default:
                return std::nullopt;
        }
    }

private:
    unsigned cuts_ = 0;
};

/// The events HandshakeVerdict judges.
inline constexpr int handshake_events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;

}  // namespace dtask::detail
