#include <utility>

#include <dtask/error.hpp>

namespace dtask {

TaskError::TaskError(std::string job, std::uint64_t subtask, std::string worker,
                     std::string exception_type, std::string exception_message)
    : Error("job '" + job + "': subtask " + std::to_string(subtask) + " failed on worker " +
            worker + ": " + exception_type + ": " + exception_message),
      job_(std::move(job)),
      subtask_(subtask),
      worker_(std::move(worker)),
      exception_type_(std::move(exception_type)),
      exception_message_(std::move(exception_message)) {}

TimeoutError::TimeoutError(Reason reason, const std::string& what) : Error(what), reason_(reason) {}

}  // namespace dtask
