// many_workers: one dtaskd holding a thousand workers over TCP, each figure beside the same
// dtaskd with one worker in the same repetition. The workers are connections of a few
// dtask_swarm processes (bench/swarm.cpp: the workers' own protocol code, one thread for a
// hundred connections), so that the broker's CPU is measured apart from the workers'; then
// with a thousand real worker processes, all started at once.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "dtaskd_child.hpp"
#include "perf_jobs.hpp"
#include "proc_status.hpp"
#include "scenarios.hpp"

#if defined(DTASK_PERF_DTASKD) && defined(DTASK_PERF_SWARM)
namespace perf {
namespace {

using namespace std::chrono_literals;

/// CPU seconds of process `pid`, all its threads (ZeroMQ's I/O thread encrypts and sends):
/// the scheduler's own account, in nanoseconds, unaffected by waiting for a core.
double process_cpu_seconds(pid_t pid) {
    double ns = 0;
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
        std::ifstream schedstat(task.path() / "schedstat");
        double on_cpu = 0;
        if (schedstat >> on_cpu)
            ns += on_cpu;
    }
    return ns * 1e-9;
}

/// The resident set of process `pid` in KiB (VmRSS).
double resident_kib(pid_t pid) {
    const long kib = status_kib(std::to_string(pid), "VmRSS");
    if (kib == 0)
        throw std::runtime_error("cannot read the resident set of process " + std::to_string(pid));
    return static_cast<double>(kib);
}

/// `count` worker connections from one dtask_swarm process.
class Swarm {
public:
    Swarm(const DtaskdChild& dtaskd, std::size_t count)
        : count_(count),
          process_(BenchChild::Program{DTASK_PERF_SWARM},
                   {std::to_string(getpid()), dtaskd.endpoint, std::to_string(count)}, true,
                   {"DTASK_TOKEN=" + dtaskd.token("worker")}) {}

    /// Waits until every connection has its welcome; throws if one was refused, or after
    /// `timeout`.
    void wait_welcomed(std::chrono::milliseconds timeout) {
        while (!welcomed_) {
            const auto line = process_.read_line(timeout);
            if (!line)
                throw std::runtime_error("a swarm of " + std::to_string(count_) +
                                         " workers was not all welcomed in time");
            note(*line);
        }
    }
    /// Connections that heard nothing from the broker for their whole silence, so far.
    std::size_t lapses() {
        read_what_came();
        return lapses_;
    }
    /// The heartbeat interval the broker paced these workers at last.
    double interval_ms() {
        read_what_came();
        return interval_ms_;
    }
    pid_t pid() const noexcept { return process_.pid(); }
    void kill() noexcept { process_.kill_and_reap(); }

private:
    void read_what_came() {
        while (const auto line = process_.read_line(10ms))
            note(*line);
    }
    void note(const std::string& line) {
        if (line.starts_with("welcomed "))
            welcomed_ = true;
        else if (line.starts_with("pace "))
            interval_ms_ = std::atof(line.c_str() + 5);
        else if (line.starts_with("lapse "))
            ++lapses_;
        else if (line.starts_with("refused "))
            throw std::runtime_error("dtaskd refused a swarm worker: " + line.substr(8));
    }

    std::size_t count_;
    BenchChild process_;
    bool welcomed_ = false;
    std::size_t lapses_ = 0;
    double interval_ms_ = 250;  // dtaskd's default, until it paces
};

/// How long until `client` hears that dtaskd has at most `count` workers, polled every ms:
/// the worker count comes to it in status messages, as soon as it changes.
double ms_until_at_most(dtask::Client& client, std::size_t count, std::chrono::seconds limit) {
    const auto start = Clock::now();
    while (client.workers() > count) {
        if (Clock::now() - start > limit)
            throw std::runtime_error("dtaskd still counted " + std::to_string(client.workers()) +
                                     " workers after " + std::to_string(limit.count()) + " s");
        std::this_thread::sleep_for(1ms);  // a poll of a count, not a wait for a result
    }
    return 1e3 * seconds_since(start);
}

/// The broker's CPU per second over `window` with nothing to do but heartbeats, in % of a
/// core.
double idle_cpu_percent(pid_t broker, std::chrono::milliseconds window) {
    const double before = process_cpu_seconds(broker);
    const auto start = Clock::now();
    std::this_thread::sleep_for(window);  // the window measured, not a synchronisation
    return 100 * (process_cpu_seconds(broker) - before) / seconds_since(start);
}

/// The broker's CPU in ns per subtask of an unbatched job of `subtasks` empty subtasks.
double cpu_ns_per_subtask(dtask::Client& client, pid_t broker, std::uint64_t subtasks) {
    const double before = process_cpu_seconds(broker);
    check_result("the empty-subtask job",
                 client.run(identity_job, subtasks, dtask::RunOptions{.batch_size = 1}),
                 identity_result(subtasks));
    return 1e9 * (process_cpu_seconds(broker) - before) / static_cast<double>(subtasks);
}

}  // namespace

