// Must not compile: map captures a variable that would not exist on a worker.
#include <cstdint>
#include <vector>

#include <dtask/dtask.hpp>

int main() {
    std::uint64_t factor = 3;
    const dtask::Job<std::uint64_t> job{
        "capturing",
        [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
        [factor](const std::uint64_t& x) { return x * factor; },
        [](std::uint64_t a, std::uint64_t b) { return a + b; }};
}
