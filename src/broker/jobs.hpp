#pragma once
// Jobs: the broker's record of each job a client submitted, which workers serve it (same name
// and signature), and the wait for a worker: a job no connected worker serves fails after
// its worker_wait.

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "broker/backups.hpp"
#include "broker/batches.hpp"
#include "broker/credits.hpp"
#include "broker/fair_share.hpp"
#include "broker/recovery.hpp"
#include "broker/shared_objects.hpp"
#include "wire/deadline.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

/// A worker's part of the jobs: which it serves, and which it knows.
struct Serving {
    std::unordered_map<std::string, std::string> serves;  // job name -> signature
    std::unordered_set<std::uint64_t> opened;             // jobs whose definition it has
    std::uint64_t last_opened_serial = 0;  // the job (by serial) it was last sent a batch of
    // Jobs that ended since it was last told: it hears of them with the next definition it
    // is sent, or at the next tick. Telling at once would wake it for nothing between two
    // short jobs, and the next job's subtasks would wait behind that.
    std::vector<std::uint64_t> ended;
    // Whether it serves the job (by serial) asked about last: nearly every question is
    // about the same job as the one before, and the full answer compares long signatures.
    std::uint64_t asked_serial = 0;
    bool serves_asked = false;
    std::unordered_set<std::uint64_t> shared_held;  // shared objects it was sent, by broker id
};

/// A job's wait for a worker that serves it.
struct WorkerWait {
    using Clock = std::chrono::steady_clock;

    std::chrono::milliseconds wait{0};
    bool waiting = true;
    Clock::time_point deadline;
    bool told_why = false;  // a notice said why no local worker serves
};

struct BrokerJob {
    std::uint64_t id = 0;      // the broker's (Jobs::new_id): never reused
    std::uint64_t serial = 0;  // never reused, unlike a client's job id
    std::string client;        // routing id
    std::uint64_t client_job = 0;
    std::string name;
    std::string signature;
    zmq::message_t shared;
    SharedRecord* shared_object = nullptr;  // its job-wide data instead of `shared`, if set
    BatchQueue queue;  // counted into its client's queued bytes (Jobs::queued_bytes)
    protocol::JobSettings settings;
    Turns turns;                                // fair share
    JobRecovery recovery;                       // quarantine and spoiled attempts
    JobBackups backups;                         // the tail and the copies running
    WorkCost cost;                              // map time per subtask so far, for the credits
    std::unordered_set<std::string> opened_by;  // workers holding its definition
    WorkerWait worker;
    bool broker_timeout = false;  // its subtask timeout is the broker's max_subtask_time
};

/// Whether a worker serves the job: it offers a job of that name and signature.
inline bool serves(Serving& worker, const BrokerJob& job) {
    if (worker.asked_serial != job.serial) {
        auto it = worker.serves.find(job.name);
        worker.serves_asked = it != worker.serves.end() && it->second == job.signature;
        worker.asked_serial = job.serial;
    }
    return worker.serves_asked;
}

class Jobs {
public:
    using Clock = std::chrono::steady_clock;

    using Map = std::unordered_map<std::uint64_t, BrokerJob>;

    /// `max_subtask_time`: the subtask timeout of jobs that set none; 0: none.
    explicit Jobs(std::chrono::milliseconds max_subtask_time = {})
        : max_subtask_time_(max_subtask_time) {}

    /// A new job, as its client submitted it, with its settings bounded. The caller has
    /// checked that `id` is new.
    BrokerJob& submit(std::uint64_t id, const std::string& client, std::uint64_t client_job,
                      protocol::JobSettings settings, std::string name, std::string signature,
                      zmq::message_t shared, Clock::time_point now);

    /// An id for a new job: 64 bits that count up, so never one a job had before (a
    /// worker may not have heard yet that that job ended).
    std::uint64_t new_id() noexcept { return ++ids_; }

    /// The job of broker id `id`, or null. Nearly every message is about the job the one
    /// before was about: the last job found is remembered, until it is erased.
    BrokerJob* find(std::uint64_t id) {
        if (last_ != nullptr && last_->id == id)
            return last_;
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            return nullptr;
        last_ = &it->second;
        return last_;
    }
    bool contains(std::uint64_t id) const { return jobs_.contains(id); }
    void erase(Map::iterator it) {
        if (last_ == &it->second)
            last_ = nullptr;
        const auto client = clients_.find(it->second.client);
        jobs_.erase(it);  // its queues take their bytes off their client's count
        if (client != clients_.end() && --client->second.jobs == 0)
            clients_.erase(client);
    }
    /// Bytes of the subtasks of `client`'s jobs waiting for workers (queues and quarantines).
    std::size_t queued_bytes(const std::string& client) const {
        const auto it = clients_.find(client);
        return it == clients_.end() ? 0 : it->second.queued_bytes;
    }
    Map& all() noexcept { return jobs_; }

    /// Notes which jobs a worker serves now (`served(job)`), starting the wait of those that
    /// lost their last one; returns the jobs whose wait ran out at `now`.
    template <class Served>
    std::vector<std::uint64_t> waits_expired(Clock::time_point now, Served&& served) {
        std::vector<std::uint64_t> expired;
        for (auto& [job_id, entry] : jobs_) {
            BrokerJob& job = entry;  // a plain reference: clang 14 cannot capture a binding
            if (served(job)) {
                job.worker.waiting = false;
            } else if (!job.worker.waiting) {
                job.worker.waiting = true;
                job.worker.deadline = deadline_after(now, job.worker.wait);
            } else if (now >= job.worker.deadline) {
                expired.push_back(job_id);
            }
        }
        return expired;
    }

private:
    /// A client's jobs here, and the bytes their queues hold: kept while it has a job, so
    /// that its queues, which count into it, go first.
    struct ClientTotals {
        std::size_t jobs = 0;
        std::size_t queued_bytes = 0;
    };

    std::unordered_map<std::string, ClientTotals> clients_;  // by routing id; before jobs_
    Map jobs_;
    std::chrono::milliseconds max_subtask_time_;
    BrokerJob* last_ = nullptr;  // found last by find: jobs_'s elements never move
    std::uint64_t serials_ = 0;  // the last BrokerJob::serial given
    std::uint64_t ids_ = 0;      // the last id new_id() gave
};

}  // namespace dtask::detail
