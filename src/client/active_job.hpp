#pragma once
// The active job record: one per job on a connection, found with one map lookup per message,
// and composed of the parts each policy keeps (batch sizer, split window, reduce order), and
// its strand, where its split and reduce run, with what is out there.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <dtask/detail/run_state.hpp>

#include "client/kept_batches.hpp"
#include "client/reduce_order.hpp"
#include "client/split_window.hpp"
#include "client/user_code.hpp"
#include "wire/batch_sizer.hpp"

namespace dtask::detail {

struct ActiveJob {
    using Clock = std::chrono::steady_clock;

    explicit ActiveJob(std::shared_ptr<RunState> state)
        : run(std::move(state)),
          sizer(run->run_options().batch_size),
          window(run->run_options().window, run->run_options().window_bytes,
                 run->run_options().reduce_bytes),
          order(run->job_options().order) {}

    std::shared_ptr<RunState> run;
    BatchSizer sizer;                  // subtasks in the next batch
    SplitWindow window;                // how many more may be split off
    FoldOrder order;                   // which results fold now
    bool keeps_batches = false;        // for a restarted broker, or for repro bundles
    KeptBatches kept;                  // sent and not wholly back, if keeps_batches
    bool exhausted = false;            // split has no more
    std::shared_ptr<Strand> strand;    // where its split and reduce run
    bool splitting = false;            // a split request is out
    bool folding = false;              // a fold request is out
    bool tail_told = false;            // split_done sent while the window is held by partials
    bool fold_listed = false;          // in the loop's fold list
    std::vector<FoldRun> to_fold;      // waiting for the fold out
    std::size_t to_fold_bytes = 0;     // their frames' sizes
    std::size_t folding_bytes = 0;     // the fold out's
    std::vector<std::string> notices;  // from the broker, for the error
    // Repro bundles (RunOptions::replay_dir): where they go, empty for nowhere.
    std::string replay_dir;
    Clock::time_point deadline = Clock::time_point::max();  // RunOptions::deadline
    // RunOptions::on_progress: when it is next called; max if never (none, or it threw).
    Clock::time_point next_report = Clock::time_point::max();
};

}  // namespace dtask::detail
