// memory, broker_scaling and startup: what stays bounded as jobs, workers and processes
// grow, and how long a Cluster takes to be ready.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_child.hpp"
#include "perf_jobs.hpp"
#include "proc_status.hpp"
#include "raw_zmq.hpp"
#include "scenarios.hpp"

namespace perf {
namespace {

double mebibytes_of_kib(long kib) {
    return static_cast<double>(kib) / 1024;
}

/// The peak resident set of a live process in KiB: VmHWM of /proc/PID/status, 0 if gone.
/// Unlike ru_maxrss it covers the process's own address space alone: at exec, Linux folds
/// the peak of the address space the process had before into ru_maxrss, and a process made
/// with posix_spawn (vfork) had its parent's, so a big parent makes every child look big.
long peak_rss_kib(const std::string& pid) {
    return status_kib(pid, "VmHWM");
}

/// The ids of this process's threads called `name`.
std::vector<std::string> threads_named(const std::string& name) {
    std::vector<std::string> ids;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(entry.path() / "comm");
        std::string line;
        if (std::getline(comm, line) && line == name)
            ids.push_back(entry.path().filename().string());
    }
    return ids;
}

/// Nanoseconds thread `id` of this process has spent on a CPU (the scheduler's own account,
/// /proc/self/task/ID/schedstat): unlike a rate, unaffected by how many other processes
/// wait for the machine's cores.
double thread_cpu_ns(const std::string& id) {
    std::ifstream schedstat("/proc/self/task/" + id + "/schedstat");
    double on_cpu_ns = 0;
    if (!(schedstat >> on_cpu_ns))
        throw std::runtime_error("cannot read the CPU time of thread " + id);
    return on_cpu_ns;
}

}  // namespace

RemoteFleet::RemoteFleet(std::size_t count, bool insecure_tcp) {
    const std::vector<std::string> brokers_before = threads_named("dtask-broker");
    dtask::ClusterOptions options;
    options.local_workers = 0;
    options.listen = {"tcp://127.0.0.1:*"};
    options.insecure_tcp = insecure_tcp;
    cluster = std::make_unique<dtask::Cluster>(options);
    const std::string endpoint = cluster->endpoints().back();
    // A worker whose broker went silent leaves after 10 s: the last resort for a benchmark
    // killed with SIGKILL, which cannot kill them itself. The token goes in the environment,
    // as users give it; a plain-TCP cluster is joined with --dtask-insecure-tcp instead.
    std::vector<std::string> args{"--dtask-worker", endpoint, "--dtask-give-up", "10"};
    std::vector<std::string> environment;
    if (insecure_tcp)
        args.push_back("--dtask-insecure-tcp");
    else
        environment.push_back("DTASK_TOKEN=" + cluster->join_token());
    for (std::size_t i = 0; i < count; ++i)
        workers.emplace_back(args, false, environment);
    wait_for_workers(*cluster, count);
    // The broker thread names itself before it binds, so it has by now.
    for (const std::string& id : threads_named("dtask-broker")) {
        if (std::find(brokers_before.begin(), brokers_before.end(), id) == brokers_before.end())
            broker_thread = id;
    }
    if (broker_thread.empty())
        throw std::runtime_error("the Cluster's broker thread (dtask-broker) was not found");
}

namespace {

/// What one unbatched run measured: its rate, and the broker's CPU per subtask.
struct BrokerRun {
    double subtasks_per_second = 0;
    double broker_ns_per_subtask = 0;
};

/// `jobs` jobs of `subtasks / jobs` empty subtasks each, submitted at once, with batching
/// off: each subtask is two messages into the broker and two out of it.
BrokerRun unbatched_run(RemoteFleet& fleet, std::uint64_t subtasks, std::uint64_t jobs) {
    const std::uint64_t each = subtasks / jobs;
    const double cpu_before = thread_cpu_ns(fleet.broker_thread);
    const auto start = Clock::now();
    std::vector<dtask::JobHandle<std::uint64_t>> handles;
    for (std::uint64_t job = 0; job < jobs; ++job) {
        handles.push_back(
            fleet.cluster->submit(identity_job, each, dtask::RunOptions{.batch_size = 1}));
    }
    for (auto& handle : handles)
        check_result("the empty-subtask job", handle.get(), identity_result(each));
    const double seconds = seconds_since(start);
    const double cpu_ns = thread_cpu_ns(fleet.broker_thread) - cpu_before;
    const auto done = static_cast<double>(each * jobs);
    return {done / seconds, cpu_ns / done};
}

}  // namespace

