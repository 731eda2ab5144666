#pragma once
// The jobs of checkpointed_host, whose host a test kills halfway: each map call appends its
// index to DIR/calls, so that the test counts the subtasks run twice, and the subtasks the
// gate names wait while DIR/hold exists, so that the host is killed at a known point.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <dtask/dtask.hpp>

namespace checkpointed {

struct Work {
    std::uint64_t n = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(n);
    }
};

/// Which subtasks wait while DIR/hold exists: those from `from` on, or `from` alone.
struct Gate {
    std::string dir;
    std::uint64_t from = 0;
    bool only_one = false;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(dir, from, only_one);
    }
};

inline std::uint64_t part_of(std::uint64_t i) {
    return i * i + 1;
}

inline std::uint64_t map_piece(const std::uint64_t& i, const Gate& gate) {
    const std::string line = std::to_string(i) + "\n";
    const int fd = open((gate.dir + "/calls").c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
        (void)!write(fd, line.data(), line.size());  // one write: whole even if killed
        close(fd);
    }
    if (gate.only_one ? i == gate.from : i >= gate.from) {
        // Bounded: a test that failed leaves no worker waiting for long.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (access((gate.dir + "/hold").c_str(), F_OK) == 0 &&
               std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return part_of(i);
}

/// Not commutative: only subtask order gives this result.
inline std::uint64_t chain(std::uint64_t acc, std::uint64_t part) {
    return acc * 1000003 + part;
}

inline std::uint64_t expected_in_order(std::uint64_t n) {
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        acc = chain(acc, part_of(i));
    return acc;
}

inline std::uint64_t expected_sum(std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        sum += part_of(i);
    return sum;
}

/// A sized range, folded in subtask order.
inline const dtask::Job<std::uint64_t> in_order{"checkpointed_in_order",
                                                [](const Work& work, dtask::SplitHint) {
                                                    return dtask::pieces(
                                                        work.n, [](std::uint64_t i) { return i; });
                                                },
                                                map_piece, chain};

/// A generator, folded in arrival order.
inline const dtask::Job<std::uint64_t> any_order{
    "checkpointed_any_order",
    [](const Work& work, dtask::SplitHint) {
        return [i = std::uint64_t{0}, n = work.n]() mutable -> std::optional<std::uint64_t> {
            if (i == n)
                return std::nullopt;
            return i++;
        };
    },
    map_piece, [](std::uint64_t sum, std::uint64_t part) { return sum + part; },
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

/// The split window of both: subtasks split off and not folded.
inline constexpr std::size_t window = 8;

}  // namespace checkpointed
