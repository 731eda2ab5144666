#pragma once
// The connection: one DEALER to the broker and the session on it (hello, welcome, refusal,
// reconnect, the wait for a restarted broker), heartbeats both ways under the Liveness rule,
// and the routing of each message received to the client loop. Every message the client
// sends goes out from here; while it waits for its broker, those about jobs are held back.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "client/broker_restart.hpp"
#include "client/client_core.hpp"
#include "security/handshake_watch.hpp"
#include "wire/connection_progress.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/liveness.hpp"
#include "wire/protocol.hpp"
#include "wire/socket_poll.hpp"

namespace dtask::detail {

class ClientLoop;

class Connection {
public:
    using Clock = std::chrono::steady_clock;

    /// Connects to options.endpoint and says hello; routes what the broker sends to `loop`.
    Connection(zmq::context_t& context, const ClientCoreOptions& options, ClientLoop& loop);

    /// Notes a wake-up later than `planned`: the Liveness rule does not count a stall of
    /// this thread as the broker's silence.
    void woke(Clock::time_point planned, Clock::time_point now) noexcept {
        liveness_.woke(planned, now);
    }
    /// Waits for the socket, `other_fd` and up to `timeout`; true if `other_fd` is readable.
    bool wait(int other_fd, std::chrono::milliseconds timeout);
    /// Handles the messages the socket holds, up to 256 and until `slice_end`, each at a
    /// time from `clock`.
    void receive_burst(LazyClock& clock, Clock::time_point slice_end);
    /// The socket may hold messages this thread has not seen (a loop handed from another
    /// thread): the next wait must look at it first.
    void watch_again() { poller_.watch(socket_); }

    /// When the next heartbeat is due.
    Clock::time_point next_heartbeat() const noexcept { return next_heartbeat_; }
    /// The next heartbeat is due one interval after `now`.
    void reset_heartbeat(Clock::time_point now) noexcept {
        next_heartbeat_ = now + liveness_.interval();
    }
    /// Sends a heartbeat if one is due at `now`, and judges the broker's silence.
    void heartbeat_if_due(Clock::time_point now);

    /// Why the broker refused this client; empty if it did not.
    const std::string& refusal() const noexcept { return refusal_; }
    /// The largest frame the broker takes from this client (its welcome says); 0: no bound,
    /// or not welcomed yet.
    std::uint64_t max_message() const noexcept { return max_message_; }

    // ---- what the client says ----
    void send_submit(std::uint64_t id, const RunState& run, const protocol::JobSettings& settings);
    /// A task message: `bytes` holds task_header_room bytes, then the batch of `count`
    /// subtasks from `first`. With `keep`, returns the frame (sharing its bytes) to send
    /// again after a broker restart; else an empty one.
    zmq::message_t send_batch(std::uint64_t id, std::uint64_t first, std::uint64_t count,
                              std::string& bytes, bool keep = false);
    /// A task frame kept from send_batch, sent again to a restarted broker.
    void resend_batch(zmq::message_t& frame);
    /// Whether batches are worth keeping: the client waits for a restarted broker.
    bool keeps_batches() const noexcept { return restart_.grace().count() > 0; }
    /// The broker's restart policy: the loop tells it when a job hears a result.
    BrokerRestart& restart() noexcept { return restart_; }
    /// Shared object `id` was released: the broker frees it, if this session sent it.
    void send_unshare(std::uint64_t id);
    /// The broker refused shared object `id`: the next job that uses it sends it again.
    void forget_share(std::uint64_t id) { shares_sent_.erase(id); }
    /// A message of `command` about job `id` alone (split_done, cancel, end).
    void send_about(protocol::Command command, std::uint64_t id);
    /// Job `id` finished: the broker hears its end with the next submit or heartbeat.
    void note_finished(std::uint64_t id) { finished_.push_back(id); }
    /// The `end` of the jobs finished since the last call.
    void tell_finished();
    void say_goodbye();
    /// say_goodbye() on a connection being dropped: if it fails, closing the socket is all
    /// that is left to do.
    void say_goodbye_if_possible() noexcept;

private:
    void open();
    void say_hello();
    void on_welcome(const protocol::Inbound& message, const zmq::message_t& header);
    /// Whether job messages are held back: the broker is lost and the client waits for it.
    bool holding() const noexcept { return restart_.waiting(); }
    void on_message(std::vector<zmq::message_t>& frames);
    void check_broker(Clock::time_point now);
    /// Fails the jobs once the wait for a lost broker has lasted its grace period.
    void check_restart(Clock::time_point now);
    void on_broker_lost(const std::string& why);

    const ClientCoreOptions& options_;
    ClientLoop& loop_;
    zmq::socket_t socket_;
    std::vector<zmq::message_t> frames_;             // of the message being handled
    Liveness liveness_;                              // the broker's heartbeat settings
    Clock::time_point last_drained_ = Clock::now();  // a receive last found the socket empty
    Clock::time_point last_heard_;
    ConnectionProgress progress_;  // the connection the welcome came on: moving bytes is life
    Clock::time_point next_heartbeat_;
    std::optional<HandshakeWatch> handshakes_;  // with a join token
    SocketPoll<2> poller_{{-1, -1}};       // the socket, the mailbox's wake or stop, the handshakes
    bool welcomed_ = false;                // ever
    bool awaiting_welcome_ = false;        // to the last hello
    std::string refusal_;                  // set once the broker refused us
    std::uint64_t max_message_ = 0;        // the broker's maximum frame, 0: none
    std::vector<std::uint64_t> finished_;  // jobs done whose end the broker has yet to hear
    std::unordered_set<std::uint64_t> shares_sent_;  // shared objects this session sent
    zmq::context_t& context_;
    BrokerRestart restart_;      // whether to wait for a lost broker, and for how long
    std::string lost_why_;       // why the wait under way began
    Clock::time_point lost_at_;  // when
};

}  // namespace dtask::detail
