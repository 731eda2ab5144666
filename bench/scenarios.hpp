#pragma once
// The scenarios of dtask_perf. Each runs `repeat` times, measuring every baseline next to
// the dtask figure it belongs to within each repetition (the machine is shared and noisy),
// checks every job's result, and returns its figures.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>

#include <dtask/dtask.hpp>

#include "bench_child.hpp"
#include "report.hpp"

namespace perf {

struct Settings {
    bool quick = false;  // tiny sizes: a smoke test of every scenario, figures meaningless
    int repeat = 5;
};

/// A job returned something else than it must: the benchmark is wrong, or dtask is.
class WrongResult : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::vector<Figure> serial_kernel(const Settings& settings);
std::vector<Figure> efficiency(const Settings& settings);
std::vector<Figure> empty_subtasks(const Settings& settings);
std::vector<Figure> one_subtask_latency(const Settings& settings);
std::vector<Figure> large_payloads(const Settings& settings);
std::vector<Figure> memory(const Settings& settings);
std::vector<Figure> broker_scaling(const Settings& settings);
std::vector<Figure> startup(const Settings& settings);
std::vector<Figure> curve_cost(const Settings& settings);
std::vector<Figure> shared_data(const Settings& settings);
std::vector<Figure> checkpoint_cost(const Settings& settings);
#ifdef DTASK_PERF_DTASKD
std::vector<Figure> kept_batches(const Settings& settings);
#endif
#if defined(DTASK_PERF_DTASKD) && defined(DTASK_PERF_SWARM)
std::vector<Figure> many_workers(const Settings& settings);
#endif

/// The hidden mode behind `memory`: in a fresh process (so that earlier scenarios do not
/// count), runs one job of `subtasks` empty subtasks on 2 local workers, and prints the peak
/// RSS in KiB of this process and of its largest worker. Returns an exit status.
int measure_memory(pid_t parent, std::uint64_t subtasks);

// ---- shared by the scenarios ----

/// The raw pipelines are as deep as dtask's defaults with batching off: messages in flight
/// as a job's batches in flight, and each echo worker behind the raw relay pulls with as
/// many credits as a dtask worker offers.
inline constexpr std::size_t raw_window = 1024;
inline constexpr unsigned raw_relay_credits = 256;

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Throws WrongResult unless `got` is `expected`.
inline void check_result(const char* what, std::uint64_t got, std::uint64_t expected) {
    if (got != expected)
        throw WrongResult(std::string(what) + " returned " + std::to_string(got) + " instead of " +
                          std::to_string(expected));
}

/// The Cluster of most scenarios: 2 local workers, the defaults otherwise.
inline dtask::ClusterOptions two_local_workers() {
    dtask::ClusterOptions options;
    options.local_workers = 2;
    return options;
}

/// Waits until `count` workers have joined `cluster`; throws after a minute.
inline void wait_for_workers(const dtask::Cluster& cluster, std::size_t count) {
    if (!cluster.wait_for_workers(count, std::chrono::seconds(60)))
        throw std::runtime_error(std::to_string(count) + " workers did not join within 60 s (" +
                                 std::to_string(cluster.workers()) + " did)");
}

/// A Cluster that listens on loopback tcp and starts no workers, and `count` worker
/// processes of this binary joined to it as remote workers are joined by hand: with the
/// Cluster's join token in DTASK_TOKEN, or with --dtask-insecure-tcp if `insecure_tcp`
/// (then the Cluster runs plain TCP, ClusterOptions::insecure_tcp).
struct RemoteFleet {
    std::unique_ptr<dtask::Cluster> cluster;
    std::vector<BenchChild> workers;
    std::string broker_thread;  // the id of the Cluster's broker thread

    explicit RemoteFleet(std::size_t count, bool insecure_tcp = false);
};

// ---- the workloads of empty_subtasks, one_subtask_latency and large_payloads, which
// curve_cost runs again on clusters of its own; each checks its jobs' results ----

/// Empty subtasks in one job: automatic batching unless `batch_size` says otherwise.
std::uint64_t batched_empty_subtasks(const Settings& settings);
std::uint64_t unbatched_empty_subtasks(const Settings& settings);
/// Subtasks per second of one job of `subtasks` empty subtasks, on a Cluster or a Client.
double empty_subtask_rate(dtask::Submitter& submitter, std::uint64_t subtasks,
                          dtask::RunOptions options = {});

/// One-subtask jobs per repetition.
std::uint64_t latency_jobs(const Settings& settings);
/// A few one-subtask jobs whose latencies are not kept: connections and caches warm.
void warm_up_one_subtask_jobs(dtask::Submitter& submitter);
/// The latency in µs of each of `jobs` one-subtask jobs run one after another.
std::vector<double> one_subtask_latencies_us(dtask::Cluster& cluster, std::uint64_t jobs);

/// 1 MiB payloads: bytes per subtask, and subtasks per job.
inline constexpr std::size_t payload_bytes = 1 << 20;
std::uint64_t payload_subtasks(const Settings& settings);
/// MiB/s of one job of `subtasks` subtasks of payload_bytes each.
double payload_rate(dtask::Submitter& submitter, std::uint64_t subtasks);

/// The `fraction` quantile of `values` (0.5: the median), the nearest rank.
double quantile(std::vector<double> values, double fraction);

/// "ipc", "tcp", ...: the transport of an endpoint.
inline std::string transport_of(const std::string& endpoint) {
    return endpoint.substr(0, endpoint.find("://"));
}

}  // namespace perf
