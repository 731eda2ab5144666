#pragma once
// Reduce order (JobOptions::order): each subtask's result is folded once, however many copies
// of it come back. In subtask order, results fold in index order: a run that reaches the next
// index folds at once, then the runs parked behind it; a run ahead of its turn is parked
// whole, and a second copy of a parked run replaces it only if it is longer (the first came
// back cut short). In arrival order, each new result folds at once. FoldOrder decides what
// folds when and hands the frames out; the fold itself (reduce) is the caller's, elsewhere.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include <zmq.hpp>

#include <dtask/error.hpp>
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

/// Results to fold now, handed to whoever runs reduce: the results [from, to) of a result
/// frame whose batch begins with the result of subtask `first`.
struct FoldRun {
    zmq::message_t frame;  // the result message, or a copy sharing its bytes
    std::uint64_t first = 0;
    std::uint64_t from = 0;
    std::uint64_t to = 0;
    std::size_t bytes = 0;  // the frame's size, counted by one run of the frame only
};

class FoldOrder {
public:
    explicit FoldOrder(ReduceOrder order) noexcept
        : in_subtask_order_(order == ReduceOrder::subtask_order) {}

    bool in_subtask_order() const noexcept { return in_subtask_order_; }
    /// Subtask order: the index handed out to fold next.
    std::uint64_t next_to_fold() const noexcept { return next_to_fold_; }
    /// Subtask order: runs parked ahead of their turn, and their frames' bytes.
    std::size_t parked() const noexcept { return parked_.size(); }
    std::size_t parked_bytes() const noexcept { return parked_bytes_; }

    /// Subtask order: marks the run [first, first + count) as come back; returns how many of
    /// its results are new (0: another copy came back first).
    std::uint64_t arrive(std::uint64_t first, std::uint64_t count) {
        std::uint64_t fresh = 0;
        for (std::uint64_t i = first; i < first + count; ++i)
            fresh += arrived_.insert(i) ? 1 : 0;
        return fresh;
    }

    /// Arrival order: hands out in `out` the results of the run [first, first + count), in
    /// `frame`, that had not come back before; returns how many.
    std::uint64_t take_arrived(std::uint64_t first, std::uint64_t count, zmq::message_t& frame,
                               std::vector<FoldRun>& out) {
        std::uint64_t fresh = 0;
        bool frame_given = false;
        for (std::uint64_t index = first; index < first + count;) {
            if (!arrived_.insert(index)) {
                ++index;
                continue;
            }
            std::uint64_t end = index + 1;
            while (end < first + count && arrived_.insert(end))
                ++end;
            // Each stretch of new results is a run; a second one shares the frame's bytes.
            FoldRun run{{}, first, index, end, frame_given ? 0 : frame.size()};
            if (frame_given)
                run.frame.copy(out.back().frame);
            else
                run.frame = std::move(frame);
            frame_given = true;
            out.push_back(std::move(run));
            fresh += end - index;
            index = end;
        }
        return fresh;
    }

    /// Subtask order, after arrive(): hands out in `out` the run if its turn has come, then
    /// the runs parked behind it; else parks its frame.
    void take_in_order(std::uint64_t first, std::uint64_t count, zmq::message_t& frame,
                       std::vector<FoldRun>& out) {
        if (first <= next_to_fold_) {
            take_run(first, count, frame, out);
            take_parked(out);
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
            parked_bytes_ += frame.size();
            parked_.insert(at, ParkedRun{first, count, std::move(frame)});
        } else if (at->count < count) {
            // A second copy is kept only if the first came back cut shorter (a retried
            // subtask in it).
            parked_bytes_ += frame.size() - at->frame.size();
            at->count = count;
            at->frame = std::move(frame);
        }
    }

    /// Folds the run's results, with fold(partial, index), where reduce runs. Throws
    /// ProtocolError if its frame holds fewer results than its header said.
    template <class Fold>
    static void fold(const FoldRun& run, Fold&& fold) {
        BatchReader reader(protocol::read_batch_frame(run.frame).batch);
        std::span<const std::byte> partial;
        for (std::uint64_t index = run.first; index < run.to; ++index) {
            if (!reader.next(partial, "result batch"))
                throw ProtocolError("a result batch holds fewer results than its header says");
            if (index >= run.from)
                fold(partial, index);
        }
    }

private:
    /// Hands out the run's results from next_to_fold_ on.
    void take_run(std::uint64_t first, std::uint64_t count, zmq::message_t& frame,
                  std::vector<FoldRun>& out) {
        if (first + count <= next_to_fold_)
            return;  // all folded before (its bytes go with the frame)
        const std::size_t bytes = frame.size();
        out.push_back(FoldRun{std::move(frame), first, next_to_fold_, first + count, bytes});
        next_to_fold_ = first + count;
    }

    void take_parked(std::vector<FoldRun>& out) {
        while (!parked_.empty() && parked_.front().first <= next_to_fold_) {
            ParkedRun run = std::move(parked_.front());
            parked_.pop_front();
            parked_bytes_ -= run.frame.size();
            take_run(run.first, run.count, run.frame, out);
        }
    }

    SlidingIndexSet arrived_;         // indices whose result came back
    std::deque<ParkedRun> parked_;    // by first index, ahead of their turn
    std::size_t parked_bytes_ = 0;    // their frames' sizes
    std::uint64_t next_to_fold_ = 0;  // in subtask order
    bool in_subtask_order_;
};

}  // namespace dtask::detail
