// checkpoint_cost: the rate of a job of 1 ms subtasks that keeps a checkpoint
// (RunOptions::checkpoint, written every 2 s by default), next to the same job without one,
// both in each repetition, in turns (docs/reliability.md).

#include <string>

#include <unistd.h>

#include "kernel.hpp"
#include "perf_jobs.hpp"
#include "scenarios.hpp"
#include "temp_dir.hpp"

namespace perf {

std::vector<Figure> checkpoint_cost(const Settings& settings) {
    const double ns = spin_ns_per_iteration(std::chrono::milliseconds(settings.quick ? 5 : 100));
    const SpinPlan plan{settings.quick ? 200u : 8000u,
                        static_cast<std::uint64_t>(1e6 / ns)};  // 1 ms each
    dtask::Cluster cluster(two_local_workers());
    wait_for_workers(cluster, 2);
    test_support::TempDir dir("dtask-perf-checkpoint");
    const std::string path = dir.path() + "/job.checkpoint";

    Figure figure{"checkpoint_cost", "checkpoint_cost.rate_with_checkpoint", "subtasks/s",
                  Better::higher};
    figure.baseline = "rate_without_checkpoint";
    figure.target = Target::ratio_at_least(0.95);
    figure.detail("subtasks", static_cast<double>(plan.subtasks));
    figure.detail("subtask_ms", 1.0);
    figure.detail("checkpoint_interval_ms",
                  static_cast<double>(dtask::RunOptions{}.checkpoint_interval.count()));
    auto rate = [&](const dtask::RunOptions& options) {
        const auto start = Clock::now();
        check_result("spin job", cluster.run(spin_job, plan, options), plan.subtasks);
        return static_cast<double>(plan.subtasks) / seconds_since(start);
    };
    for (int rep = 0; rep < settings.repeat; ++rep) {
        // Which goes first alternates, so that a machine growing busier favours neither.
        const bool with_first = rep % 2 == 1;
        const double first =
            rate(with_first ? dtask::RunOptions{.checkpoint = path} : dtask::RunOptions{});
        const double second =
            rate(with_first ? dtask::RunOptions{} : dtask::RunOptions{.checkpoint = path});
        const double with = with_first ? first : second;
        const double without = with_first ? second : first;
        if (access(path.c_str(), F_OK) == 0)
            throw WrongResult("a checkpointed job that succeeded left its checkpoint");
        figure.add(with, without);
    }
    return {figure};
}

}  // namespace perf
