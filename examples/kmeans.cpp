// k-means clustering of points in the plane: an iterative job whose data stays on the
// workers. The points are placed once with share(); each iteration's job sends only the
// current centres, in its subtasks, and every worker reuses the points it already holds.
//
//   kmeans                       200000 points, 8 clusters, 10 iterations
//   kmeans --resend              the points sent as job-wide data with every iteration
//   kmeans --serial              the same iterations in this process alone
//
// The centres go to standard output; the time per iteration to standard error.

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <dtask/dtask.hpp>

#include "kmeans_job.hpp"
#include "progress_bar.hpp"

using namespace kmeans;

namespace {

struct Settings {
    std::uint64_t points = 200'000;
    std::uint64_t clusters = 8;
    std::uint64_t iterations = 10;
    std::uint64_t slices = 0;  // 0: four per worker
    enum class Mode { shared, resend, serial } mode = Mode::shared;
    dtask::ClusterOptions cluster;
    std::optional<std::string> connect;
};

void print_help() {
    std::cout << "Usage: kmeans [options]\n"
                 "Clusters generated points in the plane with k-means; the points are placed\n"
                 "on the workers once (dtask share) and each iteration sends only the centres.\n\n"
                 "Options:\n"
                 "  --points N         points (default 200000)\n"
                 "  --k K              clusters (default 8)\n"
                 "  --iterations I     iterations (default 10)\n"
                 "  --slices S         subtasks per iteration (default: four per worker)\n"
                 "  --workers W        local worker processes (default: one per core)\n"
                 "  --connect ENDPOINT submit to the broker at ENDPOINT instead of starting one\n"
                 "  --resend           send the points with every iteration (for comparison)\n"
                 "  --serial           iterate in this process alone, without dtask\n"
                 "  --help             this text\n\n"
              << dtask::worker_usage();
}

std::uint64_t number(std::string_view flag, std::string_view text) {
    std::uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        std::cerr << "kmeans: " << flag << " takes a whole number, not '" << text << "'\n";
        std::exit(2);
    }
    return value;
}

/// Runs the iterations with `iterate(centres) -> Sums`; returns the last centres.
template <class Iterate>
std::vector<Point> iterate_all(const Settings& settings, const Points& points, Iterate&& iterate) {
    std::vector<Point> centres(points.begin(),
                               points.begin() + static_cast<std::ptrdiff_t>(settings.clusters));
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar("kmeans iterations");  // on a terminal only
    for (std::uint64_t i = 0; i < settings.iterations; ++i) {
        centres = next_centres(centres, iterate(centres));
        bar.step(i + 1, settings.iterations);
    }
    bar.finish();
    const std::chrono::duration<double, std::milli> spent =
        std::chrono::steady_clock::now() - start;
    std::fprintf(
        stderr, "%.2f ms per iteration\n",
        spent.count() / static_cast<double>(std::max<std::uint64_t>(1, settings.iterations)));
    return centres;
}

template <class Submitter>
std::vector<Point> run_on(Submitter& submitter, const Settings& settings, const Points& points) {
    auto step = [&](const std::vector<Point>& centres) {
        const std::uint64_t slices = settings.slices != 0
                                         ? settings.slices
                                         : 4 * std::max<std::size_t>(1, submitter.workers());
        return Step{centres, points.size(), slices};
    };
    if (settings.mode == Settings::Mode::resend) {
        return iterate_all(settings, points, [&](const std::vector<Point>& centres) {
            return submitter.run(kmeans_step, step(centres), points);
        });
    }
    const auto shared = submitter.share(points);  // once: the workers keep it
    return iterate_all(settings, points, [&](const std::vector<Point>& centres) {
        return submitter.run(kmeans_step, step(centres), shared);
    });
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);

    Settings settings;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                std::cerr << "kmeans: " << arg << " needs a value (see --help)\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            print_help();
            return 0;
        } else if (arg == "--points") {
            settings.points = number(arg, value());
        } else if (arg == "--k") {
            settings.clusters = number(arg, value());
        } else if (arg == "--iterations") {
            settings.iterations = number(arg, value());
        } else if (arg == "--slices") {
            settings.slices = number(arg, value());
        } else if (arg == "--workers") {
            settings.cluster.local_workers = static_cast<int>(number(arg, value()));
        } else if (arg == "--connect") {
            settings.connect = std::string(value());
        } else if (arg == "--resend") {
            settings.mode = Settings::Mode::resend;
        } else if (arg == "--serial") {
            settings.mode = Settings::Mode::serial;
        } else {
            std::cerr << "kmeans: unknown option '" << arg << "' (see --help)\n";
            return 2;
        }
    }
    if (settings.clusters == 0 || settings.points < settings.clusters) {
        std::cerr << "kmeans: --k must be at least 1 and at most --points\n";
        return 2;
    }

    try {
        const Points points = make_points(settings.points, settings.clusters);
        std::vector<Point> centres;
        if (settings.mode == Settings::Mode::serial) {
            centres = iterate_all(settings, points, [&](const std::vector<Point>& current) {
                return assign(points, 0, points.size(), current);
            });
        } else if (settings.connect) {
            dtask::Client client(*settings.connect);
            centres = run_on(client, settings, points);
        } else {
            dtask::Cluster cluster(settings.cluster);
            // Every local worker up first, so that each iteration is timed with all of them.
            const int local = settings.cluster.local_workers;
            cluster.wait_for_workers(local > 0   ? static_cast<std::size_t>(local)
                                     : local < 0 ? std::max(1u, std::thread::hardware_concurrency())
                                                 : 1,
                                     std::chrono::seconds(30));
            centres = run_on(cluster, settings, points);
        }
        for (const Point& centre : centres)
            std::printf("%.3f %.3f\n", centre.x, centre.y);
    } catch (const std::exception& e) {
        std::cerr << "kmeans: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
