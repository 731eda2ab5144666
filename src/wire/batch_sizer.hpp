#pragma once
// How many subtasks the client packs into the next batch of a job. A message costs the
// same whatever it carries, so a batch should run long enough on a worker to dwarf that
// cost (about 200 times the measured cost of a message, 2 to 20 ms), and at
// the tail of a job batches shrink so that no worker is left with a long batch while the
// others idle.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace dtask::detail {

class BatchSizer {
public:
    /// The most subtasks in one batch: bounds what a lost worker takes with it and how many
    /// times a poison pill in a batch kills a worker before it is found (by halving).
    static constexpr std::size_t max_batch = 4096;
    /// A batch is closed once its payloads reach this size, whatever its count.
    static constexpr std::size_t max_batch_bytes = 1 << 20;

    /// `fixed`: RunOptions::batch_size, 0 for automatic.
    explicit BatchSizer(std::size_t fixed) : fixed_(fixed) {}

    /// Subtasks for the next batch. `remaining`: subtasks not yet sent, when the total is
    /// known; `workers`: how many serve the job.
    std::size_t next(std::optional<std::uint64_t> remaining, std::size_t workers) {
        std::size_t size = std::min(fixed_, max_batch);
        if (size == 0) {
            if (!measured()) {
                size = 1;  // a subtask might take seconds: no batches until one came back
            } else {
                const double target = static_cast<double>(batch_time().count());
                size = static_cast<std::size_t>(std::clamp(target / std::max(ns_per_subtask_, 1.0),
                                                           1.0, static_cast<double>(max_batch)));
            }
        }
        return tail_cut(size, remaining, workers);
    }

    /// The tail: at most a quarter of what is left per worker, so that the last batches
    /// spread over all of them; at least 1.
    static std::size_t tail_cut(std::size_t size, std::optional<std::uint64_t> remaining,
                                std::size_t workers) noexcept {
        if (remaining) {
            const std::uint64_t share = *remaining / (4 * std::max<std::size_t>(workers, 1));
            size = static_cast<std::size_t>(
                std::min<std::uint64_t>(size, std::max<std::uint64_t>(share, 1)));
        }
        return std::max<std::size_t>(size, 1);
    }

    /// A run of `count` results came back; map took `map_time` for them. `round_trip`, when
    /// the run completes a batch: from sending the batch to this result.
    void observe(std::uint64_t count, std::chrono::nanoseconds map_time,
                 std::optional<std::chrono::nanoseconds> round_trip) {
        if (count == 0)
            return;
        const double sample = static_cast<double>(map_time.count()) / static_cast<double>(count);
        ns_per_subtask_ = ns_per_subtask_ < 0 ? sample : 0.75 * ns_per_subtask_ + 0.25 * sample;
        if (round_trip) {
            // The least time a batch spent outside map: the cost of its messages, without
            // the time it queued behind others.
            const auto outside = std::max(*round_trip - map_time, std::chrono::nanoseconds(0));
            message_cost_ = std::min(message_cost_, outside);
        }
    }

    /// Whether map's cost has been measured. Until then batches hold one subtask.
    bool measured() const noexcept { return fixed_ != 0 || ns_per_subtask_ >= 0; }

    /// How long a batch should run: 200 message costs, within [2 ms, 20 ms]. A message
    /// costs the workers more than its latency: each one wakes several threads on the
    /// broker's and the worker's machine, and on a small machine those run on the workers'
    /// cores (docs/performance.md).
    std::chrono::nanoseconds batch_time() const {
        const auto cost = message_cost_ == unknown ? std::chrono::microseconds(50) : message_cost_;
        return std::clamp<std::chrono::nanoseconds>(200 * cost, std::chrono::milliseconds(2),
                                                    std::chrono::milliseconds(20));
    }

private:
    static constexpr std::chrono::nanoseconds unknown = std::chrono::nanoseconds::max();

    std::size_t fixed_;
    double ns_per_subtask_ = -1;  // map's cost, smoothed; < 0 until measured
    std::chrono::nanoseconds message_cost_ = unknown;
};

}  // namespace dtask::detail
