#pragma once
/// \file
/// Worker mode: the host binary started again as a worker serves inside dtask::init() and
/// never returns to main().

#include <dtask/export.hpp>

namespace dtask {

/// Call first thing in main(), before parsing your own options. In a process started as a
/// worker (with `--dtask-worker ENDPOINT` on the command line, or DTASK_WORKER=ENDPOINT in
/// the environment) it serves the broker at ENDPOINT and exits the process when done,
/// without returning. Anywhere else it checks the job definitions, reads DTASK_LOG and
/// returns; jobs constructed after it are refused (JobDefinitionError). A local worker whose
/// main() does not call it exits as soon as it creates a Cluster or a Client, and its host's
/// jobs fail at once saying so. Throws JobDefinitionError if two jobs share a name.
///
/// Worker options (worker_usage() lists them): `--dtask-worker ENDPOINT`,
/// `--dtask-token-file PATH`, `--dtask-insecure-tcp`, `--dtask-credits N` (batches held at
/// once, default 256), `--dtask-give-up SECONDS` (how long to try to reach a silent broker
/// before leaving, default 60). A remote worker's join token comes from DTASK_TOKEN or the file
/// DTASK_TOKEN_FILE names, never from the command line, where `ps` would show it.
///
/// With `--dtask-replay FILE` it runs the map of the failed subtask in repro bundle FILE
/// (RunOptions::replay_dir) in this process, in the foreground, prints what it returned or
/// threw, and exits: 0 if map returned, 1 if it threw, 2 if FILE cannot be replayed (unreadable,
/// damaged, another format version, a job this binary does not define or defines otherwise);
/// a crash in map crashes the process, where a debugger or a sanitizer sees it.
///
/// A worker's exit status: 0 told to leave or stopped by SIGTERM or SIGINT (it tells the
/// broker, which gives its subtasks to others), 2 a bad command line or a missing token,
/// 3 refused by the broker (a wrong or rotated token, another platform), 4 gave up on a
/// silent broker, 5 stopped by an unexpected error; the reason is on stderr.
DTASK_EXPORT void init(int argc, char** argv);

/// The worker options as lines for a program's `--help`: a static string, never null.
DTASK_EXPORT const char* worker_usage() noexcept;

}  // namespace dtask
