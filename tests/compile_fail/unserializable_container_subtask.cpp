// Must not compile, with one static_assert: the subtask is a std::vector of a type without a
// cereal serialize function (cereal's own rule for vectors would fail deep inside it).
#include <cstdint>
#include <vector>

#include <dtask/dtask.hpp>

struct Opaque {
    int value = 0;
};

int main() {
    const dtask::Job<std::uint64_t> job{
        "unserializable_container",
        [](const std::uint64_t& n, dtask::SplitHint) {
            return std::vector<std::vector<Opaque>>(n);
        },
        [](const std::vector<Opaque>& o) { return static_cast<std::uint64_t>(o.size()); },
        [](std::uint64_t a, std::uint64_t b) { return a + b; }};
}
