#pragma once
// k-means in the plane, one iteration per job: the points are placed on the workers with
// share() and stay there across iterations, the current centres are each job's job-wide data,
// each subtask a slice of the points, each partial the slice's sums per nearest centre.
// Shared by the kmeans example and dtask_perf's shared_data scenario.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include <dtask/dtask.hpp>

namespace kmeans {

struct Point {
    double x = 0;
    double y = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(x, y);
    }
};
using Points = std::vector<Point>;
using Centres = std::vector<Point>;

/// One subtask: the points [begin, end).
struct Slice {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(begin, end);
    }
};

/// Per centre, the sum of the points nearest to it and their number.
struct Sums {
    std::vector<Point> sum;
    std::vector<std::uint64_t> count;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(sum, count);
    }
    void add(const Sums& other) {
        if (sum.empty()) {
            *this = other;
            return;
        }
        for (std::size_t c = 0; c < sum.size(); ++c) {
            sum[c].x += other.sum[c].x;
            sum[c].y += other.sum[c].y;
            count[c] += other.count[c];
        }
    }
};

/// An iteration's input: how many points to cut into how many slices.
struct Step {
    std::uint64_t points = 0;
    std::uint64_t slices = 0;
};

/// The points' sums per nearest centre, for the points of [begin, end).
inline Sums assign(const Points& points, std::uint64_t begin, std::uint64_t end,
                   const Centres& centres) {
    Sums sums;
    sums.sum.assign(centres.size(), Point{});
    sums.count.assign(centres.size(), 0);
    for (std::uint64_t i = begin; i < end; ++i) {
        const Point& p = points[i];
        std::size_t best = 0;
        double best_distance = std::numeric_limits<double>::max();
        for (std::size_t c = 0; c < centres.size(); ++c) {
            const double dx = p.x - centres[c].x;
            const double dy = p.y - centres[c].y;
            const double distance = dx * dx + dy * dy;
            if (distance < best_distance) {
                best_distance = distance;
                best = c;
            }
        }
        sums.sum[best].x += p.x;
        sums.sum[best].y += p.y;
        ++sums.count[best];
    }
    return sums;
}

inline std::vector<Slice> slices_of(const Step& step, dtask::SplitHint) {
    std::vector<Slice> slices;
    const std::uint64_t count = std::max<std::uint64_t>(1, step.slices);
    for (std::uint64_t s = 0; s < count; ++s)
        slices.push_back(Slice{step.points * s / count, step.points * (s + 1) / count});
    return slices;
}

inline Sums fold(Sums total, Sums part) {
    total.add(part);
    return total;
}

/// The next centres: each the mean of its points (a centre with none stays where it was).
inline Centres next_centres(const Centres& centres, const Sums& sums) {
    Centres next = centres;
    for (std::size_t c = 0; c < centres.size(); ++c) {
        if (sums.count[c] != 0)
            next[c] = Point{sums.sum[c].x / static_cast<double>(sums.count[c]),
                            sums.sum[c].y / static_cast<double>(sums.count[c])};
    }
    return next;
}

/// `count` points around `clusters` centres on a circle, from a fixed seed: the same on
/// every run.
inline Points make_points(std::uint64_t count, std::uint64_t clusters) {
    std::uint64_t state = 0x9e3779b97f4a7c15ULL;
    auto uniform = [&] {  // in [0, 1)
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(state >> 11) / 9007199254740992.0;
    };
    Points points(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t cluster = i % clusters;
        const double angle =
            6.283185307179586 * static_cast<double>(cluster) / static_cast<double>(clusters);
        points[i] = Point{100 * std::cos(angle) + 60 * (uniform() - 0.5),
                          100 * std::sin(angle) + 60 * (uniform() - 0.5)};
    }
    return points;
}

/// One iteration: the points are placed with share() (map's second parameter), the centres
/// are the job's own job-wide data (its third):
/// `submitter.run(kmeans_step, step, placed_points, centres)`.
inline const dtask::Job<Sums> kmeans_step{
    "kmeans.step", slices_of,
    [](const Slice& slice, const Points& points, const Centres& centres) {
        if (slice.end > points.size() || slice.begin > slice.end)
            throw std::out_of_range("slice beyond the points");
        if (centres.empty())
            throw std::invalid_argument("no centres to assign the points to");
        return assign(points, slice.begin, slice.end, centres);
    },
    fold};

}  // namespace kmeans
