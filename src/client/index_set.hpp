#pragma once
// The subtask indices of a job that have come back, so that each partial result is folded
// once however many copies of it arrive. Results come back roughly in index order, so a
// bitmap that slides forward over the indices all of which are in stays small: its size is
// set by how far apart the oldest missing and the newest result are, not by the job's size.

#include <cstdint>
#include <deque>

namespace dtask::detail {

class SlidingIndexSet {
public:
    /// Adds `index`; false if it was in already.
    bool insert(std::uint64_t index) {
        if (index < base_)
            return false;
        const std::uint64_t word = (index - base_) / 64;
        if (word >= words_.size())
            words_.resize(word + 1, 0);
        const std::uint64_t bit = std::uint64_t{1} << ((index - base_) % 64);
        if (words_[word] & bit)
            return false;
        words_[word] |= bit;
        while (!words_.empty() && words_.front() == ~std::uint64_t{0}) {
            words_.pop_front();
            base_ += 64;
        }
        return true;
    }

private:
    std::deque<std::uint64_t> words_;
    std::uint64_t base_ = 0;  // every index below it is in
};

}  // namespace dtask::detail
