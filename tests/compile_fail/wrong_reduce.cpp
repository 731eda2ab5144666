// Must not compile: reduce does not fold a partial into the result type.
#include <cstdint>
#include <string>
#include <vector>

#include <dtask/dtask.hpp>

int main() {
    const dtask::Job<std::uint64_t> job{
        "wrong_reduce",
        [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
        [](const std::uint64_t& x) { return std::to_string(x); },
        [](std::uint64_t a, std::uint64_t b) { return a + b; }};
}
