// Must not compile: the subtask type has no cereal serialize function.
#include <cstdint>
#include <vector>

#include <dtask/dtask.hpp>

struct Opaque {
    int value = 0;
};

int main() {
    const dtask::Job<std::uint64_t> job{
        "unserializable",
        [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<Opaque>(n); },
        [](const Opaque& o) { return static_cast<std::uint64_t>(o.value); },
        [](std::uint64_t a, std::uint64_t b) { return a + b; }};
}
