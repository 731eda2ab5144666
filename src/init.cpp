// dtask::init: a process started as a worker serves and never returns from it, nor does one
// started to replay a subtask (--dtask-replay); any other process checks and closes the job
// registry. A local worker that reaches a Cluster or a Client instead (main() forgot init)
// ends at once with a status its host recognises.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <dtask/error.hpp>
#include <dtask/init.hpp>

#include "job_registry.hpp"
#include "log.hpp"
#include "parse_number.hpp"
#include "process.hpp"
#include "replay.hpp"
#include "security/join_token.hpp"
#include "worker/worker.hpp"

namespace dtask {
namespace {

/// Whether dtask::init ran in this process: in a worker, map runs after it.
std::atomic<bool> init_called{false};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "dtask worker: %s\n%s", message.c_str(), worker_usage());
    detail::end_worker_process(detail::worker_misused);
}

/// The value of option `flag`, or a usage error.
unsigned long number(std::string_view flag, std::string_view text, unsigned long low,
                     unsigned long high) {
    const auto value = detail::parse_number(text, low, high);
    if (!value)
        usage_error(detail::not_a_number_message(flag, text, low, high));
    return *value;
}

/// The worker options on the command line; nullopt when this is not a worker.
std::optional<detail::WorkerOptions> worker_options(int argc, char** argv) {
    detail::WorkerOptions options;
    bool worker = false;
    std::string token_file;
    const char* insecure_variable = std::getenv("DTASK_INSECURE_TCP");
    bool insecure = insecure_variable != nullptr && *insecure_variable != '\0' &&
                    std::string_view(insecure_variable) != "0";
    if (const char* endpoint = std::getenv("DTASK_WORKER");
        endpoint != nullptr && *endpoint != '\0') {
        options.endpoint = endpoint;
        worker = true;
    }
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value_of = [&](std::string_view flag) -> std::optional<std::string_view> {
            if (arg == flag) {
                if (i + 1 >= argc)
                    usage_error(std::string(flag) + " needs a value");
                return std::string_view(argv[++i]);
            }
            if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=') {
                return arg.substr(flag.size() + 1);
            }
            return std::nullopt;
        };
        if (auto endpoint = value_of("--dtask-worker")) {
            options.endpoint = std::string(*endpoint);
            worker = true;
        } else if (auto credits = value_of("--dtask-credits")) {
            options.credits = static_cast<unsigned>(number("--dtask-credits", *credits, 1, 65536));
        } else if (auto file = value_of("--dtask-token-file")) {
            token_file = std::string(*file);
        } else if (arg == "--dtask-insecure-tcp") {
            insecure = true;
        } else if (auto give_up = value_of("--dtask-give-up")) {
            options.give_up =
                std::chrono::seconds(number("--dtask-give-up", *give_up, 1, 86400 * 365));
        }
    }
    if (!worker)
        return std::nullopt;
    options.argv.assign(argv, argv + argc);
    if (options.endpoint.empty())
        usage_error("--dtask-worker needs the broker's endpoint, e.g. tcp://host:5555");
    if (detail::is_local_worker())
        return options;  // a local worker: its Cluster's private socket needs no token
    try {
        options.token = detail::token_for(
            options.endpoint, detail::token_from_environment(token_file), insecure,
            "dtask: the broker at " + options.endpoint +
                " needs a join token: set DTASK_TOKEN to it, or DTASK_TOKEN_FILE to a file "
                "holding it (the broker's owner has it: Cluster::join_token(), or "
                "'dtaskd tokens'); --dtask-insecure-tcp for a broker without encryption");
    } catch (const std::exception& e) {
        std::string_view what = e.what();
        if (what.starts_with("dtask: "))
            what.remove_prefix(7);
        usage_error(std::string(what));
    }
    return options;
}

}  // namespace

namespace detail {

bool is_local_worker() {
    const char* parent = std::getenv(parent_pid_variable);
    return parent != nullptr && std::to_string(getppid()) == parent;
}

void exit_if_local_worker(const char* what) {
    if (!is_local_worker() || init_called.load())
        return;
    std::fprintf(stderr,
                 "dtask: this process was started as a local worker, but its main() went on to "
                 "create %s instead of serving: call dtask::init(argc, argv) first thing in "
                 "main()\n",
                 what);
    end_worker_process(worker_without_init);
}

void require_init_for_local_workers(int local_workers) {
    if (local_workers == 0 || init_called.load())
        return;
    throw Error(
        "dtask: a Cluster with local workers needs dtask::init(argc, argv) first thing in "
        "main(), and this process has not called it: each local worker is this program "
        "started again, and without init it would run main() instead of serving "
        "(ClusterOptions::local_workers = 0 starts none)");
}

}  // namespace detail

const char* worker_usage() noexcept {
    return "Worker mode (this program serves a dtask broker instead of running normally):\n"
           "  --dtask-worker ENDPOINT   serve the broker at ENDPOINT, e.g. tcp://10.0.0.5:5555\n"
           "                            (or set DTASK_WORKER=ENDPOINT)\n"
           "                            with its join token in DTASK_TOKEN, or in the file\n"
           "                            DTASK_TOKEN_FILE names (never on the command line)\n"
           "  --dtask-token-file PATH   read the join token from PATH\n"
           "  --dtask-insecure-tcp      join a broker that runs with plain TCP, no token\n"
           "                            (or set DTASK_INSECURE_TCP=1)\n"
           "  --dtask-credits N         batches of subtasks to hold at once, at most\n"
           "                            (default 256; the broker sets a credit limit below it)\n"
           "  --dtask-give-up SECONDS   leave after the broker has been unreachable this long\n"
           "                            (default 60)\n"
           "Replay (runs one failed subtask again, in the foreground, and exits):\n"
           "  --dtask-replay FILE       run the map of the subtask in repro bundle FILE\n"
           "                            (RunOptions::replay_dir, DTASK_REPLAY_DIR) and print\n"
           "                            its result or error; exit status 0 if map returned,\n"
           "                            1 if it threw, 2 if FILE cannot be replayed\n";
}

void init(int argc, char** argv) {
    init_called = true;
    detail::log_enabled(LogLevel::error);  // reads DTASK_LOG now: a bad value is told at once
    detail::check_registry();
    detail::close_registry();
    if (auto bundle = detail::replay_argument(argc, argv)) {
        const int status = detail::replay(*bundle);
        std::fflush(stdout);
        std::exit(status);
    }
    auto options = worker_options(argc, argv);
    if (!options)
        return;

    if (std::getenv(detail::parent_pid_variable) != nullptr) {
        // Started by a Cluster on this machine: die with it, even if it is killed outright.
        // The check after prctl closes the race with a parent that died before it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!detail::is_local_worker())
            std::_Exit(detail::worker_done);
        options->local = true;
    }
    detail::end_worker_process(detail::run_worker(*options));
}

}  // namespace dtask
