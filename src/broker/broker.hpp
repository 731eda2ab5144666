#pragma once
// The broker: routes subtasks from clients to workers that pull them with credits, and
// partial results back. One thread, one ROUTER socket bound to every endpoint; event-driven
// (zmq poll on the socket, a stop eventfd and the local workers' pidfds), no sleeping.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "broker/client_limits.hpp"
#include "broker/respawn_backoff.hpp"
#include "http/snapshot.hpp"
#include "process.hpp"
#include "security/gatekeeper.hpp"
#include "security/handshake_watch.hpp"

namespace dtask::detail {

/// How the listen endpoints are guarded (docs/security.md).
struct BrokerSecurity {
    /// CurveZMQ with the gatekeeper on every listen endpoint; false: plain TCP, which anyone
    /// who reaches it may join (the user asked for it by name, and a warning says so).
    bool curve = true;
    std::string secret_key;  // the broker's CurveZMQ secret key (Z85)
    Credentials admitted;
};

/// How long a connection to a listen endpoint may take to finish its handshake (ZeroMQ's
/// greeting, and CurveZMQ's with the gatekeeper's answer) before it is cut.
inline constexpr std::chrono::milliseconds handshake_limit{5000};
/// Connections waiting to be accepted on a listen endpoint (ZMQ_BACKLOG), at most.
inline constexpr int listen_backlog = 4096;

/// Messages of one peer over the network that wait unread at most (ZMQ_RCVHWM on the listen
/// endpoints): a peer that sends faster than the broker handles them is held back.
inline constexpr std::size_t max_unread_per_peer = 10'000;

/// Messages to one peer over the network that may wait unread (ZMQ_SNDHWM on the listen
/// endpoints) before the broker drops that peer; the default of max_unsent_per_peer.
inline constexpr std::size_t default_max_unsent_per_peer = 100'000;
/// 150 peers at 250 ms; a thousand heartbeated every 2 s (docs/deployment.md).
inline constexpr unsigned default_heartbeats_per_second = 600;

/// The largest hello taken from a peer not yet introduced: a larger one is refused unread.
inline constexpr std::size_t max_hello_bytes = std::size_t{1} << 20;

struct BrokerOptions {
    /// The owner's own socket, first among the endpoints and bound without CurveZMQ: only
    /// the owner can reach it (a Cluster's, for its local workers). Empty for none.
    std::string private_endpoint;
    std::vector<std::string> endpoints;  // the listen endpoints, bound in this order
    BrokerSecurity security;
    /// Also bound, not listed among the endpoints: for a client in this process sharing the
    /// broker's ZeroMQ context, whose messages then skip ZeroMQ's I/O thread altogether.
    std::string inproc_endpoint;
    unsigned local_workers = 0;
    unsigned local_worker_credits = 64;
    /// How local workers that die are replaced (RespawnBackoff).
    RespawnLimits local_worker_respawn{};
    std::chrono::milliseconds heartbeat_interval{250};
    unsigned heartbeat_liveness = 5;
    /// Heartbeats sent each second at most: with more peers than this × the interval, the
    /// interval doubles (HeartbeatPace); 0: no bound.
    unsigned heartbeats_per_second = default_heartbeats_per_second;
    /// Bytes of shared objects kept for one client at most (SharedObjects); 0: no bound.
    std::size_t shared_bytes_per_client = std::size_t{4} << 30;
    /// The subtask timeout of a job whose client set none; 0: none (Jobs::submit).
    std::chrono::milliseconds max_subtask_time{0};
    /// The largest frame taken on the listen endpoints (ZMQ_MAXMSGSIZE), announced to peers
    /// in their welcome; 0: no bound. The private and in-process endpoints have none.
    std::size_t max_message_bytes = std::size_t{256} << 20;
    /// Messages to one peer over the network that may wait unread; a peer that leaves more is
    /// dropped, as one gone silent is. 0: no bound. The private and in-process endpoints have
    /// none (the owner's own peers).
    std::size_t max_unsent_per_peer = default_max_unsent_per_peer;
    /// Jobs, job-wide data and queued bytes per client at most, for every client but one in
    /// the broker's own process (a Cluster's own); 0: no bound.
    ClientLimits client_limits;
    /// Keep statistics and publish a StatusSnapshot for the HTTP endpoint; off: nothing kept.
    bool statistics = false;
};

class BrokerLoop;
struct BrokerContext;

/// The broker's facade: binds the socket, runs BrokerLoop on a thread of its own, and tells
/// other threads how many workers it has.
class Broker {
public:
    /// Binds every endpoint (throws TransportError naming the one that failed).
    Broker(zmq::context_t& context, BrokerOptions options);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    /// Starts the broker thread, which starts the local workers.
    void start();
    /// Stops local workers (and reaps them), then the thread. Idempotent.
    void stop();

    const std::vector<std::string>& endpoints() const noexcept { return endpoints_; }
    std::size_t workers() const noexcept { return worker_count_.load(); }
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;
    std::vector<pid_t> local_worker_pids() const;
    /// Admits `credentials` from now on: a handshake after this returns meets them, and a
    /// peer admitted with a credential replaced here is refused at its next message.
    void replace_credentials(Credentials credentials) {
        credentials_->replace(std::move(credentials));
    }
    /// The last status the loop published (BrokerOptions::statistics), or null before the
    /// first; for other threads, which read it and never wait for the loop.
    std::shared_ptr<const StatusSnapshot> status() const {
        std::lock_guard lock(status_mutex_);
        return status_;
    }

private:
    void bind(const std::string& endpoint, bool listed);
    void bound_for_the_network();

    void run() noexcept;
    /// Tells start() that the loop has published its first status (or ended).
    void loop_started();

    BrokerOptions options_;
    zmq::context_t& context_;
    zmq::socket_t socket_;
    std::shared_ptr<CredentialStore> credentials_;
    std::unique_ptr<Gatekeeper> gatekeeper_;  // with CurveZMQ only
    std::unique_ptr<SocketMonitor> accepts_;  // failed accepts, with listen endpoints only
    std::vector<std::string> endpoints_;
    int stop_fd_ = -1;
    std::thread thread_;

    std::atomic<std::size_t> worker_count_{0};
    mutable std::mutex mutex_;
    mutable std::condition_variable
        state_changed_;  // the loop started, or the worker count changed
    bool started_ = false;
    std::vector<pid_t> local_pids_;
    mutable std::mutex status_mutex_;  // held only to swap or copy the pointer
    std::shared_ptr<const StatusSnapshot> status_;
    friend class BrokerLoop;
    friend struct BrokerContext;
};

}  // namespace dtask::detail
