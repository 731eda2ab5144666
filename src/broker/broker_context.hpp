#pragma once
// The broker's context: what the loop and its handlers for workers and clients share (the
// records, the policies' state, the outboxes) and the acts they all take: posting, ending a
// job, telling clients how many workers there are. Policies get parts of it, never the whole.

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "broker/broker.hpp"
#include "broker/credits.hpp"
#include "broker/dispatch.hpp"
#include "broker/fair_share.hpp"
#include "broker/heartbeat_pace.hpp"
#include "broker/jobs.hpp"
#include "broker/local_workers.hpp"
#include "broker/peers.hpp"
#include "broker/recovery.hpp"
#include "broker/shared_objects.hpp"
#include "http/statistics.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/outbox.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

/// "250 ms", for messages a person reads.
inline std::string format_ms(std::chrono::milliseconds ms) {
    return std::to_string(ms.count()) + " ms";
}

struct BrokerContext {
    using Clock = std::chrono::steady_clock;

    explicit BrokerContext(Broker& owner);
    BrokerContext(const BrokerContext&) = delete;
    BrokerContext& operator=(const BrokerContext&) = delete;

    /// Sends a message at the end of the burst (Outbox).
    void post(std::string_view to, std::span<zmq::message_t> frames) { outbox.add(to, frames); }
    /// Sends a result to its client at the end of the burst, ahead of every other message.
    void post_result(std::string_view client, std::span<zmq::message_t> frames) {
        for (const auto& frame : frames)
            stats.sent_to_client(frame.size());
        results.add(client, frames);
    }
    /// When the message being handled was read (clock).
    Clock::time_point now() const noexcept { return clock.last(); }

    /// Refuses a peer, saying why in protocol version `in_version` (the peer's own).
    void refuse(const std::string& id, const std::string& reason,
                std::uint8_t in_version = protocol::version);
    /// Welcomes a peer; `bounded`: one that may have come over a listen endpoint, told the
    /// maximum message size there.
    void welcome(const std::string& id, bool bounded);
    void send_status(const std::string& client_id);
    /// The number of workers, for the Broker's other threads and for the clients.
    void publish_worker_count();
    /// Tells both sides when a worker offers a job under the same name with other types.
    void check_definition(const WorkerPeer& worker, const BrokerJob& job);
    /// Reports the failure to the job's client and forgets the job.
    void fail_job(BrokerJob& job, std::uint64_t index, const protocol::Failure& failure);
    /// Forgets a job that ended: `state` is how, for the statistics and the log, "done",
    /// "failed" (with `error`) or "cancelled" (by its client).
    void forget_job(std::uint64_t job_id, const char* state = "done", std::string_view error = {});
    /// Publishes a status snapshot for the HTTP endpoint if one is due.
    void publish_status(Clock::time_point now);
    /// Marks the worker stuck if it holds a batch of `job_id`, which ended.
    void hold_stuck(WorkerPeer& worker, std::uint64_t job_id);
    /// Forgets shared object `id` and tells the workers that hold it to drop it.
    void drop_shared(std::uint64_t id);
    /// The broker's endpoints, for messages a person reads.
    std::string listening() const;
    /// Whether `client` is the owner's own (admitted without a credential): only it may read
    /// how the host's local workers fail, which names the host's processes and files.
    bool owners_client(const std::string& client) const;

    Broker& broker;
    const BrokerOptions& options;
    /// Drawn at random when the broker starts and sent in every welcome: a client that says
    /// hello again after losing its broker learns from it whether the broker restarted.
    const std::uint64_t incarnation;
    Peers peers;
    /// The interval peers heartbeat at now (welcome, pace), which the loop's tick keeps.
    HeartbeatPace pace{options.heartbeat_interval, options.heartbeat_liveness,
                       options.heartbeats_per_second};
    Jobs jobs{options.max_subtask_time};
    FairShare fair_share;
    Recovery recovery;
    SharedObjects shared{options.shared_bytes_per_client};
    WithRoom<WorkerPeer> room;  // workers with room for more batches
    LocalWorkers local;
    Outbox results;  // results the burst forwards to clients
    Outbox outbox;   // everything else the burst sends
    // When the message being handled was read, shared by everything that stamps it: read
    // once per turn, then every few messages of a burst.
    LazyClock clock;
    BrokerStatistics stats{options.statistics};
    Dispatch dispatch{peers, jobs, fair_share, recovery, room, outbox, clock, stats};
};

}  // namespace dtask::detail
