// Uses dtask through its installed package only: find_package(dtask) and dtask::dtask.
#include <cstdint>
#include <iostream>
#include <vector>

#include <dtask/dtask.hpp>

// The map must be captureless; argument, part and result types must be cereal-serializable.
inline const dtask::Job<std::uint64_t> sum_to{
    "consumer.sum_to",
    [](const std::uint64_t& n, dtask::SplitHint) {
        std::vector<std::uint64_t> parts;
        for (std::uint64_t i = 1; i <= n; ++i)
            parts.push_back(i);
        return parts;
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t acc, std::uint64_t part) { return acc + part; }};

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // in a worker process: serves, then exits
    dtask::ClusterOptions options;
    options.local_workers = 2;
    options.http = "127.0.0.1:0";  // dtask::http, from find_package(dtask COMPONENTS http)
    dtask::Cluster cluster{options};
    if (cluster.http_url().empty()) {
        std::cout << "consumer: no HTTP endpoint\n";
        return 1;
    }
    auto total = cluster.run(sum_to, std::uint64_t{100});
    std::cout << "consumer result " << total << "\n";
    return total == 5050 ? 0 : 1;
}
