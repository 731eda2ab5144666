#pragma once
/// \file dtask::Client: submits jobs to a broker in another process (dtaskd, or a Cluster
/// that listens), with the same run/submit API as Cluster. split and reduce run here; the
/// broker only routes bytes.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <dtask/export.hpp>
#include <dtask/submitter.hpp>

namespace dtask {

struct ClientOptions {
    /// How often client and broker show each other they are alive; the broker's welcome
    /// replaces these with its own settings.
    std::chrono::milliseconds heartbeat_interval{250};
    unsigned heartbeat_liveness = 5;
    /// The client join token of a broker that listens on TCP ('dtaskd tokens', or
    /// Cluster::client_token()). Empty: taken from DTASK_TOKEN, or from the file that
    /// DTASK_TOKEN_FILE names.
    std::string token{};
    /// Connect with plain TCP, without a token, to a broker that runs that way (its owner
    /// asked for insecure_tcp): no encryption, no authentication of either side.
    bool insecure_tcp = false;
};

class DTASK_EXPORT Client final : public Submitter {
public:
    /// Connects to the broker at `endpoint` (e.g. "tcp://10.0.0.5:5555"). Connecting is
    /// asynchronous: a job submitted meanwhile waits, and fails with TransportError if no
    /// broker answers within heartbeat_interval × heartbeat_liveness, or with the broker's
    /// reason if it refuses the token. Throws TransportError for an endpoint ZeroMQ cannot
    /// parse, Error for a TCP endpoint without a token or a token that is malformed.
    explicit Client(std::string endpoint, ClientOptions options = {});
    /// Fails the jobs still running with an Error.
    ~Client();

    const std::string& endpoint() const noexcept;
    /// Workers connected to the broker, as it last said.
    std::size_t workers() const override;
    /// Waits until the broker reports at least `count` workers; false on timeout.
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;

private:
    void enqueue(std::shared_ptr<detail::RunState> run) override;
    std::size_t planned_workers() const override;
    std::shared_ptr<detail::SharedObject> make_shared_object(std::string bytes) override;

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dtask
