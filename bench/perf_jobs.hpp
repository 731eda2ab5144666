#pragma once
// The jobs dtask_perf measures. Defined at namespace scope, so that the benchmark binary,
// started again as a worker, finds their map by name. Each result is known in advance, so
// every run checks it.

#include <cstdint>
#include <string>

#include <dtask/dtask.hpp>

#include "kernel.hpp"

namespace perf {

/// `subtasks` subtasks, each spinning the kernel `iterations` times.
struct SpinPlan {
    std::uint64_t subtasks = 0;
    std::uint64_t iterations = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(subtasks, iterations);
    }
};

/// Result: the number of subtasks (each map returns 1).
inline const dtask::Job<std::uint64_t> spin_job{
    "dtask_perf.spin",
    [](const SpinPlan& plan, dtask::SplitHint) {
        return dtask::pieces(plan.subtasks,
                             [iterations = plan.iterations](std::uint64_t) { return iterations; });
    },
    [](const std::uint64_t& iterations) -> std::uint32_t { return spin(iterations) != 0 ? 1 : 0; },
    [](std::uint64_t total, std::uint32_t part) { return total + part; }};

/// Empty subtasks: subtask i is the number i + 1, which map returns as it is, so the cost
/// measured is dtask's alone. Result: 1 + 2 + ... + count.
inline const dtask::Job<std::uint64_t> identity_job{
    "dtask_perf.identity",
    [](const std::uint64_t& count, dtask::SplitHint) {
        return dtask::pieces(count,
                             [](std::uint64_t i) { return static_cast<std::uint32_t>(i + 1); });
    },
    [](const std::uint32_t& number) { return number; },
    [](std::uint64_t total, std::uint32_t part) { return total + part; }};

inline std::uint64_t identity_result(std::uint64_t count) {
    return count * (count + 1) / 2;
}

/// `subtasks` payloads of `bytes` bytes each.
struct PayloadPlan {
    std::uint64_t subtasks = 0;
    std::uint64_t bytes = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(subtasks, bytes);
    }
};

/// Large subtasks whose map returns their size: one-way payload throughput. A std::string
/// is serialized as one block, not byte by byte. Result: subtasks × bytes.
inline const dtask::Job<std::uint64_t> payload_job{
    "dtask_perf.payload",
    [](const PayloadPlan& plan, dtask::SplitHint) {
        return dtask::pieces(plan.subtasks, [bytes = plan.bytes](std::uint64_t i) {
            return std::string(bytes, static_cast<char>('a' + i % 26));
        });
    },
    [](const std::string& payload) -> std::uint64_t { return payload.size(); },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

}  // namespace perf
