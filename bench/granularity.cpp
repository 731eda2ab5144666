// serial_kernel and efficiency: how much of two workers' time goes to the work itself, as a
// function of how long one subtask runs, and the smallest subtask that keeps them at least
// half busy (METG, as Task Bench defines it: Slaughter et al., SC 2020).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "kernel.hpp"
#include "perf_jobs.hpp"
#include "scenarios.hpp"

namespace perf {
namespace {

constexpr double workers = 2;

std::chrono::nanoseconds kernel_sample(const Settings& settings) {
    return settings.quick ? std::chrono::milliseconds(5) : std::chrono::milliseconds(100);
}

/// The smallest x at which efficiency reaches 50%: the first point from the left at 50% or
/// more, interpolated linearly in log x between it and the point before. `points` are
/// (x, efficiency in %) by increasing x. Infinity if no point reaches 50%; the smallest x
/// if the first one does (the METG is then at most that).
double metg_50(const std::vector<std::pair<double, double>>& points) {
    for (std::size_t i = 0; i < points.size(); ++i) {
        const auto [x_high, e_high] = points[i];
        if (e_high < 50)
            continue;
        if (i == 0)
            return x_high;
        const auto [x_low, e_low] = points[i - 1];
        const double fraction = (50 - e_low) / (e_high - e_low);
        return std::exp(std::log(x_low) + fraction * (std::log(x_high) - std::log(x_low)));
    }
    return std::numeric_limits<double>::infinity();
}

struct Point {
    double granularity_us = 0;  // what one subtask is meant to run for
    std::uint64_t iterations = 0;
    std::uint64_t subtasks = 0;
    Figure figure;
    std::vector<double> taskbench_granularity_us;  // wall × workers / subtasks, per repetition
    std::vector<double> wall_seconds;
    std::vector<double> kernel_ns;  // ns per kernel iteration, sampled before each job
};

}  // namespace

std::vector<Figure> serial_kernel(const Settings& settings) {
    Figure figure{"serial_kernel", "serial_kernel", "ns/iteration", Better::lower};
    for (int rep = 0; rep < settings.repeat; ++rep)
        figure.add(spin_ns_per_iteration(kernel_sample(settings)));
    figure.detail("kernel", "xorshift64 steps, each depending on the one before");
    figure.detail("sample_ms", settings.quick ? 5.0 : 100.0);
    return {figure};
}

std::vector<Figure> efficiency(const Settings& settings) {
    // Serial work per point: about 1.5 s, and at least 400 subtasks so that the tail of the
    // job (the last subtask on one worker while the other is idle) stays within 0.5% of it.
    const std::vector<double> granularities_us =
        settings.quick ? std::vector<double>{1, 10, 100, 1000}
                       : std::vector<double>{0.25, 0.5, 1, 2, 5, 10, 50, 100, 1000, 10000};
    const double serial_seconds = settings.quick ? 0.02 : 1.5;
    const std::uint64_t min_subtasks = settings.quick ? 4 : 400;
    const std::uint64_t max_subtasks = settings.quick ? 4000 : 10'000'000;

    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    // Sizes the subtasks; the fastest of three samples, the others may have been slowed down.
    double ns_per_iteration = spin_ns_per_iteration(kernel_sample(settings));
    for (int sample = 0; sample < 2; ++sample)
        ns_per_iteration =
            std::min(ns_per_iteration, spin_ns_per_iteration(kernel_sample(settings)));

    std::vector<Point> points;
    for (const double granularity_us : granularities_us) {
        Point point;
        point.granularity_us = granularity_us;
        point.iterations = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::llround(granularity_us * 1e3 / ns_per_iteration)));
        point.subtasks = std::clamp<std::uint64_t>(
            static_cast<std::uint64_t>(std::llround(serial_seconds * 1e6 / granularity_us)),
            min_subtasks, max_subtasks);
        char name[64];
        std::snprintf(name, sizeof name, "efficiency.%gus", granularity_us);
        point.figure = Figure{"efficiency", name, "%", Better::higher};
        if (granularity_us == 100)
            point.figure.target = Target::value_at_least(95);
        if (granularity_us == 10000)
            point.figure.target = Target::value_at_least(98);
        points.push_back(std::move(point));
    }
    Figure metg{"efficiency", "efficiency.metg_50", "us", Better::lower};
    metg.target = Target::value_at_most(1);
    std::vector<double> taskbench_metg;

    // The serial baseline: the kernel's speed on one core, sampled right before each job, so
    // that the job and its baseline see the same machine (this one is shared, and its speed
    // drifts by a few percent between minutes).
    for (int rep = 0; rep < settings.repeat; ++rep) {
        for (Point& point : points) {
            point.kernel_ns.push_back(spin_ns_per_iteration(kernel_sample(settings)));
            const auto start = Clock::now();
            const std::uint64_t result =
                cluster.run(spin_job, SpinPlan{point.subtasks, point.iterations});
            const double wall = seconds_since(start);
            check_result("the spin job", result, point.subtasks);
            point.wall_seconds.push_back(wall);
        }
    }

    for (int rep = 0; rep < settings.repeat; ++rep) {
        std::vector<std::pair<double, double>> nominal, taskbench;
        for (Point& point : points) {
            const double wall = point.wall_seconds[static_cast<std::size_t>(rep)];
            const double subtask_us = static_cast<double>(point.iterations) *
                                      point.kernel_ns[static_cast<std::size_t>(rep)] * 1e-3;
            const double serial = static_cast<double>(point.subtasks) * subtask_us * 1e-6;
            const double percent = 100 * serial / (wall * workers);
            const double taskbench_us = wall * workers * 1e6 / static_cast<double>(point.subtasks);
            point.figure.add(percent);
            point.taskbench_granularity_us.push_back(taskbench_us);
            nominal.emplace_back(subtask_us, percent);
            taskbench.emplace_back(taskbench_us, percent);
        }
        metg.add(metg_50(nominal));
        std::sort(taskbench.begin(), taskbench.end());
        taskbench_metg.push_back(metg_50(taskbench));
    }

    std::vector<Figure> figures;
    for (Point& point : points) {
        // What one subtask ran for at the kernel's median speed: the x of the plot.
        point.figure.detail("granularity_us",
                            static_cast<double>(point.iterations) * median(point.kernel_ns) * 1e-3);
        point.figure.detail("nominal_granularity_us", point.granularity_us);
        point.figure.detail("taskbench_granularity_us", median(point.taskbench_granularity_us));
        point.figure.detail("subtasks", static_cast<double>(point.subtasks));
        point.figure.detail("iterations", static_cast<double>(point.iterations));
        point.figure.detail("wall_seconds", median(point.wall_seconds));
        point.figure.detail("workers", workers);
        point.figure.detail("kernel_ns_per_iteration", median(point.kernel_ns));
        figures.push_back(std::move(point.figure));
    }
    metg.detail("definition",
                "smallest subtask duration with efficiency >= 50%, log-linear interpolation; "
                "per repetition");
    metg.detail("taskbench_metg_us", median(taskbench_metg));
    metg.detail("at_most", metg.value() <= static_cast<double>(points.front().iterations) *
                                               median(points.front().kernel_ns) * 1e-3
                               ? "yes: every point >= 50%"
                               : "no");
    figures.push_back(std::move(metg));
    return figures;
}

}  // namespace perf
