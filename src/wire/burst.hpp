#pragma once
// Draining a burst: the messages a socket holds now are handled in one go, so that a burst
// costs one wait, up to a bound after which the loop's timers get their turn.

#include <vector>

#include <zmq.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {

/// How a burst ended: the socket had nothing more, the bound was reached, or the handler
/// asked to stop.
enum class BurstEnd { empty, bound, stopped };

/// Receives up to `bound` messages (each look again counts as one) from `socket` into `frames`, calling `handle(frames)` on
/// each; `handle` returns false to stop. When the socket is empty, `look_again()` may send
/// what the burst posted and return true: a send may take the signal of a message that
/// arrived meanwhile, so the socket is read again.
template <class Handle, class LookAgain>
BurstEnd drain_burst(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, int bound,
                     Handle&& handle, LookAgain&& look_again) {
    for (int turn = 0; turn < bound; ++turn) {
        if (!protocol::receive(socket, frames, false)) {
            if (look_again())
                continue;
            return BurstEnd::empty;
        }
        if (!handle(frames))
            return BurstEnd::stopped;
    }
    return BurstEnd::bound;
}

/// drain_burst() for a loop with nothing to send before it looks again.
template <class Handle>
BurstEnd drain_burst(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, int bound,
                     Handle&& handle) {
    return drain_burst(socket, frames, bound, handle, [] { return false; });
}

}  // namespace dtask::detail
