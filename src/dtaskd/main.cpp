// dtaskd: the standalone broker. No user code: clients (dtask::Client) submit jobs, workers
// (any binary that links the job definitions, started with --dtask-worker) serve them, and
// dtaskd routes subtasks and results between them. This file is its command line.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <dtask/error.hpp>
#include <dtask/version.hpp>

#include "dtaskd/server.hpp"
#include "dtaskd/status_command.hpp"
#include "dtaskd/token_commands.hpp"
#include "http/http_address.hpp"
#include "security/join_token.hpp"
#include "security/key_store.hpp"

namespace {

constexpr const char* version = DTASK_VERSION_STRING;

constexpr int usage_status = 2;

const char* const footer =
    "ENDPOINT: tcp://0.0.0.0:5555 accepts other machines, tcp://127.0.0.1:* takes a free port.\n"
    "Keys: the broker's secret key and one join token per role, in files only their owner\n"
    "can read; dtaskd refuses to start if group or others can reach them. --insecure-tcp\n"
    "runs without them: anyone who reaches an endpoint can join and read the jobs' data.\n\n"
    "It prints 'dtaskd: listening on ENDPOINT' for each endpoint once it listens, then where\n"
    "the join tokens are. Give workers the worker token and clients the client token, in\n"
    "DTASK_TOKEN or in a file named by DTASK_TOKEN_FILE; each side checks the other's key.\n"
    "SIGINT or SIGTERM stop it; the jobs still running then fail on their clients with an\n"
    "error that names the shutdown, and its workers are dismissed (they exit with status 0).\n";

/// The keys directory: --keys, else the default; empty (after a message) if there is none.
std::string keys_directory(const std::string& given) {
    if (!given.empty())
        return given;
    if (auto directory = dtask::detail::default_keys_directory())
        return *directory;
    std::cerr << "dtaskd: HOME is not set, so there is no default keys directory: "
                 "give one with --keys DIR\n";
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "The dtask broker as a server of its own: many clients submit jobs, many\n"
        "workers pull their subtasks. It runs no user code.",
        "dtaskd");
    app.set_version_flag("--version", std::string("dtaskd ") + version);
    app.footer(footer);

