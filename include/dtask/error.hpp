#pragma once
/// \file Exceptions thrown by dtask. Every error is a dtask::Error; catch a subclass to treat
/// one kind of failure on its own. Each class is exported whole (DTASK_EXPORT): one type_info
/// across a shared libdtask's boundary, so that a host's catch matches what the library throws.

#include <cstdint>
#include <stdexcept>
#include <string>

#include <dtask/export.hpp>

namespace dtask {

/// Base of every exception dtask throws. ZeroMQ and cereal exceptions never escape raw.
class DTASK_EXPORT Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A job definition is wrong: two jobs under one name, an input of the wrong type, misuse
/// of the API that could only be seen at run time.
class DTASK_EXPORT JobDefinitionError : public Error {
public:
    using Error::Error;
};

/// map threw an exception on a worker. Carries where and what, so the caller can tell which
/// piece of the input was bad without reading worker logs.
class DTASK_EXPORT TaskError : public Error {
public:
    TaskError(std::string job, std::uint64_t subtask, std::string worker,
              std::string exception_type, std::string exception_message);

    const std::string& job() const noexcept { return job_; }
    std::uint64_t subtask() const noexcept { return subtask_; }
    const std::string& worker() const noexcept { return worker_; }
    const std::string& exception_type() const noexcept { return exception_type_; }
    const std::string& exception_message() const noexcept { return exception_message_; }

private:
    std::string job_;
    std::uint64_t subtask_;
    std::string worker_;
    std::string exception_type_;
    std::string exception_message_;
};

/// A subtask killed the worker running it, or made it fall silent, on every attempt: more
/// often than RunOptions::max_attempts allows, so it looks like a poison pill. The message
/// names the subtask and how the last worker died.
class DTASK_EXPORT PoisonSubtaskError : public Error {
public:
    using Error::Error;
};

/// The old name of PoisonSubtaskError, which said less about what happened.
using WorkerLostError [[deprecated("renamed PoisonSubtaskError")]] = PoisonSubtaskError;

/// The job was cancelled through its JobHandle.
class DTASK_EXPORT CancelledError : public Error {
public:
    using Error::Error;
};

/// The job could not finish in time; reason() says which limit it hit.
class DTASK_EXPORT TimeoutError : public Error {
public:
    enum class Reason {
        no_worker,        ///< no worker served the job within RunOptions::worker_wait
        subtask_timeout,  ///< a subtask ran past RunOptions::subtask_timeout on every attempt
        deadline,         ///< the job passed its RunOptions::deadline and was cancelled
    };

    TimeoutError(Reason reason, const std::string& what);

    Reason reason() const noexcept { return reason_; }

private:
    Reason reason_;
};

/// The broker refused the job: it would take its client past one of the broker's limits
/// (jobs, job-wide data or queued subtask bytes per client). The message names the limit;
/// the client's other jobs go on.
class DTASK_EXPORT LimitError : public Error {
public:
    using Error::Error;
};

/// Throw this (or a class derived from it) from map to say that the failure may not happen
/// again, e.g. a resource that was briefly unavailable. With RunOptions::retry_transient the
/// subtask is run again, up to RunOptions::max_attempts; without, it fails the job like any
/// other exception (TaskError).
class DTASK_EXPORT TransientError : public Error {
public:
    using Error::Error;
};

/// Sockets, endpoints, malformed or incompatible messages: the transport between host,
/// broker and workers failed.
class DTASK_EXPORT TransportError : public Error {
public:
    using Error::Error;
};

/// The broker shut down while the job ran. A TransportError, so that code which treats
/// every lost broker alike keeps doing so.
class DTASK_EXPORT BrokerShutdownError : public TransportError {
public:
    using TransportError::TransportError;
};

/// A peer sent a message that does not follow the dtask protocol (truncated, garbage, or
/// from an incompatible version).
class DTASK_EXPORT ProtocolError : public TransportError {
public:
    using TransportError::TransportError;
};

}  // namespace dtask
