// shared_data: an iterative job (k-means) whose points stay on the workers (share) while each
// iteration's centres are its job-wide data, next to the same iterations placing the points
// again for every job, so that every worker receives them each time.

#include <cstdint>
#include <vector>

#include "../examples/kmeans_job.hpp"
#include "scenarios.hpp"

namespace perf {
namespace {

/// Milliseconds per iteration of `iterations` k-means steps from the first points as
/// centres, the points placed once (`placed`) or, if it is null, again for every iteration;
/// the final centres in `centres`.
double ms_per_iteration(dtask::Cluster& cluster, const kmeans::Points& points,
                        const dtask::Shared<kmeans::Points>* placed, std::uint64_t clusters,
                        std::uint64_t iterations, kmeans::Centres& centres) {
    centres.assign(points.begin(), points.begin() + static_cast<std::ptrdiff_t>(clusters));
    const auto start = Clock::now();
    for (std::uint64_t i = 0; i < iterations; ++i) {
        const kmeans::Step step{points.size(), 8};
        const kmeans::Sums sums =
            placed != nullptr
                ? cluster.run(kmeans::kmeans_step, step, *placed, centres)
                : cluster.run(kmeans::kmeans_step, step, cluster.share(points), centres);
        centres = kmeans::next_centres(centres, sums);
    }
    return 1e3 * seconds_since(start) / static_cast<double>(iterations);
}

bool same_centres(const kmeans::Centres& a, const kmeans::Centres& b) {
    for (std::size_t c = 0; c < a.size(); ++c) {
        if (a[c].x != b[c].x || a[c].y != b[c].y)
            return false;
    }
    return a.size() == b.size();
}

}  // namespace

std::vector<Figure> shared_data(const Settings& settings) {
    const std::uint64_t point_count = settings.quick ? 20'000 : 500'000;
    const std::uint64_t clusters = 8;
    const std::uint64_t iterations = settings.quick ? 3 : 10;
    const kmeans::Points points = kmeans::make_points(point_count, clusters);

    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    const auto shared = cluster.share(points);

    Figure figure{"shared_data", "shared_data.kmeans_iteration", "ms", Better::lower};
    figure.baseline = "kmeans_iteration_placing_the_points_each_time";
    figure.target = Target::ratio_at_most(0.5);
    figure.detail("points", static_cast<double>(point_count));
    figure.detail("point_bytes", static_cast<double>(shared.size()));
    figure.detail("iterations", static_cast<double>(iterations));
    std::vector<double> serial_ms;
    for (int rep = 0; rep < settings.repeat; ++rep) {
        kmeans::Centres resent;
        kmeans::Centres kept;
        const double resend_ms =
            ms_per_iteration(cluster, points, nullptr, clusters, iterations, resent);
        const double shared_ms =
            ms_per_iteration(cluster, points, &shared, clusters, iterations, kept);
        if (!same_centres(resent, kept))
            throw WrongResult(
                "k-means on shared points ended at other centres than on resent ones");
        figure.add(shared_ms, resend_ms);
        kmeans::Centres centres(points.begin(),
                                points.begin() + static_cast<std::ptrdiff_t>(clusters));
        const auto start = Clock::now();
        for (std::uint64_t i = 0; i < iterations; ++i)
            centres =
                kmeans::next_centres(centres, kmeans::assign(points, 0, points.size(), centres));
        serial_ms.push_back(1e3 * seconds_since(start) / static_cast<double>(iterations));
    }
    figure.detail("serial_ms_per_iteration", median(serial_ms));
    return {figure};
}

}  // namespace perf
