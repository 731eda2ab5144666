#pragma once
// Where and how the host writes repro bundles (repro_bundle.hpp): into the directory a run
// names (RunOptions::replay_dir, else DTASK_REPLAY_DIR), never anywhere by default; one file
// per job and subtask, named from the job's name made safe for a file name; written to a
// temporary file and renamed into place, so a reader never sees half a bundle; readable by
// its owner alone; at most max_bundles_per_job files per job from one process.

#include <cstdint>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include <dtask/detail/run_state.hpp>
#include <dtask/options.hpp>

#include "client/kept_batches.hpp"
#include "repro_bundle.hpp"

namespace dtask::detail {

/// Bundle files one process writes for one job at most (a file written again counts once):
/// a program that runs a failing job in a loop does not fill the disk.
inline constexpr unsigned max_bundles_per_job = 8;

/// Where a run's bundles go: RunOptions::replay_dir, else DTASK_REPLAY_DIR; empty: nowhere.
std::string replay_directory(const RunOptions& options);

/// The file name of the bundle of subtask `index` of job `job`: "JOB.subtask-N.dtask-replay",
/// the name with every character but letters, digits, '-', '_' and '.' replaced by '_', cut
/// to 64 characters, without a leading '.', and followed by a hash of the whole name when it
/// was changed, so that two names do not share a file.
std::string bundle_file_name(std::string_view job, std::uint64_t index);

/// Writes `bundle` into `directory` (created if missing) and returns the file's absolute path.
/// Throws Error saying why not: the directory or the file cannot be written, or this process
/// has written max_bundles_per_job for the job already.
std::string write_bundle(const std::string& directory, const ReproBundle& bundle);

/// The bundle of subtask `index` of `run`, which failed as the broker's `report` says, written
/// into `directory` from the subtask's bytes in `kept`. Returns its path; empty, with a
/// warning saying why, if none was written (or the failure is not the subtask's own).
std::string write_failure_bundle(const std::string& directory, const RunState& run,
                                 const KeptBatches& kept, std::uint64_t index,
                                 const zmq::message_t& report);

}  // namespace dtask::detail
