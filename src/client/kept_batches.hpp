#pragma once
// Kept batches: a client that waits for a restarted broker (ClientOptions::broker_restart_grace),
// or a job that writes repro bundles (RunOptions::replay_dir), keeps each batch it sent, as
// the task frame sent (ZeroMQ shares its bytes: nothing is copied), until every result in it
// has come back: to send it again to the new broker, or to take a failed subtask's bytes
// from it. The split window bounds them: at most window_bytes of subtasks, in at most
// max_batches_out batches, are out at once. It keeps count; the loop sends.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <iterator>
#include <optional>
#include <span>
#include <string>

#include <zmq.hpp>

#include "wire/batch.hpp"

namespace dtask::detail {

class KeptBatches {
public:
    /// The batch of `count` subtasks from `first` was sent as `frame` (after those kept),
    /// its records after a header of `header` bytes.
    void keep(std::uint64_t first, std::uint64_t count, std::size_t header, zmq::message_t frame) {
        kept_.push_back(Kept{first, count, count, header, std::move(frame)});
    }

    /// `fresh` results of a run from `first` came back for the first time (runs never cross
    /// batches): a batch wholly back is let go.
    void returned(std::uint64_t first, std::uint64_t fresh) {
        auto after = std::upper_bound(
            kept_.begin(), kept_.end(), first,
            [](std::uint64_t index, const Kept& batch) { return index < batch.first; });
        if (after == kept_.begin())
            return;
        Kept& batch = *std::prev(after);
        if (first >= batch.first + batch.count)
            return;
        if (batch.left == 0)
            return;
        batch.left -= std::min(batch.left, fresh);
        if (batch.left != 0)
            return;
        batch.frame.rebuild();  // its bytes go now, its place when those before go
        ++back_;
        while (!kept_.empty() && kept_.front().left == 0) {
            kept_.pop_front();
            --back_;
        }
        // Behind a slow batch, in arrival order, the places of those back would pile up
        // without bound: past half the store, they go at once (amortized constant time).
        if (back_ > 64 && back_ * 2 > kept_.size()) {
            std::erase_if(kept_, [](const Kept& kept) { return kept.left == 0; });
            back_ = 0;
        }
    }

    /// Calls `send(frame)` with a copy (sharing the bytes) of each batch not wholly back,
    /// in index order.
    template <class Send>
    void for_each_out(Send&& send) {
        for (Kept& batch : kept_) {
            if (batch.left == 0)
                continue;
            zmq::message_t copy;
            copy.copy(batch.frame);
            send(copy);
        }
    }

    /// The bytes of subtask `index`, if its batch is kept and well formed.
    std::optional<std::string> subtask(std::uint64_t index) const {
        auto after =
            std::upper_bound(kept_.begin(), kept_.end(), index,
                             [](std::uint64_t at, const Kept& batch) { return at < batch.first; });
        if (after == kept_.begin())
            return std::nullopt;
        const Kept& batch = *std::prev(after);
        if (index - batch.first >= batch.count || batch.left == 0 ||
            batch.header > batch.frame.size())
            return std::nullopt;
        const auto records =
            std::span(static_cast<const std::byte*>(batch.frame.data()), batch.frame.size())
                .subspan(batch.header);
        BatchReader reader(records);
        std::span<const std::byte> record;
        try {
            for (std::uint64_t i = batch.first; reader.next(record, "kept batch"); ++i) {
                if (i == index)
                    return std::string(reinterpret_cast<const char*>(record.data()), record.size());
            }
        } catch (const std::exception&) {
        }
        return std::nullopt;
    }

    /// Places in the store: batches out, and some wholly back behind them.
    std::size_t places() const noexcept { return kept_.size(); }

    /// Batches not wholly back.
    std::size_t out() const noexcept {
        return static_cast<std::size_t>(std::count_if(
            kept_.begin(), kept_.end(), [](const Kept& batch) { return batch.left != 0; }));
    }

private:
    struct Kept {
        std::uint64_t first = 0;
        std::uint64_t count = 0;
        std::uint64_t left = 0;  // results still to come
        std::size_t header = 0;  // bytes of frame before its records
        zmq::message_t frame;    // the task message as sent; empty once wholly back
    };
    std::deque<Kept> kept_;  // in index order; the front is still out
    std::size_t back_ = 0;   // places of batches wholly back
};

}  // namespace dtask::detail
