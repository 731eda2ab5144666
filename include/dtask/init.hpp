#pragma once
/// \file Worker mode: the host binary started again as a worker.

#include <dtask/export.hpp>

namespace dtask {

/// Call first thing in main(). In a process started as a worker (with
/// `--dtask-worker ENDPOINT` on the command line, or DTASK_WORKER=ENDPOINT in the
/// environment) it serves the broker at ENDPOINT and exits the process when done; anywhere
/// else it checks the job definitions and returns; jobs constructed after it are refused
/// (JobDefinitionError). A local worker whose main() does not call it exits as soon as it
/// creates a Cluster or a Client, and its host's jobs fail at once saying so.
///
/// Worker options: --dtask-worker ENDPOINT, --dtask-credits N (batches held at once),
/// --dtask-give-up SECONDS (how long to try to reach a silent broker before leaving).
DTASK_EXPORT void init(int argc, char** argv);

/// The worker options above as lines for a program's --help.
DTASK_EXPORT const char* worker_usage() noexcept;

}  // namespace dtask
