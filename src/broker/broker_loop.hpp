#pragma once
// The broker's loop: one thread waits in one poll (the socket, the stop eventfd, the local
// workers' pidfds), handles a burst of messages, and sends what the burst posted at its end.
// It owns the socket, the outboxes and every record, routes each message to its handler,
// asks the policies, and acts on their decisions: only it posts, but for the batches that
// dispatch hands to workers.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "broker/broker.hpp"
#include "broker/credits.hpp"
#include "broker/dispatch.hpp"
#include "broker/fair_share.hpp"
#include "broker/jobs.hpp"
#include "broker/local_workers.hpp"
#include "broker/peers.hpp"
#include "broker/recovery.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/outbox.hpp"
#include "wire/protocol.hpp"
#include "wire/socket_poll.hpp"

namespace dtask::detail {

class BrokerLoop {
public:
    using Clock = std::chrono::steady_clock;

    explicit BrokerLoop(Broker& broker);
    BrokerLoop(const BrokerLoop&) = delete;
    BrokerLoop& operator=(const BrokerLoop&) = delete;

    /// Runs until the stop event, then says goodbye and stops the local workers.
    void run();

private:
    // The loop and its sends (broker_loop.cpp).
    void event_loop();
    /// Sends a message at the end of the burst (Outbox).
    void post(std::string_view to, std::span<zmq::message_t> frames) { outbox_.add(to, frames); }
    /// Sends a result to its client at the end of the burst, ahead of every other message.
    void post_result(std::string_view client, std::span<zmq::message_t> frames) {
        results_.add(client, frames);
    }
    void flush_outboxes();
    bool drain(std::vector<zmq::message_t>& frames);
    /// When the message being handled was read (clock_).
    Clock::time_point now() const noexcept { return clock_.last(); }
    void on_message(std::vector<zmq::message_t>& frames);
    void on_protocol_error(const std::string& id, const std::string& what);
    void refuse(const std::string& id, const std::string& reason);
    void tick();
    void on_children_exits();
    void shut_down();

    // Peers (broker_peers.cpp).
    void on_hello(const std::string& id, protocol::Inbound& message);
    void welcome(const std::string& id);
    void send_status(const std::string& client_id);
    void publish_worker_count();
    void check_definition(const WorkerPeer& worker, const BrokerJob& job);
    void worker_lost(std::string id, const std::string& how, bool crashed = true);
    void client_lost(std::string id, const std::string& how);

    // Workers' messages (broker_workers.cpp).
    void on_worker_message(WorkerPeer& worker, protocol::Inbound& message);
    void on_result(WorkerPeer& worker, protocol::Inbound& message);
    void batch_done(WorkerPeer& worker, std::deque<HeldBatch>::iterator held, BrokerJob* job,
                    std::vector<std::string>& revoked);
    void on_failure(WorkerPeer& worker, protocol::Inbound& message);
    void on_pulse(const std::string& sender, protocol::Inbound& message);
    void on_timed_out(BrokerJob& job, HeldBatch& batch, std::uint64_t index,
                      const protocol::Failure& report, const std::string& worker_id);

    // Clients' messages and jobs (broker_clients.cpp).
    void on_client_message(ClientPeer& client, protocol::Inbound& message);
    std::uint64_t job_id_of(const ClientPeer& client, std::uint64_t client_job) const;
    void on_submit(ClientPeer& client, protocol::Inbound& message);
    void on_task(ClientPeer& client, protocol::Inbound& message);
    void fail_job(BrokerJob& job, std::uint64_t index, const protocol::Failure& failure);
    void forget_job(std::uint64_t job_id);
    void check_worker_waits(Clock::time_point now);
    std::string listening() const;

    Broker& broker_;
    zmq::socket_t& socket_;
    const BrokerOptions& options_;
    Peers peers_;
    Jobs jobs_;
    FairShare fair_share_;
    Recovery recovery_;
    WithRoom<WorkerPeer> room_;  // workers with room for more batches
    LocalWorkers local_;
    Outbox results_;  // results the burst forwards to clients
    Outbox outbox_;   // everything else the burst sends
    // When the message being handled was read, shared by everything that stamps it: read
    // once per turn, then every few messages of a burst.
    LazyClock clock_;
    Dispatch dispatch_{peers_, jobs_, fair_share_, recovery_, room_, outbox_, clock_};
    Clock::time_point next_tick_;
    Clock::time_point last_drained_ = Clock::now();  // the socket last had nothing unread
    SocketPoll<2> poller_;                           // the stop event, then the exits
};

}  // namespace dtask::detail
