#pragma once
// Limits per client (docs/reliability.md, "Limits and hostile input"): a job that would take
// its client past one is refused at its submit, and a task batch that would is refused by
// failing its job; the failure names the limit. The client is not dropped for it, and its
// other jobs go on. A policy: it decides and says why; ClientEvents acts.

#include <cstddef>
#include <string>

namespace dtask::detail {

/// The bounds on one client; 0: no bound. The Cluster's own client has none.
struct ClientLimits {
    std::size_t max_jobs = 0;            // jobs of one client at once
    std::size_t max_job_data_bytes = 0;  // a job's own job-wide data (not a share() object)
    std::size_t max_queued_bytes = 0;    // a client's subtasks waiting in the broker for workers
};

/// Why a new job of client `client`, which has `jobs` jobs already, with `data_bytes` of
/// job-wide data, is refused; empty if it is not.
inline std::string job_refusal(const ClientLimits& limits, const std::string& client,
                               std::size_t jobs, std::size_t data_bytes) {
    if (limits.max_jobs != 0 && jobs >= limits.max_jobs)
        return "client " + client + " has " + std::to_string(jobs) +
               " jobs, the limit is --max-jobs-per-client=" + std::to_string(limits.max_jobs) +
               " (ClusterOptions::max_jobs_per_client for a Cluster); submit it once one of "
               "them has ended";
    if (limits.max_job_data_bytes != 0 && data_bytes > limits.max_job_data_bytes)
        return "its job-wide data is " + std::to_string(data_bytes) + " bytes, the limit is " +
               std::to_string(limits.max_job_data_bytes) +
               " bytes (--max-job-data-mib, ClusterOptions::max_job_data_bytes); pass large "
               "data with share() instead";
    return {};
}

/// Why a task batch of `batch_bytes` from client `client`, whose jobs have `queued_bytes` of
/// subtasks waiting for workers already, is refused; empty if it is not.
inline std::string batch_refusal(const ClientLimits& limits, const std::string& client,
                                 std::size_t queued_bytes, std::size_t batch_bytes) {
    const bool fits = batch_bytes <= limits.max_queued_bytes &&
                      queued_bytes <= limits.max_queued_bytes - batch_bytes;
    if (limits.max_queued_bytes == 0 || fits)
        return {};
    return "client " + client + " has " + std::to_string(queued_bytes) +
           " bytes of subtasks waiting for workers, and a batch of " + std::to_string(batch_bytes) +
           " bytes more would pass the limit of " + std::to_string(limits.max_queued_bytes) +
           " bytes (--max-queued-mib-per-client, ClusterOptions::max_queued_bytes_per_client); "
           "a client within its RunOptions::window_bytes per job stays far below it";
}

}  // namespace dtask::detail
