// dtask_perf: throughput, latency, overhead, scaling and memory of dtask, each figure next to
// a baseline measured in the same run (bare ZeroMQ sockets, or the serial kernel). Whole
// processes are measured, so this is a harness of its own rather than a microbenchmark
// library. Run it with scripts/bench.sh, which also draws the plots.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <dtask/dtask.hpp>

#include "bench_child.hpp"
#include "raw_zmq.hpp"
#include "report.hpp"
#include "scenarios.hpp"

namespace {

struct Scenario {
    const char* name;
    std::vector<perf::Figure> (*run)(const perf::Settings&);
    const char* what;
};

const Scenario scenarios[] = {
    {"serial_kernel", perf::serial_kernel, "ns per iteration of the busy kernel, on one core"},
    {"efficiency", perf::efficiency,
     "useful work / (wall x 2 workers) by subtask duration, and METG(50%)"},
    {"empty_subtasks", perf::empty_subtasks,
     "subtasks/s of empty subtasks: automatic batching, and batching off next to raw ZeroMQ"},
    {"one_subtask_latency", perf::one_subtask_latency,
     "one-subtask jobs one after another, next to a raw round trip"},
    {"large_payloads", perf::large_payloads, "MiB/s of 1 MiB subtasks, next to raw 1 MiB messages"},
    {"memory", perf::memory, "peak RSS of host and worker for a 10-million-subtask job"},
    {"broker_scaling", perf::broker_scaling,
     "broker CPU per subtask and subtasks/s, batching off, on 1, 10, 100 workers and 10 jobs"},
    {"startup", perf::startup, "Cluster construction until 2 workers joined, and a first job"},
    {"curve_cost", perf::curve_cost,
     "CurveZMQ vs plain TCP, 1 remote worker: empty subtasks, one-subtask latency, 1 MiB"},
    {"shared_data", perf::shared_data,
     "k-means iterations with the points shared once, next to resending them every job"},
    {"checkpoint_cost", perf::checkpoint_cost,
     "1 ms subtasks with a checkpoint (RunOptions::checkpoint), next to none"},
#ifdef DTASK_PERF_DTASKD
    {"kept_batches", perf::kept_batches,
     "a Client through dtaskd keeping its batches for a broker restart, vs keeping none"},
#endif
#if defined(DTASK_PERF_DTASKD) && defined(DTASK_PERF_SWARM)
    {"many_workers", perf::many_workers,
     "dtaskd with 1,000 workers vs 1: idle and per-subtask CPU, join storm, deaths noticed"},
#endif
};

void print_help() {
    std::printf(
        "Usage: dtask_perf [--quick] [--repeat N] [--json FILE] [--only NAME]\n"
        "Measures dtask's throughput, latency, overhead, scaling and memory on this machine,\n"
        "each figure next to a baseline measured in the same run, and prints a table.\n\n"
        "  --quick       tiny sizes: checks every scenario in seconds (figures meaningless)\n"
        "  --repeat N    repetitions; each figure is their median (default 5)\n"
        "  --json FILE   also write every figure, its repetitions and the machine to FILE\n"
        "  --only NAME   run one scenario (may be given more than once)\n"
        "  --help        this text\n\n"
        "Scenarios:\n");
    for (const Scenario& scenario : scenarios)
        std::printf("  %-20s %s\n", scenario.name, scenario.what);
    std::printf(
        "\nExit status: 0, or 1 if a job returned a wrong result or a scenario failed (targets\n"
        "missed are reported, never an error), 2 for a bad command line.\n\n%s",
        dtask::worker_usage());
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "dtask_perf: %s (see --help)\n", message.c_str());
    std::exit(2);
}

