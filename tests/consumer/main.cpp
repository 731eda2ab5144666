// A program outside the dtask tree that uses an installed dtask through its public headers
// alone: built with find_package(dtask) (tests/consumer), with pkg-config, and inside an
// application that adds dtask as a subproject (tests/packaging/subproject).
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <vector>

#include <dtask/dtask.hpp>

// The map must be captureless; argument, part and result types must be cereal-serializable.
// A subtask 0 fails on the worker, to see the TaskError it becomes reach this program.
inline const dtask::Job<std::uint64_t> sum_to{
    "consumer.sum_to",
    [](const std::uint64_t& n, dtask::SplitHint) {
        std::vector<std::uint64_t> parts;
        for (std::uint64_t i = 1; i <= n; ++i)
            parts.push_back(i);
        if (n == 0)
            parts.push_back(0);
        return parts;
    },
    [](const std::uint64_t& x) {
        if (x == 0)
            throw std::invalid_argument("no zero here");
        return x;
    },
    [](std::uint64_t acc, std::uint64_t part) { return acc + part; }};

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // in a worker process: serves, then exits
    std::cout << "consumer of dtask " << DTASK_VERSION_STRING << "\n";

    // Thrown inside libdtask, caught here by its type: the error classes' type_info is one.
    try {
        dtask::Client client{"not-an-endpoint"};
        std::cout << "consumer: a bad endpoint was accepted\n";
        return 1;
    } catch (const dtask::TransportError& e) {
        std::cout << "consumer caught TransportError: " << e.what() << "\n";
    }

    dtask::ClusterOptions options;
    options.local_workers = 2;
#ifdef DTASK_CONSUMER_HTTP
    options.http = "127.0.0.1:0";  // dtask::http, from find_package(dtask COMPONENTS http)
#endif
    dtask::Cluster cluster{options};
#ifdef DTASK_CONSUMER_HTTP
    if (cluster.http_url().empty()) {
        std::cout << "consumer: no HTTP endpoint\n";
        return 1;
    }
#endif
    try {
        cluster.run(sum_to, std::uint64_t{0});
        std::cout << "consumer: a failing map did not fail its job\n";
        return 1;
    } catch (const dtask::TaskError& e) {
        std::cout << "consumer caught TaskError from subtask " << e.subtask() << ": "
                  << e.exception_message() << "\n";
    }
    auto total = cluster.run(sum_to, std::uint64_t{100});
    std::cout << "consumer result " << total << "\n";
    return total == 5050 ? 0 : 1;
}
