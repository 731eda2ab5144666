// Measures, with the default settings, how long dtask takes to notice each kind of failure
// and to recover from it: the figures of docs/reliability.md. Each scenario runs --repeat
// times on real processes; the median is reported. Run it with scripts/reliability.sh.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dtask/dtask.hpp>

#include "attempt_markers.hpp"
#include "process.hpp"
#include "remote_network.hpp"
#include "temp_dir.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- the job: sleeping subtasks, one of which may misbehave on its first attempt ----

enum class Trouble : std::uint8_t { none, hang_once, sleep_once, segfault };

struct Plan {
    std::uint64_t count = 0;
    std::uint32_t micros = 0;  // each subtask sleeps this long: work that needs no CPU
    std::uint64_t troubled = 0;
    Trouble trouble = Trouble::none;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, micros, troubled, trouble);
    }
};

struct Piece {
    std::uint32_t micros = 0;
    Trouble trouble = Trouble::none;
    std::uint64_t index = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(micros, trouble, index);
    }
};

const dtask::Job<std::uint64_t> work{
    "bench_faults.work",
    [](const Plan& plan, dtask::SplitHint) {
        return dtask::pieces(plan.count, [plan](std::uint64_t i) {
            return Piece{plan.micros, i == plan.troubled ? plan.trouble : Trouble::none, i};
        });
    },
    [](const Piece& piece, const std::string& directory) -> std::uint64_t {
        if (piece.trouble == Trouble::segfault) {
            const rlimit no_core{0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            raise(SIGSEGV);
        }
        if (piece.trouble != Trouble::none &&
            test_jobs::attempt_number(directory, piece.index) == 1) {
            if (piece.trouble == Trouble::hang_once) {
                for (;;)
                    pause();
            }
            std::this_thread::sleep_for(5s);  // sleep_once: a straggler
        }
        std::this_thread::sleep_for(std::chrono::microseconds(piece.micros));
        return 1;
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

// ---- measuring ----

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Milliseconds from `start` until `condition` holds (checked every 0.2 ms), or nullopt.
std::optional<double> until(Clock::time_point start, const std::function<bool()>& condition,
                            std::chrono::seconds limit = 60s) {
    while (!condition()) {
        if (Clock::now() - start > limit)
            return std::nullopt;
        std::this_thread::sleep_for(200us);
    }
    return ms_since(start);
}

/// A dtask worker of this binary, started by hand as a remote one is, joining `cluster` on
/// its last (tcp) endpoint with its join token in DTASK_TOKEN (inside the network namespace
/// `netns`, if given); kill9() is a crash.
class WorkerProcess {
public:
    explicit WorkerProcess(const dtask::Cluster& cluster, const std::string& netns = {})
        : WorkerProcess(cluster.endpoints().back(), cluster.join_token(), netns) {}
    WorkerProcess(const std::string& endpoint, const std::string& token,
                  const std::string& netns = {})
        : process_(netns.empty() ? test_support::self_executable()
                                 : test_support::RemoteNetwork::ip_program(),
                   arguments(endpoint, netns), {}, {"DTASK_TOKEN=" + token}) {}
    void kill9() { process_.kill_and_reap(); }
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        return process_.wait_exit(timeout);
    }

private:
    static std::vector<std::string> arguments(const std::string& endpoint,
                                              const std::string& netns) {
        std::vector<std::string> args;
        if (!netns.empty())
            args = {"netns", "exec", netns, test_support::self_executable()};
        args.insert(args.end(), {"--dtask-worker", endpoint, "--dtask-give-up", "600"});
        return args;
    }

    test_support::Process process_;
};

struct Row {
    std::string failure;
    std::string user_sees;
    std::string detection_name;
    std::vector<double> detection;
    std::string recovery_name;
    std::vector<double> recovery;
    std::string note;
};

double median(std::vector<double> values) {
    if (values.empty())
        return -1;
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

dtask::ClusterOptions cluster_options(int local_workers, bool tcp) {
    dtask::ClusterOptions options;
    options.local_workers = local_workers;
    if (tcp)
        options.listen.push_back("tcp://127.0.0.1:*");
    return options;
}

const Plan steady_work{2000, 5000};  // 10 s of subtasks on 2 workers: outlasts every scenario

/// Starts a job that outlasts the scenario once `workers` workers are connected, and
/// returns when it is under way: then every worker holds subtasks.
dtask::JobHandle<std::uint64_t> steady_job_under_way(dtask::Cluster& cluster, std::size_t workers,
                                                     const std::string& directory) {
    cluster.wait_for_workers(workers, 30s);
    auto job = cluster.submit(work, steady_work, directory);
    until(Clock::now(), [&] { return job.progress().done >= 20; });
    return job;
}

// ---- scenarios: each adds one measurement to its row, or throws ----

void local_worker_killed(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    test_support::TempDir scratch("dtask-faults");
    auto job = steady_job_under_way(cluster, 2, scratch.path());
    const pid_t victim = cluster.local_worker_pids().front();
    const auto start = Clock::now();
    kill(victim, SIGKILL);
    // The broker watches its children's pidfds: it knows at once, and starts a replacement.
    auto gone = until(start, [&] {
        auto pids = cluster.local_worker_pids();
        return std::find(pids.begin(), pids.end(), victim) == pids.end();
    });
    auto replaced = until(start, [&] {
        auto pids = cluster.local_worker_pids();
        return cluster.workers() == 2 && std::find(pids.begin(), pids.end(), victim) == pids.end();
    });
    job.cancel();
    if (!gone || !replaced)
        throw std::runtime_error("the killed local worker was not replaced");
    row.detection.push_back(*gone);
    row.recovery.push_back(*replaced);
}

void local_worker_frozen(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    test_support::TempDir scratch("dtask-faults");
    auto job = steady_job_under_way(cluster, 2, scratch.path());
    const pid_t victim = cluster.local_worker_pids().front();
    const auto start = Clock::now();
    kill(victim, SIGSTOP);
    auto dropped = until(start, [&] { return cluster.workers() == 1; });
    const auto thawed = Clock::now();
    kill(victim, SIGCONT);
    auto back = until(thawed, [&] { return cluster.workers() == 2; });
    job.cancel();
    if (!dropped || !back)
        throw std::runtime_error("the frozen worker was not dropped, or did not come back");
    row.detection.push_back(*dropped);
    row.recovery.push_back(*back);
}

void remote_worker_killed(Row& row) {
    dtask::Cluster cluster(cluster_options(1, true));
    WorkerProcess remote(cluster);
    test_support::TempDir scratch("dtask-faults");
    auto job = steady_job_under_way(cluster, 2, scratch.path());
    const auto start = Clock::now();
    remote.kill9();
    // A remote process has no pidfd here: only its silence tells.
    auto dropped = until(start, [&] { return cluster.workers() == 1; });
    job.cancel();
    if (!dropped)
        throw std::runtime_error("the killed remote worker was not dropped");
    row.detection.push_back(*dropped);
}

void network_partition(Row& row) {
    test_support::RemoteNetwork network;
    if (!network.why_not().empty())
        throw std::runtime_error("skipped: " + network.why_not());
    dtask::ClusterOptions options = cluster_options(1, false);
    options.listen.push_back("tcp://" + network.host_address() + ":*");
    dtask::Cluster cluster(options);
    WorkerProcess remote(cluster, network.name());
    test_support::TempDir scratch("dtask-faults");
    auto job = steady_job_under_way(cluster, 2, scratch.path());
    const auto start = Clock::now();
    network.cut();
    auto dropped = until(start, [&] { return cluster.workers() == 1; });
    const auto healed = Clock::now();
    network.heal();
    auto back = until(healed, [&] { return cluster.workers() == 2; });
    job.cancel();
    if (!dropped || !back)
        throw std::runtime_error("the partitioned worker was not dropped, or did not rejoin");
    row.detection.push_back(*dropped);
    row.recovery.push_back(*back);
}

void subtask_hangs(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    cluster.wait_for_workers(2, 30s);
    test_support::TempDir scratch("dtask-faults");
    dtask::RunOptions options;
    options.subtask_timeout = 1000ms;
    options.backup_tasks = false;  // the timeout is what is measured
    const auto start = Clock::now();
    auto job = cluster.submit(work, Plan{50, 1000, 7, Trouble::hang_once}, scratch.path(), options);
    if (job.get() != 50)
        throw std::runtime_error("wrong result after a hung subtask");
    row.recovery.push_back(ms_since(start));
}

void straggler(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    cluster.wait_for_workers(2, 30s);
    test_support::TempDir scratch("dtask-faults");
    const auto start = Clock::now();
    auto job = cluster.submit(work, Plan{50, 1000, 20, Trouble::sleep_once}, scratch.path());
    if (job.get() != 50)
        throw std::runtime_error("wrong result with a straggler");
    row.recovery.push_back(ms_since(start));
}

void poison_pill(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    cluster.wait_for_workers(2, 30s);
    test_support::TempDir scratch("dtask-faults");
    const auto start = Clock::now();
    auto job = cluster.submit(work, Plan{50, 1000, 13, Trouble::segfault}, scratch.path());
    try {
        job.get();
        throw std::runtime_error("a poison pill did not fail its job");
    } catch (const dtask::PoisonSubtaskError&) {
    }
    row.detection.push_back(ms_since(start));
    const auto failed = Clock::now();
    auto back = until(failed, [&] { return cluster.workers() == 2; });
    if (!back)
        throw std::runtime_error("the killed workers were not replaced");
    row.recovery.push_back(*back);
}

/// `--host KEYS`: a host that this benchmark kills, listening on a free loopback port with
/// its keys in KEYS. It prints its endpoint and join token, then "joined" once a worker has
/// joined, and waits to be killed.
int run_host(const char* keys) {
    auto options = cluster_options(0, true);
    options.keys_directory = keys;
    dtask::Cluster cluster(options);
    std::printf("%s\n%s\n", cluster.endpoints().back().c_str(), cluster.join_token().c_str());
    std::fflush(stdout);
    if (!cluster.wait_for_workers(1, 60s))
        return 1;
    std::printf("joined\n");
    std::fflush(stdout);
    pause();
    return 0;
}

void broker_killed_and_restarted(Row& row) {
    // The host keeps its keys in a directory, so that the worker's token admits it to the
    // next one too.
    test_support::TempDir keys("dtask-faults-keys");
    test_support::Process host(test_support::self_executable(), {"--host", keys.path()}, "|");
    const auto endpoint = host.read_line(30s);
    const auto token = host.read_line(30s);
    if (!endpoint || !token)
        throw std::runtime_error("the host to kill did not start");
    WorkerProcess remote(*endpoint, *token);
    if (host.read_line(60s) != std::optional<std::string>("joined"))
        throw std::runtime_error("the remote worker did not join the host");
    host.kill_and_reap();  // no goodbye: the worker keeps looking for its broker
    dtask::ClusterOptions options = cluster_options(0, false);
    options.listen.push_back(*endpoint);
    options.keys_directory = keys.path();
    const auto start = Clock::now();
    dtask::Cluster second(options);
    auto back = until(start, [&] { return second.workers() == 1; });
    if (!back)
        throw std::runtime_error("the remote worker did not rejoin the restarted broker");
    row.recovery.push_back(*back);
}

#ifdef DTASK_FAULTS_DTASKD
/// A dtaskd with its keys in `keys`, listening on `endpoint` (port 0: a free one); waits
/// until it listens and returns its endpoint.
std::string start_dtaskd(std::optional<test_support::Process>& dtaskd, const std::string& keys,
                         const std::string& endpoint) {
    dtaskd.emplace(DTASK_FAULTS_DTASKD,
                   std::vector<std::string>{"--listen", endpoint, "--keys", keys}, "|&");
    const std::string prefix = "dtaskd: listening on ";
    while (auto line = dtaskd->read_line(30s)) {
        if (line->starts_with(prefix))
            return line->substr(prefix.size());
    }
    throw std::runtime_error("dtaskd did not start");
}

std::string token_in(const std::string& keys, const char* role) {
    std::ifstream file(keys + "/" + role + ".token");
    std::string token;
    std::getline(file, token);
    return token;
}

void dtaskd_restarted(Row& row) {
    // The client and the workers, of this binary, see dtaskd killed and started again on the
    // same endpoint with the same keys; the pause is from the kill until the job folds a
    // result the new dtaskd brought.
    test_support::TempDir keys("dtask-faults-keys");
    test_support::TempDir scratch("dtask-faults");
    std::optional<test_support::Process> dtaskd;
    const std::string endpoint = start_dtaskd(dtaskd, keys.path(), "tcp://127.0.0.1:*");
    WorkerProcess first(endpoint, token_in(keys.path(), "worker"));
    WorkerProcess second(endpoint, token_in(keys.path(), "worker"));
    dtask::Client client(endpoint, {.token = token_in(keys.path(), "client")});
    if (!client.wait_for_workers(2, 30s))
        throw std::runtime_error("the workers did not join dtaskd");
    auto job = client.submit(work, steady_work, scratch.path());
    until(Clock::now(), [&] { return job.progress().done >= 20; });
    dtaskd->kill_and_reap();
    const auto start = Clock::now();
    start_dtaskd(dtaskd, keys.path(), endpoint);
    row.detection.push_back(ms_since(start));
    // Results on their way at the kill have been folded by now: the next come from the new
    // dtaskd.
    const auto before = job.progress().done;
    const auto going = until(start, [&] { return job.progress().done > before; });
    if (!going)
        throw std::runtime_error("the job did not go on after dtaskd restarted");
    row.recovery.push_back(*going);
    if (job.get() != steady_work.count)
        throw std::runtime_error("wrong result after dtaskd restarted");
}
#endif

void host_ends(Row& row) {
    std::optional<WorkerProcess> remote;
    Clock::time_point start;
    {
        dtask::Cluster cluster(cluster_options(0, true));
        remote.emplace(cluster);
        if (!cluster.wait_for_workers(1, 30s))
            throw std::runtime_error("the remote worker did not join");
        start = Clock::now();
    }  // the host ends normally: it dismisses its workers
    const auto status = remote->wait_exit(60s);
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
        throw std::runtime_error("the remote worker did not exit with status 0");
    row.recovery.push_back(ms_since(start));
}

void deadline(Row& row) {
    dtask::Cluster cluster(cluster_options(2, false));
    cluster.wait_for_workers(2, 30s);
    test_support::TempDir scratch("dtask-faults");
    dtask::RunOptions options;
    options.deadline = 500ms;
    const auto start = Clock::now();
    auto job = cluster.submit(work, steady_work, scratch.path(), options);
    try {
        job.get();
        throw std::runtime_error("a job past its deadline did not fail");
    } catch (const dtask::TimeoutError&) {
    }
    row.detection.push_back(ms_since(start));
}

void worker_joins_late(Row& row) {
    dtask::Cluster cluster(cluster_options(0, true));
    test_support::TempDir scratch("dtask-faults");
    auto job = cluster.submit(work, Plan{1, 0}, scratch.path());
    const auto start = Clock::now();
    WorkerProcess late(cluster);
    if (job.get() != 1)
        throw std::runtime_error("wrong result from a job that waited for a worker");
    row.recovery.push_back(ms_since(start));
}

struct FaultScenario {
    void (*run)(Row&);
    Row row;
};

std::string cell(const std::vector<double>& values) {
    if (values.empty())
        return "–";
    char text[64];
    std::snprintf(text, sizeof text, "%.0f ms", median(values));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    if (argc == 3 && std::string(argv[1]) == "--host")
        return run_host(argv[2]);
    int repeat = 3;
    std::string json_path;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::printf(
                "Usage: dtask_faults [--repeat N] [--json FILE] [--only TEXT]\n"
                "Measures how long dtask takes to notice failures and recover, with the\n"
                "default settings, and prints a Markdown table of medians (docs/reliability.md).\n"
                "  --repeat N    runs of each scenario (default 3)\n"
                "  --json FILE   also write every measurement to FILE\n"
                "  --only TEXT   run only the scenarios whose name contains TEXT\n"
                "The network partition needs root and the ip command (else it is skipped).\n");
            return 0;
        } else if (arg == "--repeat" && i + 1 < argc) {
            repeat = std::max(1, std::atoi(argv[++i]));
        } else if (arg == "--json" && i + 1 < argc) {
            json_path = argv[++i];
        } else if (arg == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else {
            std::fprintf(stderr, "dtask_faults: unknown argument '%s' (see --help)\n", arg.c_str());
            return 2;
        }
    }
    setenv("DTASK_LOG", "quiet", 1);  // the warnings are expected here; workers inherit it

    std::vector<FaultScenario> scenarios{
        {local_worker_killed,
         {"local worker killed (kill -9)",
          "nothing: the right result",
          "worker gone",
          {},
          "replacement joined",
          {},
          ""}},
        {local_worker_frozen,
         {"worker frozen (SIGSTOP)",
          "nothing: the right result",
          "worker dropped",
          {},
          "rejoined after SIGCONT",
          {},
          ""}},
        {remote_worker_killed,
         {"remote worker killed (kill -9, TCP)",
          "nothing: the right result",
          "worker dropped",
          {},
          "",
          {},
          ""}},
        {network_partition,
         {"remote worker cut off (veth link down)",
          "nothing: the right result",
          "worker dropped",
          {},
          "rejoined after the link came back",
          {},
          ""}},
        {subtask_hangs,
         {"subtask hangs once (subtask_timeout 1 s)",
          "nothing: the right result",
          "",
          {},
          "job done (the 1 s timeout included)",
          {},
          ""}},
        {straggler,
         {"one subtask takes 5 s once (backup tasks on)",
          "nothing: the right result",
          "",
          {},
          "job done (instead of 5 s)",
          {},
          ""}},
        {poison_pill,
         {"subtask segfaults every time (3 attempts)",
          "PoisonSubtaskError naming it",
          "job failed",
          {},
          "workers replaced",
          {},
          ""}},
        {broker_killed_and_restarted,
         {"host killed (kill -9) and restarted on its TCP port",
          "its jobs go with it; the next host has its worker back",
          "",
          {},
          "remote worker rejoined",
          {},
          ""}},
#ifdef DTASK_FAULTS_DTASKD
        {dtaskd_restarted,
         {"dtaskd killed (kill -9) and restarted on its endpoint, a client's job running",
          "nothing: the right result, after a pause",
          "dtaskd listening again",
          {},
          "job folding again (the pause)",
          {},
          ""}},
#endif
        {host_ends,
         {"host ends (Cluster destroyed)",
          "its remote workers exit with status 0",
          "",
          {},
          "remote worker exited with status 0",
          {},
          ""}},
        {worker_joins_late,
         {"job submitted with no worker",
          "it waits (RunOptions::worker_wait)",
          "",
          {},
          "done after a worker process starts",
          {},
          ""}},
        {deadline,
         {"job past RunOptions::deadline (500 ms)",
          "TimeoutError, job cancelled",
          "get() threw",
          {},
          "",
          {},
          ""}},
    };
    std::erase_if(scenarios, [&](const FaultScenario& scenario) {
        return scenario.row.failure.find(only) == std::string::npos;
    });
    for (auto& scenario : scenarios) {
        std::fprintf(stderr, "dtask_faults: %s ...\n", scenario.row.failure.c_str());
        for (int run = 0; run < repeat; ++run) {
            try {
                scenario.run(scenario.row);
            } catch (const std::exception& e) {
                scenario.row.note = e.what();
                break;
            }
        }
    }

    std::printf("| failure | the user sees | detection | | recovery | |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (const auto& [run, row] : scenarios) {
        std::printf("| %s | %s | %s | %s | %s | %s |%s\n", row.failure.c_str(),
                    row.user_sees.c_str(), row.detection_name.c_str(), cell(row.detection).c_str(),
                    row.recovery_name.c_str(), cell(row.recovery).c_str(),
                    row.note.empty() ? "" : (" " + row.note).c_str());
    }
    std::printf("\nmedians of %d run(s); defaults: heartbeat 250 ms x 5\n", repeat);

    if (!json_path.empty()) {
        std::ofstream json(json_path);
        json << "[\n";
        for (std::size_t i = 0; i < scenarios.size(); ++i) {
            const Row& row = scenarios[i].row;
            auto list = [](const std::vector<double>& values) {
                std::string text = "[";
                for (std::size_t j = 0; j < values.size(); ++j)
                    text += (j ? ", " : "") + std::to_string(values[j]);
                return text + "]";
            };
            json << "  {\"failure\": \"" << row.failure
                 << "\", \"detection_ms\": " << list(row.detection)
                 << ", \"recovery_ms\": " << list(row.recovery) << ", \"note\": \"" << row.note
                 << "\"}" << (i + 1 < scenarios.size() ? "," : "") << "\n";
        }
        json << "]\n";
    }
    return 0;
}
