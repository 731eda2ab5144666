#pragma once
// Connection progress: whether a peer's TCP connection received bytes since it was last
// looked at. ZeroMQ hands over whole messages only, so on a slow link a peer's heartbeats
// wait behind its big message; a connection still receiving that message shows the peer
// alive. Only bytes received count: a frozen peer's kernel still acknowledges what is sent
// to it (our heartbeats), while what it sends stops once its kernel has sent what it held.

#include <array>
#include <chrono>
#include <cstdint>

#include <zmq.hpp>

namespace dtask::detail {

/// One look at a connection: which it is (its descriptor and both addresses) and how many
/// bytes it had received. Not `valid` unless it is a TCP socket whose counters were read.
struct ConnectionSample {
    int fd = -1;
    std::array<unsigned char, 28> local{};  // a sockaddr_in or sockaddr_in6
    std::array<unsigned char, 28> peer{};
    std::uint64_t bytes_received = 0;  // in order
    std::uint32_t data_segs_in = 0;    // segments with data, also out of order
    bool valid = false;
};

/// Looks at descriptor `fd` now (getsockname, getpeername, TCP_INFO); never reads or
/// writes through it.
ConnectionSample sample_connection(int fd) noexcept;

/// Whether two valid samples are of the same connection: the same descriptor with the same
/// addresses. A descriptor closed and reused by another connection is not the same one.
bool same_connection(const ConnectionSample& a, const ConnectionSample& b) noexcept;

/// The descriptor of the connection `message` came on (libzmq's "__fd" property, as its
/// ZMQ_SRCFD had it), or -1 where there is none (inproc).
int connection_fd(const zmq::message_t& message) noexcept;

/// One peer's connection, watched for progress: looked at on each judgement while the peer is
/// quiet (nothing heard from it for an interval), never per message.
class ConnectionProgress {
public:
    using Clock = std::chrono::steady_clock;
    using Probe = ConnectionSample (*)(int fd);

    /// Watches nothing: it never moves.
    ConnectionProgress() = default;
    /// Watches the connection on `fd` as it is now; `probe` looks at it (tests give theirs).
    explicit ConnectionProgress(int fd, Probe probe = sample_connection) noexcept;

    /// Looks at the connection at `now`: whether it received data since the last look, if
    /// that look was taken in the quiet spell that began at `quiet_since`. False without
    /// such a look, or if the descriptor is another connection's now.
    bool advanced(Clock::time_point quiet_since, Clock::time_point now) noexcept;

    /// The descriptor watched, or -1.
    int fd() const noexcept { return watched_.valid ? watched_.fd : -1; }
    /// Stops watching: the descriptor now carries another peer's connection.
    void forget() noexcept { *this = ConnectionProgress(); }

private:
    Probe probe_ = nullptr;
    ConnectionSample watched_;  // the connection as it was when watched
    std::uint64_t looked_bytes_ = 0;
    std::uint32_t looked_segs_ = 0;
    Clock::time_point looked_at_{};
    bool looked_ = false;  // ever
};

}  // namespace dtask::detail
