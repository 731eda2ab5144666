// memory, broker_scaling and startup: what stays bounded as jobs, workers and processes
// grow, and how long a Cluster takes to be ready.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_process.hpp"
#include "perf_jobs.hpp"
#include "raw_zmq.hpp"
#include "scenarios.hpp"

namespace perf {
namespace {

constexpr std::size_t raw_window = 1000;    // messages in flight through the raw relay
constexpr unsigned raw_relay_credits = 64;  // per echo worker behind it

double mebibytes_of_kib(long kib) {
    return static_cast<double>(kib) / 1024;
}

/// The peak resident set of a live process in KiB: VmHWM of /proc/PID/status, 0 if gone.
/// Unlike ru_maxrss it covers the process's own address space alone: at exec, Linux folds
/// the peak of the address space the process had before into ru_maxrss, and a process made
/// with posix_spawn (vfork) had its parent's, so a big parent makes every child look big.
long peak_rss_kib(const std::string& pid) {
    std::ifstream status("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0)
            return std::atol(line.c_str() + 6);
    }
    return 0;
}

/// A Cluster that listens on tcp and starts no workers, and `count` worker processes of
/// this binary connected to it, started here as remote workers would be started by hand.
struct RemoteFleet {
    std::unique_ptr<dtask::Cluster> cluster;
    std::vector<ChildProcess> workers;

    explicit RemoteFleet(std::size_t count) {
        dtask::ClusterOptions options;
        options.local_workers = 0;
        options.listen = {"tcp://127.0.0.1:*"};
        cluster = std::make_unique<dtask::Cluster>(options);
        const std::string endpoint = cluster->endpoints().back();
        // A worker whose broker went silent leaves after 10 s: the last resort for a
        // benchmark killed with SIGKILL, which cannot kill them itself.
        for (std::size_t i = 0; i < count; ++i)
            workers.emplace_back(
                std::vector<std::string>{"--dtask-worker", endpoint, "--dtask-give-up", "10"});
        wait_for_workers(*cluster, count);
    }
};

/// Subtasks per second of `jobs` jobs of `subtasks / jobs` empty subtasks each, submitted at
/// once, with batching off: one message per subtask through the broker.
double unbatched_rate(dtask::Cluster& cluster, std::uint64_t subtasks, std::uint64_t jobs) {
    const std::uint64_t each = subtasks / jobs;
    const auto start = Clock::now();
    std::vector<dtask::JobHandle<std::uint64_t>> handles;
    for (std::uint64_t job = 0; job < jobs; ++job)
        handles.push_back(cluster.submit(identity_job, each, dtask::RunOptions{.batch_size = 1}));
    for (auto& handle : handles)
        check_result("the empty-subtask job", handle.get(), identity_result(each));
    return static_cast<double>(each * jobs) / seconds_since(start);
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
        ChildProcess probe({"--memory-probe", std::to_string(getpid()), std::to_string(subtasks)},
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
    std::vector<std::unique_ptr<raw::Client>> relay_clients;
    for (const std::size_t count : worker_counts) {
        fleets.push_back(std::make_unique<RemoteFleet>(count));
        relays.push_back(std::make_unique<raw::Relay>(static_cast<unsigned>(count),
                                                      raw_relay_credits, "tcp://127.0.0.1:*"));
        relay_clients.push_back(std::make_unique<raw::Client>(relays.back()->endpoint()));
    }

    std::vector<Figure> by_workers, vs_relay;
    for (const std::size_t count : worker_counts) {
        const std::string name = "broker_scaling.workers_" + std::to_string(count);
        Figure figure{"broker_scaling", name, "subtasks/s", Better::higher};
        if (count != 1) {
            figure.baseline = "1 worker";
            figure.target = Target::ratio_at_least(0.8);
        }
        figure.detail("workers", static_cast<double>(count));
        figure.detail("jobs", 1.0);
        by_workers.push_back(std::move(figure));
        Figure relayed{"broker_scaling", name + "_vs_relay", "subtasks/s", Better::higher};
        relayed.baseline = "raw_relay_" + std::to_string(count) + "_workers";
        relayed.detail("workers", static_cast<double>(count));
        relayed.detail("jobs", 1.0);
        relayed.detail("raw_worker_credits", static_cast<double>(raw_relay_credits));
        relayed.detail("raw_window", static_cast<double>(raw_window));
        vs_relay.push_back(std::move(relayed));
    }
    Figure by_jobs{"broker_scaling", "broker_scaling.jobs_" + std::to_string(concurrent_jobs),
                   "subtasks/s", Better::higher};
    by_jobs.baseline = "1 job, 1 worker";
    by_jobs.target = Target::ratio_at_least(0.8);
    by_jobs.detail("workers", 1.0);
    by_jobs.detail("jobs", static_cast<double>(concurrent_jobs));

    for (int rep = 0; rep < settings.repeat; ++rep) {
        std::vector<double> rates;
        for (std::size_t i = 0; i < fleets.size(); ++i) {
            const double relay_rate =
                static_cast<double>(subtasks) /
                relay_clients[i]->pipelined(subtasks, raw_window, 4, raw::Reply::echo);
            rates.push_back(unbatched_rate(*fleets[i]->cluster, subtasks, 1));
            vs_relay[i].add(rates.back(), relay_rate);
        }
        const double jobs_rate =
            unbatched_rate(*fleets.front()->cluster, subtasks, concurrent_jobs);
        for (std::size_t i = 0; i < rates.size(); ++i) {
            if (i == 0)
                by_workers[i].add(rates[i]);
            else
                by_workers[i].add(rates[i], rates.front());
        }
        by_jobs.add(jobs_rate, rates.front());
    }

    std::vector<Figure> figures = std::move(by_workers);
    figures.push_back(std::move(by_jobs));
    figures.insert(figures.end(), vs_relay.begin(), vs_relay.end());
    for (Figure& figure : figures) {
        figure.detail("subtasks", static_cast<double>(subtasks));
        figure.detail("batch_size", 1.0);
        figure.detail("transport", "tcp");
        figure.detail("workers_started_as", "remote: --dtask-worker tcp://127.0.0.1:PORT");
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
            std::vector<ChildProcess> echoes;
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
