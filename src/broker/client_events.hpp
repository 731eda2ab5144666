#pragma once
// The broker's loop, for clients: a client's hello, its jobs (submit, batches of subtasks,
// the end of the split, end and cancel), the wait of a job for a worker, and the loss of a
// client, which drops its jobs.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/broker_context.hpp"
#include "broker/client_limits.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

/// What a client that is not the owner's reads of local workers that cannot start.
inline constexpr std::string_view local_failures_for_others =
    "the host's local workers cannot start; the host's log says why";

class ClientEvents {
public:
    using Clock = std::chrono::steady_clock;

    explicit ClientEvents(BrokerContext& context) : c_(context) {}

    /// `in_process`: it came over inproc (the Cluster's own client).
    void hello(const std::string& id, const protocol::Hello& hello, bool in_process);
    void on_message(ClientPeer& client, protocol::Inbound& message);
    void lost(std::string id, const std::string& how);
    /// Fails the jobs that no connected worker has served for their worker_wait, or at once
    /// while local workers cannot start.
    void check_worker_waits(Clock::time_point now);
    /// Tells the jobs waiting for a worker why none comes (a notice), once per reason.
    void tell_waiting_jobs(const std::string& why);

private:
    /// The broker's id of the client's job `client_job`, 0 if it ended. Throws
    /// ProtocolError for one the client never submitted.
    std::uint64_t job_id_of(const ClientPeer& client, std::uint64_t client_job,
                            protocol::Command command) const;
    /// The limits on `client`: none for a client in the broker's own process.
    ClientLimits limits_of(const ClientPeer& client) const;
    void on_submit(ClientPeer& client, protocol::Inbound& message);
    /// Fails a job at its submit, before it exists, saying `why`: its client goes on.
    void refuse_job(const ClientPeer& client, const protocol::Inbound& message,
                    protocol::FailureKind kind, const std::string& why);
    void on_task(ClientPeer& client, protocol::Inbound& message);

    BrokerContext& c_;
};

}  // namespace dtask::detail
