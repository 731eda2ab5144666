#pragma once
// Failure kinds (protocol::FailureKind), which every process shares, and the exception each
// one fails a job with on its client: the one a caller would catch for that cause.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <zmq.hpp>

#include <dtask/detail/run_state.hpp>

namespace dtask::detail {

namespace protocol {
struct Failure;
}

/// Fills `failure`'s exception type and message from the exception being handled, whatever
/// was thrown: what a worker reports of map's exception, and replay prints.
void describe_current_exception(protocol::Failure& failure);

/// The exception for a failure report (a `failure` message's body) about subtask `index` of
/// job `job_name`. A no_worker timeout adds the broker's `notices` about the job; a failure
/// of the subtask itself names its `repro_bundle`, if one was written; a report that does
/// not decode becomes a ProtocolError saying so.
std::exception_ptr failure_error(const zmq::message_t& report, const std::string& job_name,
                                 std::uint64_t index, const std::vector<std::string>& notices,
                                 const std::string& repro_bundle = {});

/// The exception for a job that passed its RunOptions::deadline (`deadline`) with `progress`.
std::exception_ptr deadline_error(const std::string& job_name, std::chrono::milliseconds deadline,
                                  const Progress& progress);

}  // namespace dtask::detail
