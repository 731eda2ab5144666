#pragma once
// Reduce order (JobOptions::order): each subtask's result is folded once, however many copies
// of it come back. In subtask order, results fold in index order: a run that reaches the next
// index folds at once, then the runs parked behind it; a run ahead of its turn is parked
// whole, and a second copy of a parked run replaces it only if it is longer (the first came
// back cut short). In arrival order, each new result folds at once. FoldOrder decides what
// folds when; the fold itself (reduce) is the caller's.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>

#include <zmq.hpp>

#include <dtask/options.hpp>

#include "client/index_set.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

/// Results that came back ahead of their turn (subtask order): one run of a batch.
struct ParkedRun {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    zmq::message_t frame;  // the whole result message
};

class FoldOrder {
public:
    explicit FoldOrder(ReduceOrder order) noexcept
        : in_subtask_order_(order == ReduceOrder::subtask_order) {}

    bool in_subtask_order() const noexcept { return in_subtask_order_; }
    /// Subtask order: the index folded next.
    std::uint64_t next_to_fold() const noexcept { return next_to_fold_; }
    /// Subtask order: runs parked ahead of their turn.
    std::size_t parked() const noexcept { return parked_.size(); }

    /// Subtask order: marks the run [first, first + count) as come back; returns how many of
    /// its results are new (0: another copy came back first).
    std::uint64_t arrive(std::uint64_t first, std::uint64_t count) {
        std::uint64_t fresh = 0;
        for (std::uint64_t i = first; i < first + count; ++i)
            fresh += arrived_.insert(i) ? 1 : 0;
        return fresh;
    }

    /// Arrival order: folds, with fold(partial, index), each result of the run (its batch
    /// `results`) that had not come back before; returns how many it folded.
    template <class Fold>
    std::uint64_t fold_arrived(std::uint64_t first, std::uint64_t count,
                               std::span<const std::byte> results, Fold&& fold) {
        BatchReader reader(results);
        std::span<const std::byte> partial;
        std::uint64_t fresh = 0;
        for (std::uint64_t index = first;
             index < first + count && reader.next(partial, "result batch"); ++index) {
            if (!arrived_.insert(index))
                continue;
            fold(partial, index);
            ++fresh;
        }
        return fresh;
    }

    /// Subtask order, after arrive(): folds the run now if its turn has come, then the runs
    /// parked behind it; else parks its frame. `results` is the frame's batch, which parse()
    /// found: a parked frame moves, and its batch is found again when its turn comes.
    template <class Fold>
    void fold_in_order(std::uint64_t first, std::uint64_t count, std::span<const std::byte> results,
                       zmq::message_t& frame, Fold&& fold) {
        if (first <= next_to_fold_) {
            fold_run(first, count, results, fold);
            fold_parked(fold);
            return;
        }
        // Runs mostly come back in index order: a sorted deque, searched from its end, takes
        // them with no allocation per run, where a map allocated a node.
        auto at = parked_.end();
        if (!parked_.empty() && parked_.back().first >= first) {
            at = std::lower_bound(
                parked_.begin(), parked_.end(), first,
                [](const ParkedRun& run, std::uint64_t index) { return run.first < index; });
        }
        if (at == parked_.end() || at->first != first) {
            parked_.insert(at, ParkedRun{first, count, std::move(frame)});
        } else if (at->count < count) {
            // A second copy is kept only if the first came back cut shorter (a retried
            // subtask in it).
            at->count = count;
            at->frame = std::move(frame);
        }
    }

private:
    /// Folds the run's results from next_to_fold_ on.
    template <class Fold>
    void fold_run(std::uint64_t first, std::uint64_t count, std::span<const std::byte> results,
                  Fold& fold) {
        BatchReader reader(results);
        std::span<const std::byte> partial;
        for (std::uint64_t index = first;
             index < first + count && reader.next(partial, "result batch"); ++index) {
            if (index == next_to_fold_) {
                fold(partial, index);
                ++next_to_fold_;
            }
        }
    }

    template <class Fold>
    void fold_parked(Fold& fold) {
        while (!parked_.empty() && parked_.front().first <= next_to_fold_) {
            const ParkedRun run = std::move(parked_.front());
            parked_.pop_front();
            fold_run(run.first, run.count, protocol::read_batch_frame(run.frame).batch, fold);
        }
    }

    SlidingIndexSet arrived_;         // indices whose result came back
    std::deque<ParkedRun> parked_;    // by first index, ahead of their turn
    std::uint64_t next_to_fold_ = 0;  // in subtask order
    bool in_subtask_order_;
};

}  // namespace dtask::detail
