// kept_batches: what a Client pays for keeping each batch it sends until all its results are
// back, so that a restarted broker gets it again (ClientOptions::broker_restart_grace, on by
// default), as ratios to a Client that keeps none (a grace of 0) measured in the same run.
// Both clients submit to one dtaskd, started as users start it, with 2 worker processes.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <time.h>

#include "dtaskd_child.hpp"
#include "scenarios.hpp"

#ifdef DTASK_PERF_DTASKD
namespace perf {
namespace {

using namespace std::chrono_literals;

/// A dtaskd, 2 worker processes of this binary joined with
/// its worker token in DTASK_TOKEN, and two clients with its client token (read from its
/// file, as users do): one with the default grace, which keeps its batches, and one with 0.
struct DtaskdFleet {
    // 3 s of silence before a peer is dropped, as the tests start it: on a loaded machine a
    // client whose I/O thread waited for a core must not be taken for dead.
    DtaskdChild dtaskd{{"--liveness", "12"}};
    std::vector<BenchChild> workers;
    std::optional<dtask::Client> keeping;
    std::optional<dtask::Client> not_keeping;

    DtaskdFleet() {
        // A worker whose broker went silent leaves after 10 s, as in RemoteFleet.
        for (int i = 0; i < 2; ++i)
            workers.emplace_back(std::vector<std::string>{"--dtask-worker", dtaskd.endpoint,
                                                          "--dtask-give-up", "10"},
                                 false,
                                 std::vector<std::string>{"DTASK_TOKEN=" + dtaskd.token("worker")});
        dtask::ClientOptions options;
        options.token = dtaskd.token("client");
        keeping.emplace(dtaskd.endpoint, options);
        options.broker_restart_grace = 0ms;
        not_keeping.emplace(dtaskd.endpoint, options);
        for (dtask::Client* client : {&*keeping, &*not_keeping}) {
            if (!client->wait_for_workers(2, 60s))
                throw std::runtime_error("the workers did not join dtaskd within 60 s");
        }
    }
};

/// CPU seconds of this process: the clients' (dtaskd and the workers are processes of their
/// own), where keeping batches costs.
double own_cpu_seconds() {
    timespec self{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &self);
    return static_cast<double>(self.tv_sec) + 1e-9 * static_cast<double>(self.tv_nsec);
}

/// One figure of the scenario: the Client that keeps its batches, next to its baseline, the
/// one that keeps none.
Figure kept_vs_not(const std::string& name, const std::string& unit, Better better) {
    Figure figure{"kept_batches", "kept_batches." + name, unit, better};
    figure.baseline = "grace_0";
    return figure;
}

struct ClientRun {
    double value = 0;
    double cpu_seconds = 0;
};

/// 1 MiB subtasks per job: fewer than large_payloads, since every byte is encrypted.
std::uint64_t kept_payload_subtasks(const Settings& settings) {
    return settings.quick ? 8 : 128;
}

}  // namespace

std::vector<Figure> kept_batches(const Settings& settings) {
    const std::uint64_t batched = batched_empty_subtasks(settings);
    const std::uint64_t unbatched = unbatched_empty_subtasks(settings);
    const std::uint64_t payloads = kept_payload_subtasks(settings);

    DtaskdFleet fleet;
    for (dtask::Client* client : {&*fleet.keeping, &*fleet.not_keeping})
        warm_up_one_subtask_jobs(*client);

    Figure batched_rate = kept_vs_not("empty_subtasks", "subtasks/s", Better::higher);
    Figure unbatched_rate = kept_vs_not("empty_subtasks_unbatched", "subtasks/s", Better::higher);
    Figure bandwidth = kept_vs_not("large_payloads", "MiB/s", Better::higher);
    Figure batched_cpu = kept_vs_not("empty_subtasks_cpu", "ns/subtask", Better::lower);
    Figure unbatched_cpu = kept_vs_not("empty_subtasks_unbatched_cpu", "ns/subtask", Better::lower);
    Figure bandwidth_cpu = kept_vs_not("large_payloads_cpu", "ms/MiB", Better::lower);

    // Each measurement runs on both clients back to back, in turns: the keeping one first in
    // even repetitions, the other first in odd ones, so that neither always gets the warmer
    // machine.
    for (int rep = 0; rep < settings.repeat; ++rep) {
        const bool keeping_first = rep % 2 == 0;
        // A rate, and the client's CPU time per unit (`units` of them in the run).
        auto rate_and_cpu = [&](Figure& rate, Figure& cpu, double units, double cpu_scale,
                                auto&& measure) {
            auto on = [&](dtask::Client& client) {
                const double cpu_before = own_cpu_seconds();
                const double value = measure(client);
                return ClientRun{value, own_cpu_seconds() - cpu_before};
            };
            ClientRun kept, not_kept;
            if (keeping_first) {
                kept = on(*fleet.keeping);
                not_kept = on(*fleet.not_keeping);
            } else {
                not_kept = on(*fleet.not_keeping);
                kept = on(*fleet.keeping);
            }
            rate.add(kept.value, not_kept.value);
            cpu.add(cpu_scale * kept.cpu_seconds / units, cpu_scale * not_kept.cpu_seconds / units);
        };
        rate_and_cpu(batched_rate, batched_cpu, static_cast<double>(batched), 1e9,
                     [&](dtask::Client& client) { return empty_subtask_rate(client, batched); });
        rate_and_cpu(unbatched_rate, unbatched_cpu, static_cast<double>(unbatched), 1e9,
                     [&](dtask::Client& client) {
                         return empty_subtask_rate(client, unbatched,
                                                   dtask::RunOptions{.batch_size = 1});
                     });
        rate_and_cpu(bandwidth, bandwidth_cpu,
                     static_cast<double>(payloads * payload_bytes) / (1 << 20), 1e3,
                     [&](dtask::Client& client) { return payload_rate(client, payloads); });
    }

    batched_rate.detail("subtasks", static_cast<double>(batched));
    batched_rate.detail("batch_size", "automatic");
    unbatched_rate.detail("subtasks", static_cast<double>(unbatched));
    unbatched_rate.detail("batch_size", 1.0);
    bandwidth.detail("subtask_bytes", static_cast<double>(payload_bytes));
    bandwidth.detail("subtasks", static_cast<double>(payloads));
    for (Figure* figure : {&batched_cpu, &unbatched_cpu, &bandwidth_cpu}) {
        figure->detail("measure",
                       "CPU time of this process (the clients: their I/O and user-code threads) "
                       "over the run, per unit of work");
    }
    std::vector<Figure> figures{batched_rate,  batched_cpu, unbatched_rate,
                                unbatched_cpu, bandwidth,   bandwidth_cpu};
    for (Figure& figure : figures) {
        figure.detail("value_is", "Client with the default broker_restart_grace (kept batches)");
        figure.detail("baseline_is", "a second Client with broker_restart_grace = 0 (none kept)");
        figure.detail("broker", "dtaskd over tcp://127.0.0.1 (CurveZMQ), 2 worker processes");
        figure.detail("order", "both back to back per repetition, keeping first in even ones");
    }
    return figures;
}

}  // namespace perf
#endif
