// empty_subtasks, one_subtask_latency and large_payloads: what dtask costs per subtask, per
// job and per byte, next to bare ZeroMQ sockets carrying the same traffic.

#include <algorithm>
#include <cmath>

#include "perf_jobs.hpp"
#include "raw_zmq.hpp"
#include "scenarios.hpp"

namespace perf {
namespace {

constexpr std::size_t raw_payload_window = 32;  // 32 MiB in flight, as dtask's window_bytes

/// An echo process on tcp and one on ipc, each with a client here: the raw baselines of the
/// figures measured against both transports.
struct EchoOnBothTransports {
    explicit EchoOnBothTransports(raw::Reply reply)
        : tcp_echo("tcp://127.0.0.1:*", reply),
          ipc_echo(raw::private_ipc_endpoint(), reply),
          tcp(tcp_echo.endpoint()),
          ipc(ipc_echo.endpoint()) {}

    raw::EchoProcess tcp_echo;
    raw::EchoProcess ipc_echo;
    raw::RawClient tcp;
    raw::RawClient ipc;
};

/// Seconds that `job` takes on `input`, its result checked.
template <class Input>
double timed_run(dtask::Submitter& submitter, const dtask::Job<std::uint64_t>& job, Input input,
                 std::uint64_t expected, dtask::RunOptions options = {}) {
    const auto start = Clock::now();
    const std::uint64_t result = submitter.run(job, std::move(input), options);
    const double seconds = seconds_since(start);
    check_result(job.name().c_str(), result, expected);
    return seconds;
}

}  // namespace

std::uint64_t batched_empty_subtasks(const Settings& settings) {
    return settings.quick ? 20'000 : 5'000'000;
}

std::uint64_t unbatched_empty_subtasks(const Settings& settings) {
    return settings.quick ? 2'000 : 300'000;
}

double empty_subtask_rate(dtask::Submitter& submitter, std::uint64_t subtasks,
                          dtask::RunOptions options) {
    return static_cast<double>(subtasks) /
           timed_run(submitter, identity_job, subtasks, identity_result(subtasks), options);
}

std::uint64_t latency_jobs(const Settings& settings) {
    return settings.quick ? 50 : 2000;
}

void warm_up_one_subtask_jobs(dtask::Submitter& submitter) {
    for (int warm_up = 0; warm_up < 20; ++warm_up)
        timed_run(submitter, identity_job, std::uint64_t{1}, 1);
}

std::vector<double> one_subtask_latencies_us(dtask::Cluster& cluster, std::uint64_t jobs) {
    std::vector<double> micros;
    micros.reserve(jobs);
    for (std::uint64_t job = 0; job < jobs; ++job)
        micros.push_back(1e6 * timed_run(cluster, identity_job, std::uint64_t{1}, 1));
    return micros;
}

std::uint64_t payload_subtasks(const Settings& settings) {
    return settings.quick ? 8 : 512;
}

double payload_rate(dtask::Submitter& submitter, std::uint64_t subtasks) {
    const double mebibytes = static_cast<double>(subtasks * payload_bytes) / (1 << 20);
    return mebibytes / timed_run(submitter, payload_job, PayloadPlan{subtasks, payload_bytes},
                                 subtasks * payload_bytes);
}

double quantile(std::vector<double> values, double fraction) {
    if (values.empty())
        return std::nan("");
    std::sort(values.begin(), values.end());
    const auto rank =
        static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

std::vector<Figure> empty_subtasks(const Settings& settings) {
    const std::uint64_t batched = batched_empty_subtasks(settings);
    const std::uint64_t unbatched = unbatched_empty_subtasks(settings);

    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    raw::EchoProcess echo("tcp://127.0.0.1:*", raw::Reply::echo);
    raw::RawClient pair(echo.endpoint());
    raw::Relay relay(2, raw_relay_credits);
    raw::RawClient relayed(relay.endpoint());

    Figure automatic{"empty_subtasks", "empty_subtasks.automatic", "subtasks/s", Better::higher};
    automatic.target = Target::value_at_least(5e6);
    Figure vs_relay{"empty_subtasks", "empty_subtasks.unbatched_vs_relay", "subtasks/s",
                    Better::higher};
    vs_relay.baseline = "raw_pipelined_relay";
    vs_relay.target = Target::ratio_at_least(0.9);
    Figure vs_pair{"empty_subtasks", "empty_subtasks.unbatched_vs_pair", "subtasks/s",
                   Better::higher};
    vs_pair.baseline = "raw_pipelined_pair";

    const auto count = static_cast<double>(unbatched);
    for (int rep = 0; rep < settings.repeat; ++rep) {
        const double pair_rate = count / pair.pipelined(unbatched, raw_window, 4, raw::Reply::echo);
        const double relay_rate =
            count / relayed.pipelined(unbatched, raw_window, 4, raw::Reply::echo);
        const double unbatched_rate =
            empty_subtask_rate(cluster, unbatched, dtask::RunOptions{.batch_size = 1});
        vs_relay.add(unbatched_rate, relay_rate);
        vs_pair.add(unbatched_rate, pair_rate);
        automatic.add(empty_subtask_rate(cluster, batched));
    }

    const std::string dtask_transport = transport_of(cluster.endpoints().front());
    automatic.detail("subtasks", static_cast<double>(batched));
    automatic.detail("batch_size", "automatic");
    automatic.detail("dtask_transport", dtask_transport);
    for (Figure* figure : {&vs_relay, &vs_pair}) {
        figure->detail("subtasks", count);
        figure->detail("batch_size", 1.0);
        figure->detail("dtask_transport", dtask_transport);
        figure->detail("raw_window", static_cast<double>(raw_window));
    }
    vs_pair.detail("raw_transport", transport_of(echo.endpoint()));
    vs_pair.detail("raw_path", "DEALER -> ROUTER echo process");
    vs_relay.detail("raw_transport", transport_of(relay.endpoint()));
    vs_relay.detail("raw_path",
                    "DEALER -> ROUTER relay thread -> 2 DEALER echo worker processes -> back");
    vs_relay.detail("raw_worker_credits", static_cast<double>(raw_relay_credits));
    return {automatic, vs_relay, vs_pair};
}

std::vector<Figure> one_subtask_latency(const Settings& settings) {
    const std::uint64_t jobs = latency_jobs(settings);

    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    EchoOnBothTransports raw_echo(raw::Reply::echo);
    warm_up_one_subtask_jobs(cluster);

    Figure vs_tcp{"one_subtask_latency", "one_subtask_latency.vs_tcp", "us", Better::lower};
    vs_tcp.baseline = "raw_lockstep_tcp";
    vs_tcp.target = Target::ratio_at_most(2);
    Figure vs_ipc{"one_subtask_latency", "one_subtask_latency.vs_ipc", "us", Better::lower};
    vs_ipc.baseline = "raw_lockstep_ipc";

    for (int rep = 0; rep < settings.repeat; ++rep) {
        const double tcp_micros = median(raw_echo.tcp.lockstep(jobs));
        const double ipc_micros = median(raw_echo.ipc.lockstep(jobs));
        const double dtask_micros = median(one_subtask_latencies_us(cluster, jobs));
        vs_tcp.add(dtask_micros, tcp_micros);
        vs_ipc.add(dtask_micros, ipc_micros);
    }

    for (Figure* figure : {&vs_tcp, &vs_ipc}) {
        figure->detail("jobs_per_repetition", static_cast<double>(jobs));
        figure->detail("statistic", "median of each repetition's latencies");
        figure->detail("dtask_transport", transport_of(cluster.endpoints().front()));
        figure->detail("dtask_path", "client -> broker -> worker -> broker -> client");
    }
    vs_tcp.detail("raw_transport", "tcp");
    vs_ipc.detail("raw_transport", "ipc");
    return {vs_tcp, vs_ipc};
}

std::vector<Figure> large_payloads(const Settings& settings) {
    const std::uint64_t subtasks = payload_subtasks(settings);
    const double mebibytes = static_cast<double>(subtasks * payload_bytes) / (1 << 20);

    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    EchoOnBothTransports raw_echo(raw::Reply::size);

    Figure vs_tcp{"large_payloads", "large_payloads.vs_tcp", "MiB/s", Better::higher};
    vs_tcp.baseline = "raw_1mib_tcp";
    vs_tcp.target = Target::ratio_at_least(0.5);
    Figure vs_ipc{"large_payloads", "large_payloads.vs_ipc", "MiB/s", Better::higher};
    vs_ipc.baseline = "raw_1mib_ipc";
    vs_ipc.target = Target::ratio_at_least(0.5);

    for (int rep = 0; rep < settings.repeat; ++rep) {
        const double tcp_rate = mebibytes / raw_echo.tcp.pipelined(subtasks, raw_payload_window,
                                                                   payload_bytes, raw::Reply::size);
        const double ipc_rate = mebibytes / raw_echo.ipc.pipelined(subtasks, raw_payload_window,
                                                                   payload_bytes, raw::Reply::size);
        const double dtask_rate = payload_rate(cluster, subtasks);
        vs_tcp.add(dtask_rate, tcp_rate);
        vs_ipc.add(dtask_rate, ipc_rate);
    }

    for (Figure* figure : {&vs_tcp, &vs_ipc}) {
        figure->detail("subtask_bytes", static_cast<double>(payload_bytes));
        figure->detail("subtasks", static_cast<double>(subtasks));
        figure->detail("dtask_transport", transport_of(cluster.endpoints().front()));
        figure->detail("raw_window_messages", static_cast<double>(raw_payload_window));
        figure->detail("raw_answer", "8 bytes: the size received");
    }
    vs_tcp.detail("raw_transport", "tcp");
    vs_ipc.detail("raw_transport", "ipc");
    return {vs_tcp, vs_ipc};
}

}  // namespace perf
