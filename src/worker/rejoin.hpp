#pragma once
// Rejoin: when a worker gives up on its socket and says hello on a new one. After the
// broker's silence (the Liveness rule) plus a backoff that doubles from one interval to 8 s;
// and a hello not yet welcomed waits at least hello_patience. In a join storm of many worker
// processes the broker's handshakes and welcomes queue up for seconds: a new socket would
// give up the old one's place in that queue and add a handshake more to it, so every worker
// would keep starting over.

#include <algorithm>
#include <chrono>

namespace dtask::detail {

/// Twice the broker's handshake limit (broker/broker.hpp): by then a connection the broker
/// took has been welcomed or cut.
inline constexpr std::chrono::seconds hello_patience{10};

/// Whether to replace a socket the broker has been silent on for `quiet`.
inline bool time_to_rejoin(std::chrono::steady_clock::duration quiet,
                           std::chrono::steady_clock::duration silence,
                           std::chrono::steady_clock::duration backoff, bool welcomed) noexcept {
    const auto wait = silence + backoff;
    return quiet >
           (welcomed ? wait : std::max<std::chrono::steady_clock::duration>(wait, hello_patience));
}

/// The backoff after a rejoin: doubled, up to 8 s.
inline std::chrono::milliseconds next_rejoin_backoff(std::chrono::milliseconds backoff) noexcept {
    return std::min(backoff * 2, std::chrono::milliseconds(std::chrono::seconds(8)));
}

}  // namespace dtask::detail
