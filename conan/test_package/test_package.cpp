// The smallest real use of the package: a job run on two local workers.
#include <cstdint>
#include <iostream>
#include <vector>

#include <dtask/dtask.hpp>

inline const dtask::Job<std::uint64_t> sum_to{
    "test_package.sum_to",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i + 1; });
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // in a worker process: serves, then exits
    dtask::ClusterOptions options;
    options.local_workers = 2;
    dtask::Cluster cluster{options};
    const std::uint64_t total = cluster.run(sum_to, std::uint64_t{100});
    std::cout << "dtask " << DTASK_VERSION_STRING << ": sum of 1..100 = " << total << "\n";
    return total == 5050 ? 0 : 1;
}