    std::vector<std::string> listen;
    unsigned heartbeat_ms = 250;
    unsigned liveness = 5;
    unsigned heartbeats_per_second = dtask::detail::default_heartbeats_per_second;
    std::size_t shared_mib = 4096;
    unsigned max_subtask_seconds = 3600;
    std::size_t max_message_mib = 256;
    std::size_t max_unsent = dtask::detail::default_max_unsent_per_peer;
    std::size_t max_jobs_per_client = 256;
    std::size_t max_job_data_mib = 256;
    std::size_t max_queued_mib = 4096;
    std::string keys;
    bool insecure_tcp = false;
    std::string http;
    bool http_allow_remote = false;
    std::string status_endpoint = dtask::detail::default_http_address;
    std::string status_token_file;
    std::string role_word;
    app.add_option("--listen", listen,
                   "where clients and workers connect (repeatable; default "
                   "tcp://127.0.0.1:5555)")
        ->type_name("ENDPOINT")
        ->allow_extra_args(false);
    app.add_option("--heartbeat", heartbeat_ms, "heartbeat interval in milliseconds")
        ->type_name("MS")
        ->check(CLI::Range(10, 60'000))
        ->capture_default_str();
    app.add_option("--liveness", liveness, "missed heartbeats before a peer counts as gone")
        ->type_name("N")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--heartbeats-per-second", heartbeats_per_second,
                   "heartbeats sent each second at most: with more peers, the interval "
                   "doubles (up to 32 times); 0: no bound")
        ->type_name("N")
        ->capture_default_str();
    app.add_option("--shared-mib-per-client", shared_mib,
                   "MiB of shared data (share()) kept for one client at most; 0: no bound")
        ->type_name("MIB")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--max-subtask-seconds", max_subtask_seconds,
                   "the subtask timeout of a job that sets none (RunOptions::subtask_timeout):\n"
                   "a map running longer restarts its worker and counts as a failed attempt;\n"
                   "0: none")
        ->type_name("S")
        ->check(CLI::Range(0u, 366u * 24 * 3600))
        ->capture_default_str();
    app.add_option("--max-jobs-per-client", max_jobs_per_client,
                   "jobs one client may have at once; a job past it fails at once; 0: none")
        ->type_name("N")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--max-job-data-mib", max_job_data_mib,
                   "MiB of a job's own job-wide data at most (share() objects count against\n"
                   "--shared-mib-per-client instead); a job past it fails at once; 0: none")
        ->type_name("MIB")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--max-queued-mib-per-client", max_queued_mib,
                   "MiB of one client's subtasks waiting for workers at most; the job whose\n"
                   "batch would pass it fails (a job within its window holds 32 MiB at most);\n"
                   "0: none")
        ->type_name("MIB")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--max-message-mib", max_message_mib,
                   "MiB of the largest message frame a peer may send (a larger one is refused "
                   "unread); 0: no bound")
        ->type_name("MIB")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--max-unsent-per-peer", max_unsent,
                   "messages to one peer that may wait unread; a peer that leaves more is "
                   "dropped; 0: no bound")
        ->type_name("N")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    const char* keys_help = "the keys directory (default $HOME/.config/dtaskd)";
    app.add_option("--keys", keys, keys_help)->type_name("DIR");
    app.add_flag("--insecure-tcp", insecure_tcp,
                 "plain TCP: no encryption, no authentication, no tokens");
    app.add_option("--http", http,
                   "serve the dashboard, /api/status and /metrics on PORT or HOST:PORT\n"
                   "(HOST 127.0.0.1 if not given; e.g. 8787); off if not given")
        ->type_name("ADDRESS");
    app.add_flag("--http-allow-remote", http_allow_remote,
                 "let --http listen beyond loopback; every request then needs the\n"
                 "monitoring token (KEYS/monitor.token), sent in clear over plain HTTP");

    auto* status = app.add_subcommand(
        "status", "print a running dtaskd's workers, jobs and recent events (from its --http)");
    status
        ->add_option("endpoint", status_endpoint, "the dtaskd's --http address, PORT or HOST:PORT")
        ->capture_default_str();
    status
        ->add_option("--token-file", status_token_file,
                     "a file holding the monitoring token (or set DTASK_MONITOR_TOKEN),\n"
                     "for a dtaskd whose HTTP endpoint is beyond loopback")
        ->type_name("FILE");
    status->footer("Exits with 1 and says why when the broker cannot be read.");

    auto* tokens = app.add_subcommand("tokens", "print the worker and the client join token");
    tokens->add_option("--keys", keys, keys_help)->type_name("DIR");
    auto* rotate = app.add_subcommand(
        "rotate",
        "replace a role's credential, print its new token; the dtaskd running on\n"
        "the keys takes it at once and drops the old one's holders");
    rotate->add_option("role", role_word, "worker or client")
        ->required()
        ->check(CLI::IsMember({"worker", "client"}));
    rotate->add_option("--keys", keys, keys_help)->type_name("DIR");
    app.require_subcommand(0, 1);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        std::cerr << "dtaskd: " << e.what() << " (see --help)\n";
        return usage_status;
    }
    const bool command = tokens->parsed() || rotate->parsed() || status->parsed();
    for (const char* server_option :
         {"--listen", "--heartbeat", "--liveness", "--heartbeats-per-second", "--insecure-tcp",
          "--shared-mib-per-client", "--max-subtask-seconds", "--max-message-mib",
          "--max-jobs-per-client", "--max-job-data-mib", "--max-queued-mib-per-client",
          "--max-unsent-per-peer", "--http", "--http-allow-remote"}) {
        if (command && app.count(server_option) > 0) {
            std::cerr << "dtaskd: " << server_option << " is for running dtaskd, not for '"
                      << (tokens->parsed()   ? "tokens"
                          : rotate->parsed() ? "rotate"
                                             : "status")
                      << "' (see --help)\n";
            return usage_status;
        }
    }
    if (http_allow_remote && http.empty()) {
        std::cerr << "dtaskd: --http-allow-remote without --http (see --help)\n";
        return usage_status;
    }
    if (status->parsed()) {
        try {
            std::string token;
            if (!status_token_file.empty()) {
                token = dtask::detail::token_from_environment(status_token_file);
            } else if (const char* given = std::getenv("DTASK_MONITOR_TOKEN")) {
                token = given;
            }
            return dtask::dtaskd::print_status(status_endpoint, token);
        } catch (const dtask::Error& e) {
            std::cerr << "dtaskd status: " << e.what() << "\n";
            return usage_status;
        }
    }

    try {
        if (command || !insecure_tcp || http_allow_remote) {
            keys = keys_directory(keys);
            if (keys.empty())
                return usage_status;
        }
        if (tokens->parsed()) {
            dtask::dtaskd::print_tokens(keys);
            return 0;
        }
        if (rotate->parsed()) {
            dtask::dtaskd::rotate_credential(keys, role_word == "worker"
                                                       ? dtask::detail::TokenRole::worker
                                                       : dtask::detail::TokenRole::client);
            return 0;
        }
        dtask::dtaskd::ServerOptions options;
        options.broker.endpoints =
            listen.empty() ? std::vector<std::string>{"tcp://127.0.0.1:5555"} : listen;
        options.broker.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
        options.broker.heartbeat_liveness = liveness;
        options.broker.heartbeats_per_second = heartbeats_per_second;
        options.broker.shared_bytes_per_client = shared_mib << 20;
        options.broker.max_subtask_time = std::chrono::seconds(max_subtask_seconds);
        options.broker.max_message_bytes = max_message_mib << 20;
        options.broker.max_unsent_per_peer = max_unsent;
        options.broker.client_limits = {max_jobs_per_client, max_job_data_mib << 20,
                                        max_queued_mib << 20};
        options.keys_directory = keys;
        options.insecure_tcp = insecure_tcp;
        options.http = http;
        options.http_allow_remote = http_allow_remote;
        return dtask::dtaskd::run_server(std::move(options));
    } catch (const dtask::Error& e) {
        std::string_view what = e.what();
        for (const std::string_view prefix : {"dtaskd: ", "dtask: "}) {
            if (what.starts_with(prefix))
                what.remove_prefix(prefix.size());
        }
        std::cerr << "dtaskd: " << what << "\n";
        return 1;
    }
}
