#pragma once
// The broker's status as the HTTP endpoint shows it: plain data, published by the broker's
// loop at most every 250 ms (BrokerStatistics) and read whole, never changed, by the HTTP
// thread, which renders it as JSON (/api/status) or as Prometheus text (/metrics).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dtask::detail {

struct WorkerStatus {
    std::string id;  // host:pid
    bool local = false;
    std::vector<std::uint64_t> jobs;  // the broker's ids of the jobs it has run
    std::uint64_t batches_held = 0;
    std::uint64_t subtasks_done = 0;
    double last_heard_seconds = 0;
    const char* state = "idle";  // busy, idle, quarantine, leaving
};

struct JobStatus {
    std::uint64_t id = 0;
    std::string name;
    std::string client;  // host:pid
    unsigned priority = 1;
    std::uint64_t done = 0;
    std::optional<std::uint64_t> total;  // known once the client's split is done
    double rate = 0;                     // subtasks per second over the last 10 s
    std::optional<double> eta_seconds;
    std::uint64_t retries = 0;
    std::uint64_t quarantined = 0;
    std::uint64_t backups = 0;
    const char* state = "running";  // queued, running, done, failed, cancelled
    std::optional<std::string> error;
    double started = 0;  // unix seconds
    std::optional<double> ended;
};

/// One batch in the task stream: from dispatch to its last result (or its failure).
struct StreamEntry {
    std::string worker;
    std::uint64_t job = 0;
    double start = 0;  // unix seconds
    double end = 0;
    std::uint64_t subtasks = 0;
    const char* kind = "batch";  // batch, retry, backup, failure
};

struct EventEntry {
    double time = 0;        // unix seconds
    const char* kind = "";  // worker_joined, worker_lost, job_started, job_done, job_failed
    std::string text;
};

/// Upper bounds of the batch map time histogram's buckets, in seconds (+Inf follows).
inline constexpr std::array<double, 12> map_time_bounds{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                        0.025,  0.05,   0.1,   0.5,    1,     10};

/// Counters since the broker started: they only grow.
struct Counters {
    std::uint64_t subtasks_done = 0;
    std::uint64_t subtasks_failed = 0;
    std::uint64_t subtasks_retried = 0;
    std::uint64_t backup_copies = 0;
    std::uint64_t bytes_received_worker = 0;
    std::uint64_t bytes_received_client = 0;
    std::uint64_t bytes_sent_worker = 0;
    std::uint64_t bytes_sent_client = 0;
    // The batch map time histogram: counts per bucket (not cumulative), +Inf last.
    std::array<std::uint64_t, map_time_bounds.size() + 1> map_time_buckets{};
    double map_time_sum = 0;
    std::uint64_t map_time_count = 0;
};

struct StatusSnapshot {
    double time = 0;  // unix seconds when it was taken
    double uptime_seconds = 0;
    std::vector<WorkerStatus> workers;
    std::vector<JobStatus> jobs;
    std::vector<StreamEntry> stream;
    std::vector<std::pair<double, std::uint64_t>> throughput;  // unix second, subtasks done
    std::vector<EventEntry> events;
    Counters counters;
    std::uint64_t running_jobs = 0;
    std::uint64_t queued_subtasks = 0;
};

}  // namespace dtask::detail
