#pragma once
// The split window: a job splits off subtasks only while fewer than `count` are split off and
// not yet folded, fewer than max_batches_out of its batches are out (not all their results
// back) and those batches' subtasks add up to less than `bytes`; with no batch out, one is
// sent whatever its size. Partials bound it too: the bytes of results waiting to be folded
// (parked for their turn or queued for reduce), with those the subtasks out will bring back
// (as large as the largest result per subtask so far), stay under `partial_bytes`; until a
// result came back, only a few subtasks per worker go out. It decides and keeps count; the
// loop splits and sends.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>

namespace dtask::detail {

/// A batch sent and not yet wholly back.
struct SentBatch {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t left = 0;  // results still to come
    std::size_t bytes = 0;
    std::chrono::steady_clock::time_point sent_at;
};

class SplitWindow {
public:
    using Clock = std::chrono::steady_clock;

    /// RunOptions::window and window_bytes when they are 0.
    static constexpr std::size_t default_count = 65536;
    static constexpr std::size_t default_bytes = 32 << 20;
    /// RunOptions::reduce_bytes when it is 0.
    static constexpr std::size_t default_partial_bytes = std::size_t{256} << 20;
    /// Subtasks out per worker until a result's size is known.
    static constexpr std::size_t unmeasured_per_worker = 2;
    /// Batches of one job out at most: enough to keep the credits of several workers used
    /// when batches are single subtasks (a worker may hold 256), without flooding the broker.
    static constexpr std::size_t max_batches_out = 1024;

    /// `count`, `bytes`, `partial_bytes`: RunOptions::window, window_bytes and reduce_bytes,
    /// 0 for the defaults.
    SplitWindow(std::size_t count, std::size_t bytes, std::size_t partial_bytes = 0) noexcept
        : count_(count != 0 ? count : default_count),
          bytes_(bytes != 0 ? bytes : default_bytes),
          partial_bytes_(partial_bytes != 0 ? partial_bytes : default_partial_bytes) {}

    /// Whether another batch may be split off and sent, with `workers` serving the job.
    bool open(std::size_t workers = 1) const noexcept {
        return emitted_ - folded_ < count_ && batches_out_ < max_batches_out &&
               (bytes_out_ < bytes_ || batches_out_ == 0) && partials_allow(workers);
    }
    /// Subtasks the next batch may hold at most (when open()).
    std::size_t room(std::size_t workers = 1) const noexcept {
        const std::size_t room = count_ - (emitted_ - folded_);
        if (partial_size_ == 0)
            return std::min(room, unmeasured_limit(workers) -
                                      std::min<std::size_t>(unmeasured_limit(workers), out()));
        const std::size_t free = partial_bytes_ - std::min(partial_bytes_, projected());
        return std::min(room, std::max<std::size_t>(free / partial_size_, 1));
    }
    /// Bytes the next batches may hold at most (when open()), at least one subtask's.
    std::size_t bytes_room() const noexcept { return bytes_ - std::min(bytes_, bytes_out_); }

    /// Subtasks split off and sent, and of those folded.
    std::uint64_t emitted() const noexcept { return emitted_; }
    std::uint64_t folded() const noexcept { return folded_; }
    /// Whether every subtask sent is folded.
    bool all_folded() const noexcept { return folded_ == emitted_; }
    /// Whether results for [first, first + count) can be of subtasks sent.
    bool sent_all_of(std::uint64_t first, std::uint64_t count) const noexcept {
        return count != 0 && first <= emitted_ && count <= emitted_ - first;
    }
    /// Batches out, and the bytes of their subtasks.
    std::size_t batches_out() const noexcept { return batches_out_; }
    std::size_t bytes_out() const noexcept { return bytes_out_; }

    /// A batch of `count` subtasks, `bytes` long, is sent at `at`; returns its first index.
    std::uint64_t on_sent(std::uint64_t count, std::size_t bytes, Clock::time_point at) {
        const std::uint64_t first = emitted_;
        emitted_ += count;
        bytes_out_ += bytes;
        sent_.push_back(SentBatch{first, count, count, bytes, at});
        ++batches_out_;
        return first;
    }

    /// `count` results are folded: their places in the window are free.
    void on_folded(std::uint64_t count = 1) noexcept { folded_ += count; }

