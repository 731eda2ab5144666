#pragma once
// The sum_squares job, in a header of its own so that the tests run the very job the
// example runs (and its binary can serve them as a worker).

#include <cstdint>
#include <string>

#include <dtask/dtask.hpp>

namespace sum_squares_example {

using u128 = unsigned __int128;

struct Range {
    std::uint64_t lo = 0;  // first number, inclusive
    std::uint64_t hi = 0;  // last number, exclusive
    template <class Archive>
    void serialize(Archive& archive) {
        archive(lo, hi);
    }
};

/// Add up the squares of 1..n in `pieces` subtasks (0: as the cluster suggests).
struct Problem {
    std::uint64_t n = 0;
    std::uint64_t pieces = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(n, pieces);
    }
};

inline std::string to_string(u128 value) {
    if (value == 0)
        return "0";
    std::string digits;
    while (value != 0) {
        digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
        value /= 10;
    }
    return digits;
}

// At namespace scope, so that this binary started as a worker finds map by the job's name.
inline const dtask::Job<u128> sum_squares{
    "sum_squares",
    // split: lazily, one Range per subtask; nothing is materialised up front.
    [](const Problem& problem, dtask::SplitHint hint) {
        const std::uint64_t count = problem.pieces != 0 ? problem.pieces : hint.subtasks;
        const u128 n = problem.n;
        auto bound = [=](std::uint64_t i) { return static_cast<std::uint64_t>(1 + n * i / count); };
        return dtask::pieces(count, [=](std::uint64_t i) { return Range{bound(i), bound(i + 1)}; });
    },
    // map: runs on a worker.
    [](const Range& range) {
        u128 sum = 0;
        for (std::uint64_t x = range.lo; x < range.hi; ++x)
            sum += static_cast<u128>(x) * x;
        return sum;
    },
    // reduce
    [](u128 total, u128 part) { return total + part; }};

}  // namespace sum_squares_example
