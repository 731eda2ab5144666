#pragma once
/// \file
/// dtask's messages for a person (a worker joined, a job ended, a peer was refused): their
/// levels, and how a host application takes them instead of stderr (docs/observability.md).

#include <functional>
#include <string_view>

#include <dtask/export.hpp>

namespace dtask {

/// How much a message matters, most first. A message is written if its level is at or
/// above the threshold: DTASK_LOG (error, warn, info, debug, or quiet for none), else warn
/// in a program that embeds dtask and info in dtaskd.
enum class LogLevel {
    error,  ///< a loop stopped by an unexpected error; a worker exiting because of one
    warn,   ///< a worker lost while holding subtasks, a client gone, a peer refused
    info,   ///< a worker joined or left, a job started or ended (logged by the broker)
    debug   ///< details for finding a problem (none yet)
};

/// The level's name as DTASK_LOG spells it: "error", "warn", "info" or "debug".
DTASK_EXPORT std::string_view log_level_name(LogLevel level) noexcept;

/// Receives each message written: its level, the part of dtask that wrote it ("broker",
/// "worker", "client", or "log" about DTASK_LOG) and its text, one line without a newline.
using LogHandler =
    std::function<void(LogLevel level, std::string_view component, std::string_view text)>;

/// Hands every later message of this process to `handler` instead of writing it to stderr;
/// nullptr writes to stderr again. The handler is called on the thread that logs (the
/// broker's, the client's I/O thread...), one call at a time, and must not block for long.
/// When this returns, no call to a previous handler is still running (unless it is called
/// from a handler). Messages a handler makes dtask write go to stderr. Local worker
/// processes are other processes: their messages go to stderr, which they share with the
/// host.
DTASK_EXPORT void set_log_handler(LogHandler handler);

/// Sets the threshold of this process, in place of DTASK_LOG's. Local workers started after
/// it keep DTASK_LOG's: they are other processes.
DTASK_EXPORT void set_log_level(LogLevel level) noexcept;

}  // namespace dtask
