#pragma once
// Subtask copies: for a job that writes repro bundles (RunOptions::replay_dir), a copy of each
// batch sent, kept until all its results are back, so that the bytes of a subtask that fails
// are at hand for its bundle. A result run never crosses a batch; a batch is dropped once all
// its results are back, so the split window bounds the bytes kept (RunOptions::window_bytes). A job
// without bundles keeps none: its batch bytes go to the broker without a copy.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "wire/batch.hpp"

namespace dtask::detail {

class SubtaskCopies {
public:
    /// A batch of `count` subtasks from `first` was sent; `records` is its frame's records.
    void on_sent(std::uint64_t first, std::uint64_t count, std::span<const std::byte> records) {
        if (count == 0)
            return;
        kept_.insert_or_assign(
            first,
            Kept{count, count,
                 std::string(reinterpret_cast<const char*>(records.data()), records.size())});
        bytes_ += records.size();
    }

    /// `fresh` results of the run from `first` came back for the first time: a batch wholly
    /// back is dropped.
    void on_returned(std::uint64_t first, std::uint64_t fresh) {
        auto batch = holding(kept_, first);
        if (batch == kept_.end())
            return;
        batch->second.left -= std::min(batch->second.left, fresh);
        if (batch->second.left == 0) {
            bytes_ -= batch->second.records.size();
            kept_.erase(batch);
        }
    }

    /// The bytes of subtask `index`, if its batch is kept and well formed.
    std::optional<std::string> subtask(std::uint64_t index) const {
        const auto batch = holding(kept_, index);
        if (batch == kept_.end())
            return std::nullopt;
        BatchReader reader(std::as_bytes(std::span(batch->second.records)));
        std::span<const std::byte> record;
        try {
            for (std::uint64_t i = batch->first; reader.next(record, "kept batch"); ++i) {
                if (i == index)
                    return std::string(reinterpret_cast<const char*>(record.data()), record.size());
            }
        } catch (const std::exception&) {
        }
        return std::nullopt;
    }

    /// Batches kept, and their bytes.
    std::size_t batches() const noexcept { return kept_.size(); }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    struct Kept {
        std::uint64_t count = 0;
        std::uint64_t left = 0;  // results still to come
        std::string records;
    };
    /// The batch of `kept` holding subtask `index`, or kept.end().
    template <class Map>
    static auto holding(Map& kept, std::uint64_t index) -> decltype(kept.end()) {
        auto after = kept.upper_bound(index);
        if (after == kept.begin())
            return kept.end();
        auto batch = std::prev(after);
        return index - batch->first < batch->second.count ? batch : kept.end();
    }

    std::map<std::uint64_t, Kept> kept_;  // by first index; batches wholly back are dropped
    std::size_t bytes_ = 0;
};

}  // namespace dtask::detail