int measure_memory(pid_t parent, std::uint64_t subtasks) {
    die_with_parent(parent);
    long worker_kib = 0;
    try {
        dtask::Cluster cluster(two_local_workers());
        wait_for_workers(cluster, 2);
        check_result("the empty-subtask job", cluster.run(identity_job, subtasks),
                     identity_result(subtasks));
        for (const pid_t pid : cluster.local_worker_pids())
            worker_kib = std::max(worker_kib, peak_rss_kib(std::to_string(pid)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtask_perf: memory probe: %s\n", e.what());
        return 1;
    }
    // The Cluster is gone and its workers reaped: RUSAGE_CHILDREN now covers them.
    rusage self{}, children{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    std::printf("%ld %ld %ld %ld\n", peak_rss_kib("self"), worker_kib, self.ru_maxrss,
                children.ru_maxrss);
    return 0;
}

std::vector<Figure> memory(const Settings& settings) {
    const std::uint64_t subtasks = settings.quick ? 100'000 : 10'000'000;
    Figure host{"memory", "memory.host", "MiB", Better::lower};
    host.target = Target::value_at_most(64);
    Figure worker{"memory", "memory.worker", "MiB", Better::lower};
    worker.target = Target::value_at_most(64);

    std::vector<double> host_maxrss, children_maxrss;
    for (int rep = 0; rep < settings.repeat; ++rep) {
        BenchChild probe({"--memory-probe", std::to_string(getpid()), std::to_string(subtasks)},
                         true);
        const auto line = probe.read_line(std::chrono::minutes(5));
        const int status = probe.wait();
        long host_kib = 0, worker_kib = 0, self_maxrss_kib = 0, children_maxrss_kib = 0;
        if (!line || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            !(std::istringstream(*line) >> host_kib >> worker_kib >> self_maxrss_kib >>
              children_maxrss_kib))
            throw WrongResult("the memory probe failed (wait status " + std::to_string(status) +
                              "; see its message above)");
        host.add(mebibytes_of_kib(host_kib));
        worker.add(mebibytes_of_kib(worker_kib));
        host_maxrss.push_back(mebibytes_of_kib(self_maxrss_kib));
        children_maxrss.push_back(mebibytes_of_kib(children_maxrss_kib));
    }
    for (Figure* figure : {&host, &worker}) {
        figure->detail("subtasks", static_cast<double>(subtasks));
        figure->detail("split", "dtask::pieces, lazy");
        figure->detail("measure",
                       "peak RSS (VmHWM) of a fresh process; ru_maxrss would include the "
                       "benchmark's own peak, inherited through posix_spawn and exec");
    }
    host.detail("ru_maxrss_mib", median(host_maxrss));
    worker.detail("which", "the larger of the 2 local workers, read before they stop");
    worker.detail("ru_maxrss_children_mib", median(children_maxrss));
    return {host, worker};
}

std::vector<Figure> broker_scaling(const Settings& settings) {
    const std::vector<std::size_t> worker_counts =
        settings.quick ? std::vector<std::size_t>{1, 3} : std::vector<std::size_t>{1, 10, 100};
    const std::uint64_t concurrent_jobs = 10;
    const std::uint64_t subtasks = settings.quick ? 2'000 : 200'000;

    // Beside each fleet, the raw relay with as many echo workers over tcp: how much of a
    // change with the number of workers is the machine's (more processes to wake on few
    // cores) rather than the broker's.
    std::vector<std::unique_ptr<RemoteFleet>> fleets;
    std::vector<std::unique_ptr<raw::Relay>> relays;
    std::vector<std::unique_ptr<raw::RawClient>> relay_clients;
    for (const std::size_t count : worker_counts) {
        fleets.push_back(std::make_unique<RemoteFleet>(count));
        relays.push_back(std::make_unique<raw::Relay>(static_cast<unsigned>(count),
                                                      raw_relay_credits, "tcp://127.0.0.1:*"));
        relay_clients.push_back(std::make_unique<raw::RawClient>(relays.back()->endpoint()));
    }

    // The broker's cost: CPU time of its thread per subtask. The rates beside it also count
    // what many processes sharing two cores cost the workers and the machine.
    std::vector<Figure> cost_by_workers, rate_by_workers, vs_relay;
    for (const std::size_t count : worker_counts) {
        const std::string suffix = "workers_" + std::to_string(count);
        Figure cost{"broker_scaling", "broker_scaling.cpu_" + suffix, "ns/subtask", Better::lower};
        Figure rate{"broker_scaling", "broker_scaling." + suffix, "subtasks/s", Better::higher};
        if (count != 1) {
            cost.baseline = "1 worker";
            cost.target = Target::ratio_at_most(1.25);
            rate.baseline = "1 worker";
        }
        Figure relayed{"broker_scaling", "broker_scaling." + suffix + "_vs_relay", "subtasks/s",
                       Better::higher};
        relayed.baseline = "raw_relay_" + std::to_string(count) + "_workers";
        relayed.detail("raw_worker_credits", static_cast<double>(raw_relay_credits));
        relayed.detail("raw_window", static_cast<double>(raw_window));
        for (Figure* figure : {&cost, &rate, &relayed}) {
            figure->detail("workers", static_cast<double>(count));
            figure->detail("jobs", 1.0);
        }
        cost_by_workers.push_back(std::move(cost));
        rate_by_workers.push_back(std::move(rate));
        vs_relay.push_back(std::move(relayed));
    }
    const std::string jobs_suffix = "jobs_" + std::to_string(concurrent_jobs);
    Figure cost_by_jobs{"broker_scaling", "broker_scaling.cpu_" + jobs_suffix, "ns/subtask",
                        Better::lower};
    cost_by_jobs.baseline = "1 job, 1 worker";
    cost_by_jobs.target = Target::ratio_at_most(1.25);
    Figure rate_by_jobs{"broker_scaling", "broker_scaling." + jobs_suffix, "subtasks/s",
                        Better::higher};
    rate_by_jobs.baseline = "1 job, 1 worker";
    for (Figure* figure : {&cost_by_jobs, &rate_by_jobs}) {
        figure->detail("workers", 1.0);
        figure->detail("jobs", static_cast<double>(concurrent_jobs));
    }

    for (int rep = 0; rep < settings.repeat; ++rep) {
        std::vector<BrokerRun> runs;
        for (std::size_t i = 0; i < fleets.size(); ++i) {
            const double relay_rate =
                static_cast<double>(subtasks) /
                relay_clients[i]->pipelined(subtasks, raw_window, 4, raw::Reply::echo);
            runs.push_back(unbatched_run(*fleets[i], subtasks, 1));
            vs_relay[i].add(runs.back().subtasks_per_second, relay_rate);
        }
        const BrokerRun jobs_run = unbatched_run(*fleets.front(), subtasks, concurrent_jobs);
        const BrokerRun& one = runs.front();
        for (std::size_t i = 0; i < runs.size(); ++i) {
            if (i == 0) {
                cost_by_workers[i].add(one.broker_ns_per_subtask);
                rate_by_workers[i].add(one.subtasks_per_second);
            } else {
                cost_by_workers[i].add(runs[i].broker_ns_per_subtask, one.broker_ns_per_subtask);
                rate_by_workers[i].add(runs[i].subtasks_per_second, one.subtasks_per_second);
            }
        }
        cost_by_jobs.add(jobs_run.broker_ns_per_subtask, one.broker_ns_per_subtask);
        rate_by_jobs.add(jobs_run.subtasks_per_second, one.subtasks_per_second);
    }

    std::vector<Figure> figures = std::move(cost_by_workers);
    figures.push_back(std::move(cost_by_jobs));
    figures.insert(figures.end(), rate_by_workers.begin(), rate_by_workers.end());
    figures.push_back(std::move(rate_by_jobs));
    figures.insert(figures.end(), vs_relay.begin(), vs_relay.end());
    for (Figure& figure : figures) {
        figure.detail("subtasks", static_cast<double>(subtasks));
        figure.detail("batch_size", 1.0);
        figure.detail("transport", "tcp");
        figure.detail("workers_started_as", "remote: --dtask-worker tcp://127.0.0.1:PORT");
        if (figure.unit == "ns/subtask") {
            figure.detail("measure",
                          "CPU time of the broker thread (/proc/self/task/ID/schedstat) over the "
                          "run, per subtask: 2 messages in and 2 out");
        }
    }
    return figures;
}

std::vector<Figure> startup(const Settings& settings) {
    Figure joined{"startup", "startup.workers_joined", "ms", Better::lower};
    joined.baseline = "raw_spawn_2";
    joined.target = Target::value_at_most(100);
    Figure first_job{"startup", "startup.first_job", "ms", Better::lower};

    for (int rep = 0; rep < settings.repeat; ++rep) {
        // The baseline: two processes of this binary started at once, until both have
        // bound a socket (the echo servers of the raw baselines say so on stdout).
        auto start = Clock::now();
        double spawn_ms = 0;
        {
            std::vector<BenchChild> echoes;
            for (int i = 0; i < 2; ++i)
                echoes.emplace_back(std::vector<std::string>{"--raw-echo", std::to_string(getpid()),
                                                             raw::private_ipc_endpoint(), "echo"},
                                    true);
            for (auto& echo : echoes) {
                if (!echo.read_line(std::chrono::seconds(30)))
                    throw std::runtime_error("a raw echo process did not start within 30 s");
            }
            spawn_ms = 1e3 * seconds_since(start);
        }

        start = Clock::now();
        dtask::Cluster cluster(two_local_workers());
        wait_for_workers(cluster, 2);
        const double joined_ms = 1e3 * seconds_since(start);
        check_result("the first job", cluster.run(identity_job, std::uint64_t{1}), 1);
        first_job.add(1e3 * seconds_since(start));
        joined.add(joined_ms, spawn_ms);
    }
    joined.detail("from", "Cluster construction to wait_for_workers(2) returning");
    joined.detail("baseline_is",
                  "2 processes of this binary spawned until each has bound a socket");
    first_job.detail("from", "Cluster construction to a one-subtask job's result");
    return {joined, first_job};
}

}  // namespace perf
