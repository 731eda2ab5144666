// Jobs: the broker's record of each job, made on submit.

#include "broker/jobs.hpp"

#include <algorithm>

namespace dtask::detail {

using Clock = std::chrono::steady_clock;

BrokerJob& Jobs::submit(std::uint64_t id, const std::string& client, std::uint64_t client_job,
                        protocol::JobSettings settings, std::string name, std::string signature,
                        zmq::message_t shared, Clock::time_point now) {
    BrokerJob& job = jobs_[id];
    ClientTotals& totals = clients_[client];
    ++totals.jobs;
    job.queue.count_into(&totals.queued_bytes);
    job.recovery.quarantine.count_into(&totals.queued_bytes);
    job.id = id;
    job.serial = ++serials_;
    job.client = client;
    job.client_job = client_job;
    job.settings = std::move(settings);
    job.settings.max_attempts = std::clamp(job.settings.max_attempts, 1u, 1000u);
    job.worker.wait = std::chrono::milliseconds(std::min<std::uint64_t>(
        job.settings.worker_wait_ms, std::chrono::milliseconds::max().count()));
    job.turns.priority = std::clamp(job.settings.priority, 1u, 1000u);
    // A map that never returns must not hold a worker for ever, whatever the client asked.
    if (job.settings.subtask_timeout_ms == 0 && max_subtask_time_.count() > 0) {
        job.settings.subtask_timeout_ms = static_cast<std::uint64_t>(max_subtask_time_.count());
        job.broker_timeout = true;
    }
    job.name = std::move(name);
    job.signature = std::move(signature);
    job.shared = std::move(shared);
    job.worker.deadline = deadline_after(now, job.worker.wait);
    return job;
}

}  // namespace dtask::detail