std::vector<Figure> many_workers(const Settings& settings) {
    const std::size_t swarms = settings.quick ? 2 : 10;
    const std::size_t per_swarm = settings.quick ? 10 : 100;
    const std::size_t many = swarms * per_swarm;
    const std::uint64_t subtasks = settings.quick ? 2'000 : 100'000;
    const auto window = settings.quick ? 500ms : 5s;
    const std::string suffix = "workers_" + std::to_string(many);

    Figure idle{"many_workers", "many_workers.idle_cpu_" + suffix, "% of a core", Better::lower};
    idle.baseline = "1 worker";
    idle.target = Target::value_at_most(5);
    Figure cost{"many_workers", "many_workers.cpu_" + suffix, "ns/subtask", Better::lower};
    cost.baseline = "1 worker";
    cost.target = Target::ratio_at_most(1.5);
    Figure joined{"many_workers", "many_workers.join_storm_" + suffix, "ms", Better::lower};
    Figure killed{"many_workers", "many_workers.killed_" + std::to_string(per_swarm) + "_noticed",
                  "ms", Better::lower};
    Figure frozen{"many_workers", "many_workers.frozen_" + std::to_string(per_swarm) + "_noticed",
                  "ms", Better::lower};
    Figure memory{"many_workers", "many_workers.memory_per_worker", "KiB", Better::lower};
    Figure processes_joined{"many_workers",
                            "many_workers.join_storm_" + std::to_string(many) + "_processes", "ms",
                            Better::lower};
    Figure processes_idle{"many_workers",
                          "many_workers.idle_cpu_" + std::to_string(many) + "_processes",
                          "% of a core", Better::lower};
    processes_idle.baseline = "1 worker";
    processes_idle.target = Target::value_at_most(5);
    Figure processes_cpu{"many_workers",
                         "many_workers.idle_cpu_of_the_" + std::to_string(many) + "_processes",
                         "% of a core", Better::lower};
    std::size_t lapses = 0;
    double interval_ms = 0;

    // Fewer repetitions than the other scenarios: each starts a thousand connections and
    // waits out a frozen worker's silence.
    for (int rep = 0; rep < std::min(settings.repeat, 3); ++rep) {
        DtaskdChild dtaskd({});
        const pid_t broker = dtaskd.process->pid();
        dtask::ClientOptions options;
        options.token = dtaskd.token("client");
        dtask::Client client(dtaskd.endpoint, options);

        // One worker: the baseline of every figure.
        double one_idle = 0, one_cost = 0, one_kib = 0;
        {
            Swarm one(dtaskd, 1);
            one.wait_welcomed(60s);
            if (!client.wait_for_workers(1, 60s))
                throw std::runtime_error("the worker did not join dtaskd within 60 s");
            cpu_ns_per_subtask(client, broker, subtasks / 10);  // warm
            one_kib = resident_kib(broker);
            one_idle = idle_cpu_percent(broker, window);
            one_cost = cpu_ns_per_subtask(client, broker, subtasks);
            one.kill();
            ms_until_at_most(client, 0, 60s);
        }

        // The join storm: every swarm starts at once, each connecting all its workers at once.
        const auto start = Clock::now();
        std::vector<std::unique_ptr<Swarm>> fleet;
        for (std::size_t i = 0; i < swarms; ++i)
            fleet.push_back(std::make_unique<Swarm>(dtaskd, per_swarm));
        for (auto& swarm : fleet)
            swarm->wait_welcomed(120s);
        if (!client.wait_for_workers(many, 120s))
            throw std::runtime_error(std::to_string(client.workers()) + " of " +
                                     std::to_string(many) + " workers joined within 120 s");
        joined.add(1e3 * seconds_since(start));

        // Idle: heartbeats only, once the pace has settled (at most two intervals).
        std::this_thread::sleep_for(settings.quick ? 500ms : 5s);  // the settling measured
        idle.add(idle_cpu_percent(broker, window), one_idle);
        memory.add((resident_kib(broker) - one_kib) / static_cast<double>(many));
        cost.add(cpu_ns_per_subtask(client, broker, subtasks), one_cost);

        interval_ms = fleet.front()->interval_ms();
        // A swarm killed: its connections close, and dtaskd hears of it at one of its next two
        // beats (the first may come before ZeroMQ has ended the connections' pipes).
        fleet.back()->kill();
        killed.add(ms_until_at_most(client, many - per_swarm, 120s));
        fleet.pop_back();
        // A swarm frozen: its connections stay open and fall silent.
        ::kill(fleet.back()->pid(), SIGSTOP);
        frozen.add(ms_until_at_most(client, many - 2 * per_swarm, 120s));
        fleet.back()->kill();
        fleet.pop_back();
        for (auto& swarm : fleet)
            lapses += swarm->lapses();
        fleet.clear();
        ms_until_at_most(client, 0, 120s);

        // Real worker processes, this binary started as users start remote workers, all at
        // once: what they cost the machine beside the broker.
        std::vector<BenchChild> processes;
        const std::string worker_token = "DTASK_TOKEN=" + dtaskd.token("worker");
        const auto spawned = Clock::now();
        for (std::size_t i = 0; i < many; ++i)
            processes.emplace_back(std::vector<std::string>{"--dtask-worker", dtaskd.endpoint,
                                                            "--dtask-give-up", "10"},
                                   false, std::vector<std::string>{worker_token});
        if (!client.wait_for_workers(many, 300s))
            throw std::runtime_error(std::to_string(client.workers()) + " of " +
                                     std::to_string(many) +
                                     " worker processes joined within 300 s");
        processes_joined.add(1e3 * seconds_since(spawned));
        std::this_thread::sleep_for(settings.quick ? 500ms : 5s);  // the settling measured
        double workers_before = 0;
        for (const auto& process : processes)
            workers_before += process_cpu_seconds(process.pid());
        const auto watched = Clock::now();
        processes_idle.add(idle_cpu_percent(broker, window), one_idle);
        double workers_after = 0;
        for (const auto& process : processes)
            workers_after += process_cpu_seconds(process.pid());
        processes_cpu.add(100 * (workers_after - workers_before) / seconds_since(watched));
    }
    if (lapses > 0)
        throw WrongResult(std::to_string(lapses) +
                          " swarm workers heard nothing from dtaskd for a whole silence");

    idle.detail("window_ms", static_cast<double>(window.count()));
    idle.detail("measure",
                "CPU time of the dtaskd process, all threads (/proc/PID/task/*/schedstat), "
                "per second of wall time, with every worker connected and no job");
    cost.detail("subtasks", static_cast<double>(subtasks));
    cost.detail("batch_size", 1.0);
    cost.detail("measure", "CPU time of the dtaskd process, all threads, over the job");
    joined.detail("from", "the swarm processes started (all at once) to the client counting all");
    killed.detail("how", "SIGKILL of one swarm process: its connections close");
    frozen.detail("how", "SIGSTOP of one swarm process: its connections open and silent");
    memory.detail("measure", "dtaskd's VmRSS with every worker connected, less with 1, per worker");
    // The documented detection times (docs/deployment.md): a closed connection at one of the
    // next two beats, a silent peer after interval × liveness (5), seen at the beat after.
    killed.target = Target::value_at_most(2 * interval_ms);
    frozen.target = Target::value_at_most(interval_ms * 6);
    for (Figure* figure : {&killed, &frozen})
        figure->detail("heartbeat_interval_ms", interval_ms);
    processes_joined.detail(
        "from", "the worker processes started (all at once) to the client counting all");
    processes_idle.detail("measure", "as idle_cpu_, with worker processes instead of swarms");
    processes_cpu.detail("measure",
                         "CPU time of all the worker processes, per second of wall time, idle");
    std::vector<Figure> figures{idle,         cost,   joined,           killed,
                                frozen,       memory, processes_joined, processes_idle,
                                processes_cpu};
    for (Figure& figure : figures) {
        figure.detail("workers", static_cast<double>(many));
        figure.detail("swarm_processes", static_cast<double>(swarms));
        figure.detail("broker", "dtaskd over tcp://127.0.0.1 (CurveZMQ), default settings");
        figure.detail("connections_per_worker", 2.0);
    }
    return figures;
}

}  // namespace perf
#endif
