#include "wire/failure.hpp"

#include <new>
#include <typeinfo>

#include <cxxabi.h>

#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {

using namespace protocol;

void describe_current_exception(Failure& failure) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    failure.exception_type = type != nullptr ? demangle(type->name()) : "unknown exception";
    try {
        throw;
    } catch (const std::bad_alloc& e) {
        // Said as what happened: the worker ran out of memory (or map asked for an absurd
        // size), which a bare "std::bad_alloc" leaves the user to guess.
        failure.exception_type = demangle(typeid(e).name());
        failure.message = std::string("out of memory (") + e.what() + ")";
    } catch (const std::exception& e) {
        failure.exception_type = demangle(typeid(e).name());
        failure.message = e.what();
    } catch (...) {
        failure.message = "(not derived from std::exception)";
    }
}

std::exception_ptr failure_error(const zmq::message_t& report, const std::string& job_name,
                                 std::uint64_t index, const std::vector<std::string>& notices,
                                 const std::string& repro_bundle) {
    std::exception_ptr error;
    try {
        auto failure = decode_body<Failure>(report, "a failure report");
        switch (failure.kind) {
            case FailureKind::timeout:
                error = std::make_exception_ptr(TimeoutError(TimeoutError::Reason::subtask_timeout,
                                                             failure.message, repro_bundle));
                break;
            case FailureKind::exception:
            case FailureKind::transient:
                error = std::make_exception_ptr(TaskError(job_name, index, failure.worker,
                                                          failure.exception_type, failure.message,
                                                          repro_bundle));
                break;
            case FailureKind::worker_lost:
                error = std::make_exception_ptr(PoisonSubtaskError(failure.message, repro_bundle));
                break;
            case FailureKind::no_worker: {
                std::string text = failure.message;
                for (const auto& notice : notices)
                    text += "; " + notice;
                error =
                    std::make_exception_ptr(TimeoutError(TimeoutError::Reason::no_worker, text));
                break;
            }
            case FailureKind::definition:
                error = std::make_exception_ptr(JobDefinitionError(failure.message));
                break;
            case FailureKind::protocol:
                error = std::make_exception_ptr(ProtocolError(failure.message));
                break;
            case FailureKind::limit:
                error = std::make_exception_ptr(LimitError(failure.message));
                break;
            case FailureKind::shutdown:
                error = std::make_exception_ptr(BrokerShutdownError(failure.message));
                break;
            default:
                error = std::make_exception_ptr(Error(failure.message));
                break;
        }
    } catch (const ProtocolError& e) {
        error = std::make_exception_ptr(
            ProtocolError("job '" + job_name +
                          "' failed, and the broker's report of why was unreadable: " + e.what()));
    }
    return error;
}

std::exception_ptr deadline_error(const std::string& job_name, std::chrono::milliseconds deadline,
                                  const Progress& progress) {
    return std::make_exception_ptr(TimeoutError(
        TimeoutError::Reason::deadline,
        "job '" + job_name + "' passed its deadline of " + std::to_string(deadline.count()) +
            " ms with " + std::to_string(progress.done) + " of " +
            (progress.total_known ? std::to_string(progress.total)
                                  : "at least " + std::to_string(progress.total)) +
            " subtasks done; it was cancelled"));
}

}  // namespace dtask::detail
