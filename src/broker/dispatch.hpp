#pragma once
// Dispatch: the one place that hands batches to workers. A worker with room gets, in this
// order, a quarantined batch to run alone (if it is reserved for one), the next batch of the
// job whose turn it is (fair share), or a backup copy; a job's first batch on a worker goes
// with the job's definition. The policies choose; dispatch posts the batch and holds it.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "broker/batches.hpp"
#include "broker/credits.hpp"
#include "broker/fair_share.hpp"
#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "broker/recovery.hpp"
#include "http/statistics.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/outbox.hpp"

namespace dtask::detail {

class Dispatch {
public:
    /// Posts to `outbox`, the loop's, which sends it at the end of the burst.
    Dispatch(Peers& peers, Jobs& jobs, FairShare& fair_share, Recovery& recovery,
             WithRoom<WorkerPeer>& room, Outbox& outbox, const LazyClock& clock,
             BrokerStatistics& stats)
        : peers_(peers),
          jobs_(jobs),
          fair_share_(fair_share),
          recovery_(recovery),
          room_(room),
          outbox_(outbox),
          clock_(clock),
          stats_(stats) {}

    /// Gives the worker batches while it has room, taking jobs in turn.
    void feed(WorkerPeer& worker);
    /// Puts a job with queued batches in the rotation and gives them to workers with room.
    /// Busy workers are not looked at: while all are busy this costs O(1).
    void place(BrokerJob& job);
    /// Offers work to every worker with room, after work appeared that place() does not hand
    /// out (quarantined batches, backup copies).
    void feed_idle();
    /// feed() for each of these workers still connected.
    void feed_all(const std::vector<std::string>& ids);
    /// Tells the worker of the jobs that ended since it was last told.
    void tell_ended(WorkerPeer& worker);

private:
    /// Sends the worker a copy of the batch that has run longest (backups), if one qualifies.
    bool send_backup(WorkerPeer& idle);
    /// Sends a reserved worker, whose hands are free, one quarantined batch to run alone.
    bool send_quarantined(WorkerPeer& worker);
    void send(WorkerPeer& worker, BrokerJob& job, QueuedBatch batch,
              BatchKind kind = BatchKind::batch);
    void post(std::string_view to, std::span<zmq::message_t> frames) { outbox_.add(to, frames); }

    Peers& peers_;
    Jobs& jobs_;
    FairShare& fair_share_;
    Recovery& recovery_;
    WithRoom<WorkerPeer>& room_;
    Outbox& outbox_;
    const LazyClock& clock_;
    BrokerStatistics& stats_;
};

}  // namespace dtask::detail
