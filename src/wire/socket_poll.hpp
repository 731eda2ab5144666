#pragma once
// Sleeping until a ZeroMQ socket has messages or another file descriptor is readable, with
// one poll(2). zmq_poll makes up to five system calls for one sleep: a first pass that does
// not block, a look at the socket's pending commands before and after, and the sleep. A
// one-subtask batch wakes the host, the broker and a worker a few times on its way, so
// those calls showed in every loop of a run with batching off.
//
// The socket's own descriptor (ZMQ_FD) tells only of what arrives after the socket last
// looked at its pending commands: after a receive that found it empty, and before any
// send or ZMQ_EVENTS on it, which may take the signal of a message that just arrived. So a
// loop says when a receive found the socket empty; a send since, or unread(), cancels that,
// and the next wait does not sleep.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <poll.h>
#include <zmq.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {

template <std::size_t Others>
class SocketPoll {
public:
    /// `others`: descriptors to wait for as well (readable).
    explicit SocketPoll(std::array<int, Others> others) {
        for (std::size_t i = 0; i < Others; ++i)
            fds_[i + 1] = {others[i], POLLIN, 0};
    }

    /// Waits for `socket` from now on (the first, or a new one after a reconnect).
    void watch(zmq::socket_t& socket) {
        fds_[0] = {socket.get(zmq::sockopt::fd), POLLIN, 0};
        drained_ = false;
    }
    /// Replaces other descriptor `index`.
    void watch_other(std::size_t index, int fd) noexcept { fds_[index + 1].fd = fd; }

    /// Whether the last receive found the socket empty.
    void drained(bool empty) noexcept {
        drained_ = empty;
        sends_when_drained_ = protocol::sends_on_this_thread();
    }
    /// Whether messages wait on the socket (ZMQ_EVENTS). ZMQ_EVENTS takes the descriptor's
    /// signal: if none wait, the socket is drained as after an empty receive (ZMQ_FD signals
    /// what comes next); if some do, it is not, and the next wait does not sleep.
    bool unread(zmq::socket_t& socket) {
        const bool waiting =
            (protocol::retry_interrupted([&] { return socket.get(zmq::sockopt::events); }) &
             ZMQ_POLLIN) != 0;
        drained(!waiting);
        return waiting;
    }

    /// Sleeps until the socket or another descriptor is readable, or `timeout`; does not
    /// sleep unless the socket was drained and nothing was sent since. A signal that
    /// interrupts it counts as a timeout.
    void wait(std::chrono::milliseconds timeout) noexcept {
        const bool sleep = drained_ && sends_when_drained_ == protocol::sends_on_this_thread();
        const int wait_ms = sleep ? static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
                                        timeout.count(), 0, std::numeric_limits<int>::max()))
                                  : 0;
        if (::poll(fds_.data(), fds_.size(), wait_ms) < 0) {
            for (auto& fd : fds_)
                fd.revents = 0;
        }
    }
    /// Whether other descriptor `index` (in the constructor's order) is readable.
    bool readable(std::size_t index) const noexcept {
        return (fds_[index + 1].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    }

private:
    std::array<pollfd, Others + 1> fds_{};
    bool drained_ = false;
    std::uint64_t sends_when_drained_ = 0;
};

}  // namespace dtask::detail
