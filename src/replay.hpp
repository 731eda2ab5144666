#pragma once
// Replay (PROGRAM --dtask-replay FILE, handled by dtask::init): one failed subtask's map run
// again from its repro bundle, alone, in the foreground of the host binary, with no broker, no
// socket and no fork, so that a debugger or a sanitizer sees it. It prints what map returned or
// threw; a crash crashes this process for real.

#include <optional>
#include <string>

namespace dtask::detail {

/// A replay's exit status: map returned, map threw, or the bundle could not be replayed
/// (unreadable, damaged, of another version, of a job this binary does not define or defines
/// otherwise, or its job-wide data does not decode). A crash ends the process by its signal.
inline constexpr int replay_returned = 0;
inline constexpr int replay_threw = 1;
inline constexpr int replay_unusable = 2;

/// The file `--dtask-replay FILE` (or `--dtask-replay=FILE`) names on the command line, if any;
/// an empty string if the option has no value.
std::optional<std::string> replay_argument(int argc, char** argv);

/// Replays the bundle at `path`: what map did to stdout, errors to stderr. Returns the status.
int replay(const std::string& path);

}  // namespace dtask::detail
