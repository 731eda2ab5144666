// A worker "from another build": it defines tests.squares with other types than the test
// binary does, as a binary built from older source would. The broker must never feed it
// that job's subtasks.
#include <cstdint>
#include <iostream>
#include <ranges>

#include <dtask/dtask.hpp>

inline const dtask::Job<std::uint64_t> squares_of_another_build{
    "tests.squares",
    [](const std::uint32_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return static_cast<std::uint32_t>(i + 1); });
    },
    [](const std::uint32_t& x) { return std::uint64_t{x} * x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    std::cerr << "other_build_worker: start me with --dtask-worker ENDPOINT\n"
              << dtask::worker_usage();
    return 2;
}
