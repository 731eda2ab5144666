#pragma once
/// \file
/// dtask::Client: submits jobs to a broker in another process (dtaskd, or a Cluster that
/// listens), with the same run/submit API as Cluster. split and reduce run here; the broker
/// only routes bytes.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <dtask/export.hpp>
#include <dtask/submitter.hpp>

namespace dtask {

/// Options of a Client. Every field has a default; name only those you change, e.g.
/// `dtask::Client client{"tcp://host:5555", {.token = token}};`.
struct ClientOptions {
    /// How often client and broker show each other they are alive until the broker's
    /// welcome, which replaces it with the broker's own; must be positive. Default 250 ms.
    std::chrono::milliseconds heartbeat_interval{250};
    /// Missed heartbeats after which the broker counts as gone; with heartbeat_interval it
    /// also bounds how long a job waits for a broker that never answers (1.25 s by default).
    /// Replaced by the broker's own on welcome; must be positive. Default 5.
    unsigned heartbeat_liveness = 5;
    /// The client join token of a broker that listens on TCP ('dtaskd tokens', or
    /// Cluster::client_token()). Empty: taken from DTASK_TOKEN, or from the file that
    /// DTASK_TOKEN_FILE names.
    std::string token{};
    /// Connect with plain TCP, without a token, to a broker that runs that way (its owner
    /// asked for insecure_tcp): no encryption, no authentication of either side. Default off.
    bool insecure_tcp = false;
    /// How long running jobs wait for a broker that went away (killed, restarted, out of
    /// reach) to come back on the same endpoint (docs/reliability.md, "Broker restarts").
    /// A restarted broker gets the jobs again, with what was sent and did not come back;
    /// results folded before are kept. Past it, the jobs fail with TransportError saying how
    /// long they waited. 0: they fail at once. Default 60 s, the time a worker waits for its
    /// broker before it gives up (--dtask-give-up).
    std::chrono::milliseconds broker_restart_grace{std::chrono::seconds(60)};
};

/// Submits jobs to a broker in another process: a dtaskd, or a Cluster that listens. run(),
/// submit() and share() come from Submitter, as on a Cluster; split and reduce run in this
/// process, on the client's threads, and map on the broker's workers. The client has an I/O
/// thread that keeps the connection alive (heartbeats) whatever the program does; all its
/// members may be called from any thread.
class DTASK_EXPORT Client final : public Submitter {
public:
    /// Connects to the broker at `endpoint` (such as "tcp://10.0.0.5:5555"). Connecting is
    /// asynchronous: a job submitted meanwhile waits, and fails with TransportError if no
    /// broker answers within heartbeat_interval × heartbeat_liveness, or with the broker's
    /// reason if it refuses the token. Throws TransportError for an endpoint ZeroMQ cannot
    /// parse, Error for a TCP endpoint without a token or a token that is malformed.
    explicit Client(std::string endpoint, ClientOptions options = {});
    /// Fails the jobs still running with an Error (the broker drops their work), waits for a
    /// reduce or on_progress under way to return, and says goodbye to the broker.
    ~Client();

    /// The broker's endpoint, as given to the constructor.
    const std::string& endpoint() const noexcept;
    /// Workers connected to the broker, as it last said.
    std::size_t workers() const override;
    /// Blocks until the broker reports at least `count` workers; false if `timeout` passes
    /// first. Jobs do not need it: they wait for workers themselves (RunOptions::worker_wait).
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;

private:
    void enqueue(std::shared_ptr<detail::RunState> run) override;
    std::size_t planned_workers() const override;
    std::shared_ptr<detail::SharedObject> make_shared_object(std::string bytes) override;

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dtask