/// The modes in which the benchmark starts itself: raw echo servers and the memory probe.
/// -1 if `argv` asks for none of them.
int run_hidden_mode(int argc, char** argv) {
    const std::string_view mode = argc > 1 ? argv[1] : "";
    auto parent = [&] { return static_cast<pid_t>(std::atol(argv[2])); };
    if (mode == "--raw-echo" && argc == 5)
        return perf::raw::serve_echo(
            parent(), argv[3],
            std::string_view(argv[4]) == "size" ? perf::raw::Reply::size : perf::raw::Reply::echo);
    if (mode == "--raw-relay-worker" && argc == 5)
        return perf::raw::serve_relay_worker(parent(), argv[3],
                                             static_cast<unsigned>(std::atol(argv[4])));
    if (mode == "--memory-probe" && argc == 4)
        return perf::measure_memory(parent(), std::strtoull(argv[3], nullptr, 10));
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // started again as a worker: serves here, then exits
    if (const int status = run_hidden_mode(argc, argv); status >= 0)
        return status;

    perf::Settings settings;
    std::string json_path;
    std::vector<std::string> only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&] {
            if (i + 1 >= argc)
                usage_error(arg + " needs a value");
            return std::string(argv[++i]);
        };
        if (arg == "--help" || arg == "-h") {
            print_help();
            return 0;
        } else if (arg == "--quick") {
            settings.quick = true;
        } else if (arg == "--repeat") {
            const std::string text = value();
            settings.repeat = std::atoi(text.c_str());
            if (settings.repeat < 1 || text.find_first_not_of("0123456789") != std::string::npos)
                usage_error("--repeat takes a whole number of at least 1, not '" + text + "'");
        } else if (arg == "--json") {
            json_path = value();
        } else if (arg == "--only") {
            only.push_back(value());
            bool known = false;
            for (const Scenario& scenario : scenarios)
                known = known || only.back() == scenario.name;
            if (!known)
                usage_error("no scenario is named '" + only.back() + "'");
        } else {
            usage_error("unknown argument '" + arg + "'");
        }
    }

    perf::kill_children_on_termination_signals();
    const double load_at_start = perf::load_average();
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (load_at_start > 0.5 * static_cast<double>(cores))
        std::fprintf(stderr,
                     "dtask_perf: the machine is busy (load average %.1f on %ld cores): the "
                     "figures will be noisy\n",
                     load_at_start, cores);
    const auto start = perf::Clock::now();
    std::vector<perf::Figure> figures;
    std::vector<std::string> errors;
    for (const Scenario& scenario : scenarios) {
        if (!only.empty() && std::find(only.begin(), only.end(), scenario.name) == only.end())
            continue;
        std::fprintf(stderr, "dtask_perf: %s ...\n", scenario.name);
        const auto scenario_start = perf::Clock::now();
        try {
            auto measured = scenario.run(settings);
            figures.insert(figures.end(), measured.begin(), measured.end());
            std::fprintf(stderr, "dtask_perf: %s done in %.1f s\n", scenario.name,
                         perf::seconds_since(scenario_start));
        } catch (const perf::WrongResult& e) {
            errors.push_back(std::string(scenario.name) + ": wrong result: " + e.what());
            std::fprintf(stderr, "dtask_perf: %s: WRONG RESULT: %s\n", scenario.name, e.what());
        } catch (const std::exception& e) {
            errors.push_back(std::string(scenario.name) + ": " + e.what());
            std::fprintf(stderr, "dtask_perf: %s FAILED: %s\n", scenario.name, e.what());
        }
    }
    const double elapsed = perf::seconds_since(start);

    std::printf("\n");
    perf::print_table(figures);
    std::printf(
        "\nmedians of %d repetition(s)%s; ratio: median of value/baseline per repetition "
        "(smallest-largest); "
        "%.1f s in all\n",
        settings.repeat, settings.quick ? " at --quick sizes (not figures to quote)" : "", elapsed);
    for (const std::string& error : errors)
        std::printf("ERROR %s\n", error.c_str());

    if (!json_path.empty()) {
        std::string only_text;
        for (const auto& name : only)
            only_text += (only_text.empty() ? "" : ",") + name;
        try {
            perf::write_json(json_path, {settings.quick, settings.repeat, only_text, load_at_start},
                             figures, errors, elapsed);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "dtask_perf: %s\n", e.what());
            return 1;
        }
    }
    return errors.empty() ? 0 : 1;
}
