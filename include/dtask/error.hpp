#pragma once
/// \file
/// Exceptions thrown by dtask. Every error is a dtask::Error; catch a subclass to treat one
/// kind of failure on its own. JobHandle::get() and run() rethrow what the job failed with;
/// an exception thrown by your own split pieces or reduce is rethrown as it is. Each class is
/// exported whole (DTASK_EXPORT): one type_info across a shared libdtask's boundary, so that
/// a catch in your program matches what the library throws.

#include <cstdint>
#include <stdexcept>
#include <string>

#include <dtask/export.hpp>

namespace dtask {

/// Base of every exception dtask throws. ZeroMQ and cereal exceptions never escape raw. Thrown
/// as itself for misuse (a JobHandle with no job, a result taken twice, an empty or released
/// Shared handle, invalid options), and for a job whose Cluster or Client was destroyed while
/// it ran, whose on_progress threw, or whose shared data the broker refused.
class DTASK_EXPORT Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A job definition is wrong, in a way the compiler could not see. Two jobs under one name
/// (thrown by init(), and by the Cluster and Client constructors), a Job constructed after
/// init() (thrown by its constructor), an input or job-wide data of the wrong type given to
/// submit() or run(), or job-wide data that a worker could not decode.
class DTASK_EXPORT JobDefinitionError : public Error {
public:
    using Error::Error;
};

/// map threw an exception on a worker (a TransientError too, unless the job retries it and
/// has attempts left). Carries where and what, so the caller can tell which piece of the
/// input was bad without reading worker logs. The job fails at the first such subtask.
class DTASK_EXPORT TaskError : public Error {
public:
    /// Made by dtask from what a worker reported; what() reads "job 'JOB': subtask N failed
    /// on worker WORKER: TYPE: MESSAGE", then names the repro bundle if one was written.
    TaskError(std::string job, std::uint64_t subtask, std::string worker,
              std::string exception_type, std::string exception_message,
              std::string repro_bundle = {});

    /// The job's name.
    const std::string& job() const noexcept { return job_; }
    /// The subtask's index: its place in the order split yielded the pieces, from 0.
    std::uint64_t subtask() const noexcept { return subtask_; }
    /// The worker it failed on, as "host:pid".
    const std::string& worker() const noexcept { return worker_; }
    /// The exception's type, demangled (e.g. "std::out_of_range").
    const std::string& exception_type() const noexcept { return exception_type_; }
    /// The exception's what(), as the worker saw it.
    const std::string& exception_message() const noexcept { return exception_message_; }
    /// The repro bundle written for the subtask (RunOptions::replay_dir), which
    /// `PROGRAM --dtask-replay PATH` runs again; empty if none was.
    const std::string& repro_bundle() const noexcept { return repro_bundle_; }

private:
    std::string job_;
    std::uint64_t subtask_;
    std::string worker_;
    std::string exception_type_;
    std::string exception_message_;
    std::string repro_bundle_;
};

/// A subtask killed the worker running it, or made it fall silent, on every attempt: more
/// often than RunOptions::max_attempts allows, so it looks like a poison pill. The message
/// names the subtask and how the last worker died.
class DTASK_EXPORT PoisonSubtaskError : public Error {
public:
    using Error::Error;
    /// Made by dtask: `what`, then the repro bundle named if one was written.
    PoisonSubtaskError(const std::string& what, std::string repro_bundle);

    /// The repro bundle written for the subtask (RunOptions::replay_dir); empty if none was.
    const std::string& repro_bundle() const noexcept { return repro_bundle_; }

private:
    std::string repro_bundle_;
};

/// The old name of PoisonSubtaskError, which said less about what happened.
using WorkerLostError [[deprecated("renamed PoisonSubtaskError")]] = PoisonSubtaskError;

/// The job was cancelled through its JobHandle.
class DTASK_EXPORT CancelledError : public Error {
public:
    using Error::Error;
};

/// The job could not finish in time; reason() says which limit it hit, and the message names
/// the option that sets it.
class DTASK_EXPORT TimeoutError : public Error {
public:
    /// Which time limit the job hit.
    enum class Reason {
        no_worker,        ///< no worker served the job within RunOptions::worker_wait; the
                          ///< message names workers with another definition of the job
        subtask_timeout,  ///< a subtask ran past RunOptions::subtask_timeout on every attempt
        deadline,         ///< the job passed its RunOptions::deadline and was cancelled
    };

    /// Made by dtask: `what` is the message, naming the job and the limit, then the repro
    /// bundle if one was written (subtask_timeout only).
    TimeoutError(Reason reason, const std::string& what, std::string repro_bundle = {});

    /// Which limit the job hit.
    Reason reason() const noexcept { return reason_; }
    /// The repro bundle written for the subtask that timed out (RunOptions::replay_dir);
    /// empty if none was.
    const std::string& repro_bundle() const noexcept { return repro_bundle_; }

private:
    Reason reason_;
    std::string repro_bundle_;
};

/// The broker refused the job: it would take its client past one of the broker's limits. The
/// limits are on jobs, job-wide data and queued subtask bytes per client
/// (ClusterOptions::max_jobs_per_client and the next two, dtaskd's `--max-jobs-per-client`
/// and the next two). The message names the limit; the client's other jobs go on. A
/// Cluster's own jobs have no such limits.
class DTASK_EXPORT LimitError : public Error {
public:
    using Error::Error;
};

/// Throw this (or a class derived from it) from map to say that the failure may not happen
/// again, as with a resource that was briefly unavailable. With RunOptions::retry_transient the
/// subtask is run again, up to RunOptions::max_attempts; without, it fails the job like any
/// other exception (TaskError).
class DTASK_EXPORT TransientError : public Error {
public:
    using Error::Error;
};

/// Sockets, endpoints, malformed or incompatible messages: the transport between host,
/// broker and workers failed. Thrown by the Cluster constructor for an endpoint it cannot
/// bind, by the Client constructor for one ZeroMQ cannot parse; a job fails with it when no
/// broker answers, the broker refuses the client (a wrong or rotated token: every later job
/// fails too), goes silent, or no longer knows the client (it restarted).
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
