// The sum of the squares of 1..N, split into ranges that worker processes add up.
//
//   sum_squares                       N = 1,000,000 in 10 subtasks on one local worker per core
//   sum_squares --n 1000000000        exact: 128-bit arithmetic
//   sum_squares --listen tcp://0.0.0.0:5555 --workers 0    wait for remote workers
//   DTASK_TOKEN=... sum_squares --dtask-worker tcp://host:5555   be a remote worker
//   DTASK_TOKEN=... sum_squares --connect tcp://host:5555        submit to a running broker
//   sum_squares --checkpoint sum.db   killed halfway, the same command resumes

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

#include <dtask/dtask.hpp>

#include "example_version.hpp"
#include "progress_bar.hpp"
#include "sum_squares_job.hpp"

namespace {

using namespace sum_squares_example;

void print_help() {
    std::cout << "Usage: sum_squares [options]\n"
                 "Adds up the squares of 1..N on worker processes, exactly (128-bit).\n\n"
                 "Options:\n"
                 "  --n N              the last number (default 1000000)\n"
                 "  --subtasks K       pieces to split into (default 10)\n"
                 "  --workers W        local worker processes (default: one per core; 0: none)\n"
                 "  --listen ENDPOINT  also accept workers at ENDPOINT, e.g. tcp://0.0.0.0:5555\n"
                 "                     (repeatable; with --workers 0 the job waits for them)\n"
                 "  --connect ENDPOINT submit to the broker at ENDPOINT (dtaskd, or another\n"
                 "                     sum_squares with --listen) instead of starting one\n"
                 "  --wait SECONDS     how long the job waits for a worker (default 60)\n"
                 "  --checkpoint FILE  keep the job's progress in FILE: run again after a crash\n"
                 "                     to resume (removed when the job succeeds)\n"
                 "  --insecure-tcp     plain TCP for --listen and --connect: no encryption, no\n"
                 "                     join token, anyone who reaches the port joins\n\n"
                 "With --listen it prints the command that starts a worker elsewhere, with\n"
                 "the join token in DTASK_TOKEN. --connect takes the client token from\n"
                 "DTASK_TOKEN or the file DTASK_TOKEN_FILE names.\n"
                 "  --help             this text\n"
                 "  --version          the dtask release\n\n"
              << dtask::worker_usage();
}

std::uint64_t number(std::string_view flag, std::string_view text) {
    std::uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        std::cerr << "sum_squares: " << flag << " takes a whole number, not '" << text << "'\n";
        std::exit(2);
    }
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a worker process serves here and exits

    Problem problem{1'000'000, 10};
    dtask::ClusterOptions cluster_options;
    std::optional<std::string> connect;
    dtask::RunOptions run_options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                std::cerr << "sum_squares: " << arg << " needs a value (see --help)\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            print_help();
            return 0;
        } else if (arg == "--version") {
            print_version("sum_squares");
            return 0;
        } else if (arg == "--n") {
            problem.n = number(arg, value());
        } else if (arg == "--subtasks") {
            problem.pieces = number(arg, value());
            if (problem.pieces == 0) {
                std::cerr << "sum_squares: --subtasks must be at least 1\n";
                return 2;
            }
        } else if (arg == "--workers") {
            cluster_options.local_workers = static_cast<int>(number(arg, value()));
        } else if (arg == "--listen") {
            cluster_options.listen.emplace_back(value());
        } else if (arg == "--connect") {
            connect = std::string(value());
        } else if (arg == "--insecure-tcp") {
            cluster_options.insecure_tcp = true;
        } else if (arg == "--wait") {
            run_options.worker_wait = std::chrono::seconds(number(arg, value()));
        } else if (arg == "--checkpoint") {
            run_options.checkpoint = value();
        } else {
            std::cerr << "sum_squares: unknown option '" << arg << "' (see --help)\n";
            return 2;
        }
    }

    try {
        const auto start = std::chrono::steady_clock::now();
        u128 total = 0;
        ProgressBar bar("sum_squares");  // on a terminal only
        if (connect) {
            dtask::ClientOptions client_options;
            client_options.insecure_tcp = cluster_options.insecure_tcp;
            dtask::Client client(*connect, client_options);
            total = client.run(sum_squares, problem, bar.attach(run_options));
        } else {
            dtask::Cluster cluster(cluster_options);
            // The first endpoint is the private one of the local workers.
            const auto& endpoints = cluster.endpoints();
            for (std::size_t i = 1; i < endpoints.size(); ++i) {
                const std::string& endpoint = endpoints[i];
                std::cerr << "sum_squares: a worker on another machine joins with\n  ";
                if (!cluster.join_token().empty())
                    std::cerr << "DTASK_TOKEN=" << cluster.join_token() << " ";
                else
                    std::cerr << "DTASK_INSECURE_TCP=1 ";
                std::cerr << argv[0] << " --dtask-worker " << endpoint << "\n";
                if (endpoint.starts_with("tcp://0.0.0.0:"))
                    std::cerr << "  (with this machine's address for 0.0.0.0)\n";
            }
            total = cluster.run(sum_squares, problem, bar.attach(run_options));
        }
        bar.finish();
        const auto elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << "sum of squares of 1.." << problem.n << " = " << to_string(total) << "\n";
        std::cerr << "sum_squares: " << problem.pieces << " subtasks in " << elapsed
                  << " s, start-up and shutdown included\n";
    } catch (const dtask::Error& e) {
        std::cerr << "sum_squares: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
