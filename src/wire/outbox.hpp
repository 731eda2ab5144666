#pragma once
// Messages a loop sends at the end of its burst instead of one at a time. Each message sent
// to a peer whose queue had run dry wakes the thread that reads it (the peer's, or
// ZeroMQ's I/O thread, which then makes one system call to write it): a loop answering a
// burst of one-subtask messages one by one wakes its peers once per message. Sent together,
// a burst's messages wake each reader once and leave in one write.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

namespace dtask::detail {

class Outbox {
public:
    /// Queues a message of `frames` (taken over), to routing id `to` unless it is empty.
    void add(std::string_view to, std::span<zmq::message_t> frames);
    /// Sends every queued message on `socket`, in order. If a send throws, the messages
    /// not yet sent are dropped.
    void flush(zmq::socket_t& socket);
    /// The same for a ROUTER with ZMQ_ROUTER_MANDATORY, whose messages all have a routing id:
    /// a message to a peer that has left too many unread is dropped, and that peer's id is
    /// added to `full` (once); one to a peer whose connection is gone is dropped, and its id
    /// added to `gone` (once).
    void flush_routed(zmq::socket_t& socket, std::vector<std::string>& full,
                      std::vector<std::string>& gone);
    bool empty() const noexcept { return sizes_.empty(); }

private:
    void clear() noexcept;

    std::vector<zmq::message_t> frames_;  // of every message queued, routing ids included
    std::vector<std::uint32_t> sizes_;    // frames of each message
};

}  // namespace dtask::detail
