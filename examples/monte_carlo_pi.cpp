// pi from random points in the unit square: the share of them inside the quarter circle of
// radius 1 tends to pi/4. Each subtask draws its points from a generator seeded by the job's
// seed and the subtask's index alone, so the estimate is the same, to the last digit, for any
// number of workers, and the same as --serial.
//
//   monte_carlo_pi                        100 million points on one local worker per core
//   monte_carlo_pi --points 1000000000 --seed 7
//   monte_carlo_pi --serial               the same points in this process alone

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <numbers>
#include <random>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
#include "progress_bar.hpp"

namespace {

/// The estimate to make: `points` points in `subtasks` subtasks, drawn from `seed`.
struct Problem {
    std::uint64_t points = 100'000'000;
    std::uint64_t subtasks = 100;
    std::uint64_t seed = 1;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(points, subtasks, seed);
    }
};

/// One subtask: `points` points from the stream of subtask `index`.
struct Draw {
    std::uint64_t seed = 0;
    std::uint64_t index = 0;
    std::uint64_t points = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(seed, index, points);
    }
};

struct Tally {
    std::uint64_t inside = 0;
    std::uint64_t points = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(inside, points);
    }
};

/// SplitMix64's finaliser: neighbouring inputs give unrelated outputs, so that the streams of
/// subtasks 1, 2, 3... do not start alike.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

Tally throw_points(const Draw& draw) {
    // std::mt19937_64 is the same sequence in every standard library; the 53 bits of a double
    // are taken by hand, since std::uniform_real_distribution's algorithm is the library's.
    std::mt19937_64 engine(mix(mix(draw.seed) + draw.index));
    auto uniform = [&] { return static_cast<double>(engine() >> 11) * 0x1p-53; };  // [0, 1)
    Tally tally{0, draw.points};
    for (std::uint64_t i = 0; i < draw.points; ++i) {
        const double x = uniform();
        const double y = uniform();
        if (x * x + y * y < 1.0)
            ++tally.inside;
    }
    return tally;
}

/// Subtask i of the problem: the points shared out evenly, the first ones one more.
Draw draw_of(const Problem& problem, std::uint64_t i) {
    const std::uint64_t base = problem.points / problem.subtasks;
    const std::uint64_t extra = problem.points % problem.subtasks;
    return Draw{problem.seed, i, base + (i < extra ? 1 : 0)};
}

// At namespace scope, so that this binary started as a worker finds map by the job's name.
const dtask::Job<Tally> monte_carlo_pi{
    "monte_carlo_pi",
    [](const Problem& problem, dtask::SplitHint) {
        return dtask::pieces(problem.subtasks,
                             [=](std::uint64_t i) { return draw_of(problem, i); });
    },
    throw_points,
    // Whole numbers: the sum is the same in any order.
    [](Tally total, Tally part) {
        return Tally{total.inside + part.inside, total.points + part.points};
    },
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

void print_help() {
    std::cout
        << "Usage: monte_carlo_pi [options]\n"
           "Estimates pi from random points in the unit square, on worker processes: the\n"
           "share inside the quarter circle tends to pi/4. The same estimate for any\n"
           "number of workers: each subtask seeds its generator from --seed and its index.\n\n"
           "Options:\n"
           "  --points N         random points (default 100000000)\n"
           "  --subtasks K       pieces to split them into (default 100)\n"
           "  --seed S           the seed of every subtask's generator (default 1)\n"
           "  --serial           draw the same points in this process alone, without dtask\n"
        << common_usage << "\n"
        << dtask::worker_usage();
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a worker process serves here and exits

    Problem problem;
    WhereToRun where;
    bool serial = false;
    CommandLine args("monte_carlo_pi", argc, argv);
    while (args.next()) {
        if (args.is("--points"))
            problem.points = args.number(1);
        else if (args.is("--subtasks"))
            problem.subtasks = args.number(1, 1'000'000'000);
        else if (args.is("--seed"))
            problem.seed = args.number();
        else if (args.is("--serial"))
            serial = true;
        else if (!args.common(where, print_help))
            args.unknown();
    }
    if (problem.subtasks > problem.points)
        args.fail("--subtasks must be at most --points");

    try {
        const auto start = std::chrono::steady_clock::now();
        Tally tally;
        if (serial) {
            for (std::uint64_t i = 0; i < problem.subtasks; ++i) {
                const Tally part = throw_points(draw_of(problem, i));
                tally = Tally{tally.inside + part.inside, tally.points + part.points};
            }
        } else {
            ProgressBar bar("monte_carlo_pi");  // on a terminal only
            tally = where.with_submitter([&](dtask::Submitter& submitter) {
                return submitter.run(monte_carlo_pi, problem, bar.attach({}));
            });
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        const double n = static_cast<double>(tally.points);
        const double estimate = 4.0 * static_cast<double>(tally.inside) / n;
        // Each point is inside with probability p = pi/4: the estimate's standard deviation
        // is 4 sqrt(p (1 - p) / n).
        const double p = std::numbers::pi / 4;
        const double standard_error = 4.0 * std::sqrt(p * (1 - p) / n);
        std::printf("pi is about %.9f: %llu of %llu points inside the quarter circle\n", estimate,
                    static_cast<unsigned long long>(tally.inside),
                    static_cast<unsigned long long>(tally.points));
        std::printf("off by %.2e, where the standard error is %.2e\n",
                    std::fabs(estimate - std::numbers::pi), standard_error);
        std::fprintf(stderr, "monte_carlo_pi: %.3g points per second, start-up included\n",
                     n / seconds);
    } catch (const std::exception& e) {
        std::cerr << "monte_carlo_pi: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
