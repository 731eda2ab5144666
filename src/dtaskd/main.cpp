// dtaskd: the standalone broker. No user code: clients (dtask::Client) submit jobs, workers
// (any binary that links the job definitions, started with --dtask-worker) serve them, and
// dtaskd routes subtasks and results between them.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <signal.h>

#include <dtask/error.hpp>
#include <dtask/version.hpp>

#include "broker/broker.hpp"
#include "parse_number.hpp"

namespace {

void print_help() {
    std::cout
        << "Usage: dtaskd [options]\n"
           "The dtask broker as a server of its own: many clients submit jobs, many workers\n"
           "pull their subtasks. It runs no user code.\n\n"
           "Options:\n"
           "  --listen ENDPOINT    where clients and workers connect (repeatable);\n"
           "                       default tcp://127.0.0.1:5555. Use tcp://0.0.0.0:5555 to\n"
           "                       accept other machines, tcp://127.0.0.1:* for a free port.\n"
           "  --heartbeat MS       heartbeat interval in milliseconds (default 250)\n"
           "  --liveness N         missed heartbeats before a peer counts as gone (default 5)\n"
           "  --help               this text\n\n"
           "It prints 'dtaskd: listening on ENDPOINT' for each endpoint once it listens.\n"
           "SIGINT or SIGTERM stop it; the jobs still running then fail on their clients\n"
           "with an error that names the shutdown.\n";
}

/// The value of option `flag`, or exit with status 2 saying why not.
unsigned long number(std::string_view flag, std::string_view text, unsigned long low,
                     unsigned long high) {
    const auto value = dtask::detail::parse_number(text, low, high);
    if (!value) {
        std::cerr << "dtaskd: " << dtask::detail::not_a_number_message(flag, text, low, high)
                  << "\n";
        std::exit(2);
    }
    return *value;
}

}  // namespace

int main(int argc, char** argv) {
    dtask::detail::BrokerOptions options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                std::cerr << "dtaskd: " << arg << " needs a value (see --help)\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            print_help();
            return 0;
        } else if (arg == "--listen") {
            options.endpoints.emplace_back(value());
        } else if (arg == "--heartbeat") {
            options.heartbeat_interval =
                std::chrono::milliseconds(number(arg, value(), 10, 60'000));
        } else if (arg == "--liveness") {
            options.heartbeat_liveness = static_cast<unsigned>(number(arg, value(), 1, 1000));
        } else {
            std::cerr << "dtaskd: unknown option '" << arg << "' (see --help)\n";
            return 2;
        }
    }
    if (options.endpoints.empty())
        options.endpoints.emplace_back("tcp://127.0.0.1:5555");

    // Stop signals are taken by sigwait below, never by a handler in some other thread.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    try {
        zmq::context_t context(1);
        dtask::detail::Broker broker(context, options);
        broker.start();
        for (const auto& endpoint : broker.endpoints())
            std::cout << "dtaskd: listening on " << endpoint << "\n";
        std::cout.flush();
        int received = 0;
        sigwait(&stop_signals, &received);
        std::cerr << "dtaskd: " << (received == SIGINT ? "SIGINT" : "SIGTERM")
                  << ": shutting down; jobs still running fail on their clients\n";
        broker.stop();
    } catch (const dtask::Error& e) {
        std::cerr << "dtaskd: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
