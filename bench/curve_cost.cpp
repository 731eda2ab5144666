// curve_cost: what CurveZMQ on a Cluster's listen endpoint costs a remote worker, as ratios
// to the same Cluster on plain TCP (ClusterOptions::insecure_tcp) measured in the same run.
// The workloads are those of empty_subtasks, one_subtask_latency and large_payloads, run on
// one remote worker process over loopback tcp and no local worker, so that every subtask
// crosses the encrypted link.

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>

#include <time.h>
#include <unistd.h>

#include "scenarios.hpp"

namespace perf {
namespace {

/// One figure of the scenario: the Cluster with CurveZMQ, next to its baseline, the one
/// with plain TCP.
Figure curve_vs_plain(const std::string& name, const std::string& unit, Better better) {
    Figure figure{"curve_cost", "curve_cost." + name, unit, better};
    figure.baseline = "plain_tcp";
    return figure;
}

/// CPU seconds this process and the fleet's worker processes have used: where the crypto
/// goes (ZeroMQ's I/O threads on both sides), which a rate alone does not show on a machine
/// whose 2 cores the processes share.
double cpu_seconds(const RemoteFleet& fleet) {
    timespec self{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &self);
    double seconds = static_cast<double>(self.tv_sec) + 1e-9 * static_cast<double>(self.tv_nsec);
    const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    for (const BenchChild& worker : fleet.workers) {
        // /proc/PID/stat: utime and stime are fields 14 and 15, after the ")" ending the name.
        std::ifstream stat("/proc/" + std::to_string(worker.pid()) + "/stat");
        const std::string text{std::istreambuf_iterator<char>(stat), {}};
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string field;
        for (int i = 3; i < 14 && fields >> field; ++i) {
        }
        double user_ticks = 0, system_ticks = 0;
        fields >> user_ticks >> system_ticks;
        seconds += (user_ticks + system_ticks) * tick;
    }
    return seconds;
}

/// What one measurement gave, and the CPU time it took in all processes.
struct Measured {
    double value = 0;
    double cpu_seconds = 0;
};

}  // namespace

std::vector<Figure> curve_cost(const Settings& settings) {
    const std::uint64_t batched = batched_empty_subtasks(settings);
    const std::uint64_t unbatched = unbatched_empty_subtasks(settings);
    const std::uint64_t jobs = latency_jobs(settings);
    const std::uint64_t payloads = payload_subtasks(settings);

    RemoteFleet curve(1);
    RemoteFleet plain(1, /*insecure_tcp=*/true);
    for (RemoteFleet* fleet : {&curve, &plain})
        warm_up_one_subtask_jobs(*fleet->cluster);

    Figure batched_rate = curve_vs_plain("empty_subtasks", "subtasks/s", Better::higher);
    batched_rate.target = Target::ratio_at_least(0.8);
    Figure unbatched_rate =
        curve_vs_plain("empty_subtasks_unbatched", "subtasks/s", Better::higher);
    Figure latency = curve_vs_plain("one_subtask_latency", "us", Better::lower);
    latency.target = Target::ratio_at_most(1.3);
    Figure latency_p90 = curve_vs_plain("one_subtask_latency_p90", "us", Better::lower);
    Figure bandwidth = curve_vs_plain("large_payloads", "MiB/s", Better::higher);
    // Where the time goes: CPU of the host and the worker together, per unit of work.
    Figure batched_cpu = curve_vs_plain("empty_subtasks_cpu", "ns/subtask", Better::lower);
    Figure unbatched_cpu =
        curve_vs_plain("empty_subtasks_unbatched_cpu", "ns/subtask", Better::lower);
    Figure bandwidth_cpu = curve_vs_plain("large_payloads_cpu", "ms/MiB", Better::lower);

    // Each measurement runs on both clusters back to back, in turns: curve first in even
    // repetitions, plain first in odd ones, so that neither always gets the warmer machine.
    for (int rep = 0; rep < settings.repeat; ++rep) {
        const bool curve_first = rep % 2 == 0;
        auto both = [&](auto&& measure) {
            if (curve_first) {
                auto on_curve = measure(curve);
                return std::pair{on_curve, measure(plain)};
            }
            auto on_plain = measure(plain);
            return std::pair{measure(curve), on_plain};
        };
        // A rate, and the CPU time its run took per unit (`units` of them in the run).
        auto rate_and_cpu = [&](Figure& rate, Figure& cpu, double units, double cpu_scale,
                                auto&& measure) {
            const auto [on_curve, on_plain] = both([&](RemoteFleet& fleet) {
                const double cpu_before = cpu_seconds(fleet);
                const double value = measure(*fleet.cluster);
                return Measured{value, cpu_seconds(fleet) - cpu_before};
            });
            rate.add(on_curve.value, on_plain.value);
            cpu.add(cpu_scale * on_curve.cpu_seconds / units,
                    cpu_scale * on_plain.cpu_seconds / units);
        };
        rate_and_cpu(batched_rate, batched_cpu, static_cast<double>(batched), 1e9,
                     [&](dtask::Cluster& cluster) { return empty_subtask_rate(cluster, batched); });
        rate_and_cpu(unbatched_rate, unbatched_cpu, static_cast<double>(unbatched), 1e9,
                     [&](dtask::Cluster& cluster) {
                         return empty_subtask_rate(cluster, unbatched,
                                                   dtask::RunOptions{.batch_size = 1});
                     });
        const auto [curve_micros, plain_micros] = both(
            [&](RemoteFleet& fleet) { return one_subtask_latencies_us(*fleet.cluster, jobs); });
        latency.add(quantile(curve_micros, 0.5), quantile(plain_micros, 0.5));
        latency_p90.add(quantile(curve_micros, 0.9), quantile(plain_micros, 0.9));
        rate_and_cpu(bandwidth, bandwidth_cpu,
                     static_cast<double>(payloads * payload_bytes) / (1 << 20), 1e3,
                     [&](dtask::Cluster& cluster) { return payload_rate(cluster, payloads); });
    }

    batched_rate.detail("subtasks", static_cast<double>(batched));
    batched_rate.detail("batch_size", "automatic");
    unbatched_rate.detail("subtasks", static_cast<double>(unbatched));
    unbatched_rate.detail("batch_size", 1.0);
    for (Figure* figure : {&latency, &latency_p90}) {
        figure->detail("jobs_per_repetition", static_cast<double>(jobs));
        figure->detail("dtask_path", "client -> broker -> worker -> broker -> client");
    }
    latency.detail("statistic", "median of each repetition's latencies");
    latency_p90.detail("statistic", "90th percentile of each repetition's latencies");
    bandwidth.detail("subtask_bytes", static_cast<double>(payload_bytes));
    bandwidth.detail("subtasks", static_cast<double>(payloads));
    for (Figure* figure : {&batched_cpu, &unbatched_cpu, &bandwidth_cpu}) {
        figure->detail("measure",
                       "CPU time of the host process (all threads: client, broker, ZeroMQ I/O) "
                       "and of the worker process over the run, per unit of work");
    }
    std::vector<Figure> figures{batched_rate, unbatched_rate, latency,       latency_p90,
                                bandwidth,    batched_cpu,    unbatched_cpu, bandwidth_cpu};
    for (Figure& figure : figures) {
        figure.detail("value_is", "Cluster with CurveZMQ (the default)");
        figure.detail("baseline_is", "the same Cluster with ClusterOptions::insecure_tcp");
        figure.detail("workers", "1 remote worker process over tcp://127.0.0.1, no local one");
        figure.detail("dtask_transport", transport_of(curve.cluster->endpoints().back()));
        figure.detail("order", "both back to back per repetition, curve first in even ones");
    }
    return figures;
}

}  // namespace perf
