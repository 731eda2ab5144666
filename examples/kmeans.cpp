// k-means clustering of points in the plane: one job per iteration, until the centroids stop
// moving. The points are placed on the workers once with share(); each iteration's job has
// the current centroids as its job-wide data, which each worker receives once per job, and
// every worker reuses the points it holds. The points are cut into the same slices whatever
// the number of workers, and the slices' sums are added in order, so the centroids are the
// same to the last bit for any number of workers, and the same as --serial.
//
//   kmeans                       200000 points, 8 clusters, until the centroids stop moving
//   kmeans --resend              the points placed again for every iteration (for comparison)
//   kmeans --serial              the same iterations in this process alone
//
// The iterations and the centroids go to standard output; the time per iteration to stderr.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
#include "kmeans_job.hpp"
#include "progress_bar.hpp"

using namespace kmeans;

namespace {

struct Settings {
    std::uint64_t points = 200'000;
    std::uint64_t clusters = 8;
    std::uint64_t max_iterations = 100;
    double tolerance = 0;  // the most a centroid may move in an iteration that ends the run
    std::uint64_t slices = 16;
    enum class Mode { shared, resend, serial } mode = Mode::shared;
    WhereToRun where;
};

struct Outcome {
    Centres centroids;
    Sums last;                  // the points per centroid, from the last iteration
    std::vector<double> moved;  // per iteration, the furthest a centroid moved
    bool converged = false;
};

void print_help() {
    std::cout
        << "Usage: kmeans [options]\n"
           "Clusters generated points in the plane with k-means, one job per iteration,\n"
           "until the centroids stop moving. The points are placed on the workers once\n"
           "(dtask share) and each iteration's job-wide data is the centroids.\n\n"
           "Options:\n"
           "  --points N         points (default 200000)\n"
           "  --k K              clusters (default 8)\n"
           "  --max-iterations I stop after I iterations even if not converged (default 100)\n"
           "  --tolerance D      converged when no centroid moves more than D (default 0:\n"
           "                     when none moves at all)\n"
           "  --slices S         subtasks per iteration (default 16)\n"
           "  --resend           place the points again for every iteration, so that every\n"
           "                     worker receives them each time (for comparison)\n"
           "  --serial           iterate in this process alone, without dtask\n"
        << common_usage << "\n"
        << dtask::worker_usage();
}

double distance(const Point& a, const Point& b) {
    return std::hypot(a.x - b.x, a.y - b.y);
}

/// Iterates `sums_for(centroids) -> Sums` from the first k points until no centroid moves
/// more than the tolerance, or max_iterations.
template <class SumsFor>
Outcome converge(const Settings& settings, const Points& points, SumsFor&& sums_for) {
    Outcome outcome;
    outcome.centroids.assign(points.begin(),
                             points.begin() + static_cast<std::ptrdiff_t>(settings.clusters));
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar("kmeans iterations");  // on a terminal only
    while (!outcome.converged && outcome.moved.size() < settings.max_iterations) {
        outcome.last = sums_for(outcome.centroids);
        const Centres next = next_centres(outcome.centroids, outcome.last);
        double moved = 0;
        for (std::size_t c = 0; c < next.size(); ++c)
            moved = std::max(moved, distance(next[c], outcome.centroids[c]));
        outcome.centroids = next;
        outcome.moved.push_back(moved);
        outcome.converged = moved <= settings.tolerance;
        bar.step(outcome.moved.size(), settings.max_iterations);
    }
    bar.step(outcome.moved.size(), outcome.moved.size());  // the last, at 100%
    bar.finish();
    const std::chrono::duration<double, std::milli> spent =
        std::chrono::steady_clock::now() - start;
    std::fprintf(stderr, "kmeans: %.2f ms per iteration\n",
                 spent.count() / static_cast<double>(outcome.moved.size()));
    return outcome;
}

/// One iteration's input: the points in a fixed number of slices.
Step step_for(const Settings& settings, const Points& points) {
    return Step{points.size(), settings.slices};
}

Outcome run_on(dtask::Submitter& submitter, const Settings& settings, const Points& points) {
    if (settings.mode == Settings::Mode::resend) {
        return converge(settings, points, [&](const Centres& centroids) {
            // Placed for this job alone: released when it ends, sent to every worker again.
            return submitter.run(kmeans_step, step_for(settings, points), submitter.share(points),
                                 centroids);
        });
    }
    const auto placed = submitter.share(points);  // once: the workers keep it
    return converge(settings, points, [&](const Centres& centroids) {
        return submitter.run(kmeans_step, step_for(settings, points), placed, centroids);
    });
}

/// The same slices as the job, summed here in the same order.
Outcome run_serial(const Settings& settings, const Points& points) {
    return converge(settings, points, [&](const Centres& centroids) {
        Sums total;
        for (const Slice& slice : slices_of(step_for(settings, points), {}))
            total = fold(total, assign(points, slice.begin, slice.end, centroids));
        return total;
    });
}

void print_outcome(const Outcome& outcome) {
    for (std::size_t i = 0; i < outcome.moved.size(); ++i)
        std::printf("iteration %zu: the centroids moved %.6f at most\n", i + 1, outcome.moved[i]);
    std::printf("%s after %zu iterations; the centroids and their points:\n",
                outcome.converged ? "converged" : "not converged (--max-iterations)",
                outcome.moved.size());
    for (std::size_t c = 0; c < outcome.centroids.size(); ++c)
        std::printf("%12.6f %12.6f %10llu\n", outcome.centroids[c].x, outcome.centroids[c].y,
                    static_cast<unsigned long long>(outcome.last.count[c]));
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);

    Settings settings;
    CommandLine args("kmeans", argc, argv);
    while (args.next()) {
        if (args.is("--points"))
            settings.points = args.number(1);
        else if (args.is("--k"))
            settings.clusters = args.number(1, 100'000);
        else if (args.is("--max-iterations"))
            settings.max_iterations = args.number(1);
        else if (args.is("--tolerance"))
            settings.tolerance = args.real();
        else if (args.is("--slices"))
            settings.slices = args.number(1, 1'000'000);
        else if (args.is("--resend"))
            settings.mode = Settings::Mode::resend;
        else if (args.is("--serial"))
            settings.mode = Settings::Mode::serial;
        else if (!args.common(settings.where, print_help))
            args.unknown();
    }
    if (settings.points < settings.clusters)
        args.fail("--k must be at most --points");
    if (!(settings.tolerance >= 0))
        args.fail("--tolerance must be 0 or more");

    try {
        const Points points = make_points(settings.points, settings.clusters);
        Outcome outcome;
        if (settings.mode == Settings::Mode::serial) {
            outcome = run_serial(settings, points);
        } else {
            outcome = settings.where.with_submitter(
                [&](dtask::Submitter& submitter) { return run_on(submitter, settings, points); });
        }
        print_outcome(outcome);
    } catch (const std::exception& e) {
        std::cerr << "kmeans: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
