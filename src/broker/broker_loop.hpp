#pragma once
// The broker's loop: one thread waits in one poll (the socket, the stop eventfd, the local
// workers' pidfds), handles a burst of messages, and sends what the burst posted at its end.
// It owns the socket and the context (records, policies' state, outboxes), routes each
// message to the handlers of its peer's role, and runs the heartbeat tick. The handlers ask
// the policies and act on their decisions; only dispatch hands batches to workers.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "broker/accept_failures.hpp"
#include "broker/broker.hpp"
#include "broker/broker_context.hpp"
#include "broker/client_events.hpp"
#include "broker/worker_events.hpp"
#include "log.hpp"
#include "security/refusal_log.hpp"
#include "wire/liveness.hpp"
#include "wire/protocol.hpp"
#include "wire/release.hpp"
#include "wire/socket_poll.hpp"

namespace dtask::detail {

class BrokerLoop {
public:
    using Clock = std::chrono::steady_clock;
    /// How long the goodbyes (dismissals, shutdown failures) have to leave the socket as it
    /// closes.
    static constexpr std::chrono::milliseconds goodbye_linger{2000};

    explicit BrokerLoop(Broker& broker);
    BrokerLoop(const BrokerLoop&) = delete;
    BrokerLoop& operator=(const BrokerLoop&) = delete;

    /// Runs until the stop event, then says goodbye and stops the local workers.
    void run();

private:
    void event_loop();
    void flush_outboxes();
    void drop_unread(std::string id);
    void drop_gone();
    void drop_gone(std::string id);
    bool drain(std::vector<zmq::message_t>& frames);
    Clock::time_point now() const noexcept { return context_.now(); }
    void on_message(std::vector<zmq::message_t>& frames);
    void on_protocol_error(const std::string& id, const std::string& what, Sender sender,
                           const zmq::message_t& frame);
    void on_other_release(const std::string& id, const protocol::OtherRelease& other, Sender sender,
                          const zmq::message_t& frame);
    void log_turned_away(const std::string& line, Sender sender, const zmq::message_t& frame);
    bool admitted(std::string_view id, Sender sender, std::string_view user,
                  const zmq::message_t& frame, const protocol::Inbound& message,
                  std::optional<protocol::Hello>& hello);
    void on_revoked(const std::string& id, const zmq::message_t& frame);
    void refuse_peer(const std::string& id, const std::string& why, const zmq::message_t& frame);
    /// `fd`: the descriptor of the hello's connection (connection_fd), watched for progress.
    void on_hello(const std::string& id, protocol::Hello hello, Sender sender,
                  std::string_view user, int fd);
    void on_out_of_memory(const std::string& id);
    std::string who_is(const std::string& id);
    void tick();
    void on_accept_failures();
    void on_children_exits();
    /// Says goodbye: `dismiss` (a normal stop) sends every worker `bye`, else only the local
    /// ones; fails the jobs it still knows, and stops the local workers.
    void shut_down(bool dismiss);

    BrokerContext context_;
    WorkerEvents worker_events_{context_};
    ClientEvents client_events_{context_};
    zmq::socket_t& socket_;
    Clock::time_point next_tick_;
    Clock::time_point last_drained_ = Clock::now();  // the socket last had nothing unread
    std::vector<std::string> gone_;  // peers whose routing id a send found gone, to drop
    Liveness liveness_;              // who is silent, and the loop's own stalls
    Gatekeeper* gatekeeper_;         // null without CurveZMQ
    SocketMonitor* accepts_;         // null without listen endpoints
    AcceptFailures accept_failures_;
    RepeatedWarning malformed_log_{std::chrono::seconds(10)};  // the owner's malformed messages
    RepeatedWarning out_of_memory_log_{std::chrono::seconds(10)};
    RefusalLog refused_;    // the peers refused (malformed, other release) in the last minute
    SocketPoll<4> poller_;  // the stop event, the exits, the gatekeeper, the failed accepts
};

}  // namespace dtask::detail
