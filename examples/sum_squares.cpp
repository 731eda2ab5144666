// The sum of the squares of 1..N, split into ranges that worker processes add up.
//
//   sum_squares                       N = 1,000,000 in 10 subtasks on one local worker per core
//   sum_squares --n 1000000000        exact: 128-bit arithmetic
//   sum_squares --listen tcp://0.0.0.0:5555 --workers 0    wait for remote workers
//   DTASK_TOKEN=... sum_squares --dtask-worker tcp://host:5555   be a remote worker
//   DTASK_TOKEN=... sum_squares --connect tcp://host:5555        submit to a running broker
//   sum_squares --checkpoint sum.db   killed halfway, the same command resumes

#include <chrono>
#include <cstdint>
#include <iostream>
#include <ranges>
#include <sstream>
#include <string>
#include <vector>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
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

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a worker process serves here and exits

    Problem problem{1'000'000, 10};
    dtask::ClusterOptions cluster_options;
    WhereToRun where;  // --connect; --workers is cluster_options', which may be 0 here
    dtask::RunOptions run_options;
    CommandLine args("sum_squares", argc, argv);
    while (args.next()) {
        if (args.is("--n")) {
            problem.n = args.number();
        } else if (args.is("--subtasks")) {
            problem.pieces = args.number(1);
        } else if (args.is("--workers")) {
            cluster_options.local_workers = static_cast<int>(args.number(0, 1024));
        } else if (args.is("--listen")) {
            cluster_options.listen.emplace_back(args.value());
        } else if (args.is("--insecure-tcp")) {
            cluster_options.insecure_tcp = true;
        } else if (args.is("--wait")) {
            run_options.worker_wait = std::chrono::seconds(args.number(0, 315'360'000));
        } else if (args.is("--checkpoint")) {
            run_options.checkpoint = args.value();
        } else if (!args.common(where, print_help)) {  // --help, --version, --connect
            args.unknown();
        }
    }
    const auto& connect = where.connect;

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
        // The result first, then the timing in one write: where stdout and stderr go to one
        // file (a batch job's output), neither cuts into the other's line.
        std::cout << "sum of squares of 1.." << problem.n << " = " << to_string(total) << std::endl;
        std::ostringstream timing;
        timing << "sum_squares: " << problem.pieces << " subtasks in " << elapsed
               << " s, start-up and shutdown included\n";
        std::cerr << timing.str();
    } catch (const dtask::Error& e) {
        std::cerr << "sum_squares: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
