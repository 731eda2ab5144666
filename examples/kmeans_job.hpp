#pragma once
// k-means in the plane, one iteration per job: the points are the job-wide data (placed on
// the workers once with share(), or sent with every job), each subtask a slice of them with
// the current centres, each partial the slice's sums per nearest centre. Shared by the
// kmeans example and dtask_perf's shared_data scenario.

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

/// One subtask: the points [begin, end) and the centres to assign them to.
struct Slice {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    std::vector<Point> centres;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(begin, end, centres);
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

/// An iteration's input: the centres, and how many points to cut into how many slices.
struct Step {
    std::vector<Point> centres;
    std::uint64_t points = 0;
    std::uint64_t slices = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(centres, points, slices);
    }
};

/// The points' sums per nearest centre, for the points of [begin, end).
inline Sums assign(const Points& points, std::uint64_t begin, std::uint64_t end,
                   const std::vector<Point>& centres) {
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
        slices.push_back(
            Slice{step.points * s / count, step.points * (s + 1) / count, step.centres});
    return slices;
}

inline Sums fold(Sums total, Sums part) {
    total.add(part);
    return total;
}

/// The next centres: each the mean of its points (a centre with none stays where it was).
inline std::vector<Point> next_centres(const std::vector<Point>& centres, const Sums& sums) {
    std::vector<Point> next = centres;
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

/// One iteration: the points are job-wide data, placed once with share() or sent each time.
inline const dtask::Job<Sums> kmeans_step{
    "kmeans.step", slices_of,
    [](const Slice& slice, const Points& points) {
        if (slice.end > points.size() || slice.begin > slice.end)
            throw std::out_of_range("slice beyond the points");
        return assign(points, slice.begin, slice.end, slice.centres);
    },
    fold};

}  // namespace kmeans
