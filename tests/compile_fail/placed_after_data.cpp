// Must not compile: the placed data (a dtask::Shared) after the job's own job-wide data.
#include <cstdint>
#include <vector>

#include <dtask/dtask.hpp>

inline const dtask::Job<std::uint64_t> scaled{
    "placed_after_data",
    [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
    [](const std::uint64_t& x, const std::vector<std::uint64_t>& placed,
       const std::uint64_t& factor) { return x * factor + placed.size(); },
    [](std::uint64_t a, std::uint64_t b) { return a + b; }};

std::uint64_t run(dtask::Cluster& cluster) {
    const auto placed = cluster.share(std::vector<std::uint64_t>{1, 2, 3});
    return cluster.run(scaled, std::uint64_t{10}, std::uint64_t{2}, placed);
}

int main() {}
