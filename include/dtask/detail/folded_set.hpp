#pragma once
/// \file The subtasks of a job that are folded, as its checkpoint keeps them: every index
/// below a prefix, and disjoint ranges above it. In subtask order it is the prefix alone; in
/// arrival order, a few ranges past the oldest subtask not yet back.

#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <string_view>

#include <dtask/error.hpp>

namespace dtask::detail {

class FoldedSet {
public:
    /// Every index below it is folded.
    std::uint64_t prefix() const noexcept { return prefix_; }
    /// The folded ranges above the prefix, first -> end (exclusive); none touches another or
    /// the prefix.
    const std::map<std::uint64_t, std::uint64_t>& ranges() const noexcept { return ranges_; }
    /// How many indices are folded.
    std::uint64_t count() const noexcept { return count_; }
    /// The end of the folded indices from `index` on: `index` itself if it is not folded.
    std::uint64_t folded_until(std::uint64_t index) const {
        if (index < prefix_)
            return prefix_;
        auto after = ranges_.upper_bound(index);
        if (after == ranges_.begin())
            return index;
        const auto before = std::prev(after);
        return index < before->second ? before->second : index;
    }
    bool contains(std::uint64_t index) const { return folded_until(index) != index; }

    /// Adds `index`; false if it was in already.
    bool insert(std::uint64_t index) {
        if (index == prefix_) {
            ++prefix_;
            if (!ranges_.empty() && ranges_.begin()->first == prefix_) {
                prefix_ = ranges_.begin()->second;
                ranges_.erase(ranges_.begin());
            }
            ++count_;
            return true;
        }
        if (index < prefix_)
            return false;
        auto after = ranges_.upper_bound(index);
        if (after != ranges_.begin()) {
            const auto before = std::prev(after);
            if (index < before->second)
                return false;
            if (index == before->second) {
                ++before->second;
                if (after != ranges_.end() && after->first == before->second) {
                    before->second = after->second;
                    ranges_.erase(after);
                }
                ++count_;
                return true;
            }
        }
        if (after != ranges_.end() && after->first == index + 1) {
            const std::uint64_t end = after->second;
            ranges_.erase(after);
            ranges_.emplace(index, end);
        } else {
            ranges_.emplace(index, index + 1);
        }
        ++count_;
        return true;
    }

    /// As bytes: the prefix, the number of ranges, then each range's distance from the end
    /// of the one before (the prefix for the first) and its length, as LEB128 varints.
    std::string encode() const {
        std::string out;
        put(out, prefix_);
        put(out, ranges_.size());
        std::uint64_t end = prefix_;
        for (const auto& [first, last] : ranges_) {
            put(out, first - end);
            put(out, last - first);
            end = last;
        }
        return out;
    }

    /// The set encode() wrote; throws Error if `bytes` are not such a set (a file is
    /// untrusted: nothing is reserved from a count it holds).
    static FoldedSet decode(std::string_view bytes) {
        FoldedSet set;
        std::size_t at = 0;
        set.prefix_ = take(bytes, at);
        set.count_ = set.prefix_;
        const std::uint64_t ranges = take(bytes, at);
        std::uint64_t end = set.prefix_;
        for (std::uint64_t i = 0; i < ranges; ++i) {
            const std::uint64_t gap = take(bytes, at);
            const std::uint64_t length = take(bytes, at);
            if (gap == 0 || length == 0 || gap > UINT64_MAX - end ||
                length > UINT64_MAX - end - gap)
                throw Error("the folded set holds an empty, touching or overflowing range");
            const std::uint64_t first = end + gap;
            end = first + length;
            set.ranges_.emplace_hint(set.ranges_.end(), first, end);
            set.count_ += length;
        }
        if (at != bytes.size())
            throw Error("the folded set has bytes after its last range");
        return set;
    }

private:
    static void put(std::string& out, std::uint64_t value) {
        do {
            const auto low = static_cast<unsigned char>(value & 0x7f);
            value >>= 7;
            out.push_back(static_cast<char>(value != 0 ? low | 0x80 : low));
        } while (value != 0);
    }
    static std::uint64_t take(std::string_view bytes, std::size_t& at) {
        std::uint64_t value = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (at >= bytes.size())
                throw Error("the folded set ends in the middle of a number");
            const auto byte = static_cast<unsigned char>(bytes[at++]);
            if (shift == 63 && (byte & 0x7e) != 0)
                throw Error("the folded set holds a number of more than 64 bits");
            value |= std::uint64_t{byte & 0x7fu} << shift;
            if ((byte & 0x80) == 0)
                return value;
        }
        throw Error("the folded set holds a number of more than 64 bits");
    }

    std::uint64_t prefix_ = 0;
    std::map<std::uint64_t, std::uint64_t> ranges_;
    std::uint64_t count_ = 0;
};

}  // namespace dtask::detail