    /// A run of `count` results, `bytes` long, came back: the largest size per result so far
    /// foretells what the subtasks out will bring.
    void on_partials(std::uint64_t count, std::size_t bytes) noexcept {
        if (count != 0)
            partial_size_ =
                std::max<std::size_t>(partial_size_, std::max<std::size_t>(bytes / count, 1));
    }
    /// Results waiting to be folded now hold `bytes` (parked, or queued for reduce).
    void set_held(std::size_t bytes) noexcept { held_ = bytes; }
    std::size_t held() const noexcept { return held_; }
    /// Subtasks sent whose result has not come back.
    std::uint64_t out() const noexcept { return emitted_ - returned_; }

    /// `fresh` results of the run [first, first + count) came back for the first time: frees
    /// the bytes of a batch now wholly back. Returns when that batch was sent if this one run
    /// brought it back whole, so that its round trip can be measured.
    std::optional<Clock::time_point> on_returned(std::uint64_t first, std::uint64_t count,
                                                 std::uint64_t fresh) {
        std::optional<Clock::time_point> sent_at;
        returned_ += fresh;
        if (auto batch = batch_holding(first); batch != sent_.end()) {
            batch->left -= std::min(batch->left, fresh);
            if (batch->left == 0) {
                bytes_out_ -= batch->bytes;
                --batches_out_;
                if (first == batch->first && count == batch->count)
                    sent_at = batch->sent_at;
            }
        }
        while (!sent_.empty() && sent_.front().left == 0)
            sent_.pop_front();
        return sent_at;
    }

    /// Whether the partials held and foretold keep the next subtask back (not the start-up
    /// limit before any result came back).
    bool held_by_partials(std::size_t workers) const noexcept {
        return partial_size_ > 0 && !partials_allow(workers);
    }

private:
    static std::size_t unmeasured_limit(std::size_t workers) noexcept {
        return unmeasured_per_worker * std::max<std::size_t>(workers, 2);
    }
    /// Partials held, and those the subtasks out will bring.
    std::size_t projected() const noexcept {
        return held_ + static_cast<std::size_t>(out()) * partial_size_;
    }
    /// Whether the partials leave room for another subtask; with none out and none held, one
    /// always goes.
    bool partials_allow(std::size_t workers) const noexcept {
        if (out() == 0 && held_ == 0)
            return true;
        if (partial_size_ == 0)
            return out() < unmeasured_limit(workers);
        return projected() + partial_size_ <= partial_bytes_;
    }

    /// The batch holding subtask `index` (runs never cross batches), or sent_.end(). Batches
    /// are in index order and mostly of one size: the guess from the first one's size is
    /// nearly always right, which spares a binary search of the deque per result.
    std::deque<SentBatch>::iterator batch_holding(std::uint64_t index) {
        if (sent_.empty() || index < sent_.front().first)
            return sent_.end();
        const std::uint64_t guess =
            (index - sent_.front().first) / std::max<std::uint64_t>(sent_.front().count, 1);
        if (guess < sent_.size()) {
            const auto batch = sent_.begin() + static_cast<std::ptrdiff_t>(guess);
            if (batch->first <= index && index < batch->first + batch->count)
                return batch;
        }
        auto after = std::upper_bound(
            sent_.begin(), sent_.end(), index,
            [](std::uint64_t wanted, const SentBatch& batch) { return wanted < batch.first; });
        return std::prev(after);
    }

    std::size_t count_;             // subtasks split off and not folded, at most
    std::size_t bytes_;             // bytes of the batches out, at most
    std::size_t partial_bytes_;     // bytes of partials held and foretold, at most
    std::size_t partial_size_ = 0;  // the largest per result so far; 0: none came back
    std::size_t held_ = 0;          // partials waiting to be folded
    std::uint64_t returned_ = 0;    // subtasks whose result came back
    std::uint64_t emitted_ = 0;     // subtasks split off and sent
    std::uint64_t folded_ = 0;      // partials folded into the result
    std::size_t bytes_out_ = 0;     // subtask payloads sent, not back
    std::deque<SentBatch> sent_;    // in index order; the front is still out
    std::size_t batches_out_ = 0;   // of those, not wholly back
};

}  // namespace dtask::detail
