#include <cerrno>
#include <string>
#include <utility>

#include <dtask/error.hpp>

namespace dtask {
namespace {

/// What an error's message says of its repro bundle: where it is and how to replay it, with
/// the program as it was started (the host: the binary that defines the job).
std::string naming_bundle(const std::string& repro_bundle) {
    if (repro_bundle.empty())
        return {};
    return "; repro bundle: " + repro_bundle +
           " (rerun the subtask's map in the foreground: " + program_invocation_name +
           " --dtask-replay " + repro_bundle + ")";
}

}  // namespace

TaskError::TaskError(std::string job, std::uint64_t subtask, std::string worker,
                     std::string exception_type, std::string exception_message,
                     std::string repro_bundle)
    : Error("job '" + job + "': subtask " + std::to_string(subtask) + " failed on worker " +
            worker + ": " + exception_type + ": " + exception_message +
            naming_bundle(repro_bundle)),
      job_(std::move(job)),
      subtask_(subtask),
      worker_(std::move(worker)),
      exception_type_(std::move(exception_type)),
      exception_message_(std::move(exception_message)),
      repro_bundle_(std::move(repro_bundle)) {}

PoisonSubtaskError::PoisonSubtaskError(const std::string& what, std::string repro_bundle)
    : Error(what + naming_bundle(repro_bundle)), repro_bundle_(std::move(repro_bundle)) {}

TimeoutError::TimeoutError(Reason reason, const std::string& what, std::string repro_bundle)
    : Error(what + naming_bundle(repro_bundle)),
      reason_(reason),
      repro_bundle_(std::move(repro_bundle)) {}

}  // namespace dtask
