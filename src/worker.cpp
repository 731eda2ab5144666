#include "worker.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <typeinfo>
#include <unordered_map>

#include <cxxabi.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <dtask/detail/job_model.hpp>
#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>

#include "batch.hpp"
#include "deadline.hpp"
#include "log.hpp"
#include "protocol.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* executor_endpoint = "inproc://dtask-executor";

/// The type and message of the exception being handled, whatever was thrown.
void describe_current_exception(Failure& failure) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    failure.exception_type = type != nullptr ? demangle(type->name()) : "unknown exception";
    try {
        throw;
    } catch (const std::exception& e) {
        failure.exception_type = demangle(typeid(e).name());
        failure.message = e.what();
    } catch (...) {
        failure.message = "(not derived from std::exception)";
    }
}

/// What the executor thread is running, so that the link can enforce the job's subtask
/// timeout, and the subtasks the broker revoked before they started.
class SubtaskWatch {
public:
    struct Running {
        std::uint64_t job = 0;
        std::uint64_t index = 0;
        std::chrono::milliseconds timeout{0};
        Clock::time_point deadline;
    };

    void start(std::uint64_t job, std::uint64_t index, std::chrono::milliseconds timeout) {
        std::lock_guard lock(mutex_);
        // Saturating: a timeout of milliseconds::max() means none, not an overflow.
        running_ = Running{job, index, timeout, deadline_after(Clock::now(), timeout)};
    }
    void stop() {
        std::lock_guard lock(mutex_);
        running_.reset();
    }
    std::optional<Running> running() const {
        std::lock_guard lock(mutex_);
        return running_;
    }

    void revoke(std::uint64_t job, std::uint64_t index) {
        std::lock_guard lock(mutex_);
        revoked_.emplace(job, index);
        any_revoked_.store(true, std::memory_order_relaxed);
    }
    /// True (once) if the broker revoked this subtask: another copy of it won.
    bool take_revoked(std::uint64_t job, std::uint64_t index) {
        if (!any_revoked_.load(std::memory_order_relaxed))
            return false;  // the common case costs no lock
        std::lock_guard lock(mutex_);
        const bool revoked = revoked_.erase({job, index}) != 0;
        any_revoked_.store(!revoked_.empty(), std::memory_order_relaxed);
        return revoked;
    }
    /// Forgets revocations of subtasks that ran before the revocation came.
    void forget_job(std::uint64_t job) {
        std::lock_guard lock(mutex_);
        std::erase_if(revoked_, [&](const auto& key) { return key.first == job; });
        any_revoked_.store(!revoked_.empty(), std::memory_order_relaxed);
    }
    void forget_all() {
        std::lock_guard lock(mutex_);
        revoked_.clear();
        any_revoked_.store(false, std::memory_order_relaxed);
    }

private:
    mutable std::mutex mutex_;
    std::optional<Running> running_;
    std::set<std::pair<std::uint64_t, std::uint64_t>> revoked_;
    std::atomic<bool> any_revoked_{false};
};

/// Runs map for the subtasks the I/O thread passes on, one at a time, in arrival order.
class Executor {
public:
    Executor(zmq::context_t& context, std::string worker_name, SubtaskWatch& watch)
        : socket_(context, zmq::socket_type::pair),
          worker_name_(std::move(worker_name)),
          watch_(watch) {
        tune(socket_);
        socket_.connect(executor_endpoint);
    }

    void run() {
        std::vector<zmq::message_t> frames;
        for (;;) {
            if (!receive(socket_, frames, true))
                continue;
            Inbound message = parse(frames, 0);  // the I/O thread validated it already
            switch (message.command) {
                case Command::job:
                    open_job(message);
                    break;
                case Command::task:
                    run_batch(message);
                    break;
                case Command::end:
                    jobs_.erase(message.fields[0]);
                    watch_.forget_job(message.fields[0]);
                    break;
                case Command::bye:
                    return;
                case Command::reconnect:
                    jobs_.clear();  // a new session: the old one's jobs will not be ended
                    watch_.forget_all();
                    break;
                default:
                    break;
            }
        }
    }

    /// Tells the link that no more subtasks will run here.
    void say_stopped() noexcept {
        try {
            std::array frames{header(Command::bye)};
            send(socket_, {}, frames);
        } catch (...) {
        }
    }

private:
    struct OpenJob {
        const JobModel* model = nullptr;
        std::shared_ptr<const void> shared;
        std::string unusable;                  // why this worker cannot run it, if it cannot
        std::chrono::milliseconds timeout{0};  // RunOptions::subtask_timeout; 0: none
    };

    void open_job(Inbound& message) {
        OpenJob& job = jobs_[message.fields[0]];
        job.timeout = std::chrono::milliseconds(message.fields[1]);
        const std::string name(as_text(message.body[0]));
        const std::string signature(as_text(message.body[1]));
        job.model = find_job(name);
        if (job.model == nullptr) {
            job.unusable = "this worker does not define job '" + name + "'";
        } else if (job.model->signature() != signature) {
            job.unusable = "this worker was built with a different definition of job '" + name +
                           "' (worker: " + job.model->signature() + "; client: " + signature + ")";
        } else {
            try {
                job.shared = job.model->load_shared(as_bytes(message.body[2]));
            } catch (...) {
                Failure failure;
                describe_current_exception(failure);
                job.unusable = failure.message;
            }
        }
        if (!job.unusable.empty())
            log_warning("worker " + worker_name_, job.unusable);
    }

    /// Runs map on each subtask of a batch, in order, and sends the partial results back as
    /// one batch. A failure ends the run of results before it: those go back first, then the
    /// failure. After a TransientError the batch goes on (the broker may retry that subtask
    /// alone); after any other failure the job fails, so the rest is not run.
    void run_batch(Inbound& message) {
        const std::uint64_t job_id = message.fields[0];
        const std::uint64_t first = message.fields[1];
        const std::uint64_t count = message.fields[2];
        if (watch_.take_revoked(job_id, first))
            return;  // another copy of it won already
        auto it = jobs_.find(job_id);
        if (it == jobs_.end() || !it->second.unusable.empty()) {
            Failure failure;
            failure.worker = worker_name_;
            if (it == jobs_.end()) {
                failure.kind = FailureKind::protocol;
                failure.message = "worker " + worker_name_ + " received subtask " +
                                  std::to_string(first) + " of job " + std::to_string(job_id) +
                                  " before the job's definition";
            } else {
                failure.kind = FailureKind::definition;
                failure.message = it->second.unusable;
            }
            send_failure(job_id, first, failure);
            return;
        }
        const OpenJob& job = it->second;
        const bool watched = job.timeout.count() > 0;
        BatchReader reader(as_bytes(message.body[0]));
        Run run(job_id, first);
        for (std::uint64_t i = 0; i < count; ++i) {
            const std::uint64_t index = first + i;
            std::span<const std::byte> subtask;
            Failure failure;
            failure.worker = worker_name_;
            try {
                if (!reader.next(subtask, "task batch"))
                    throw ProtocolError("malformed task batch: the header says " +
                                        std::to_string(count) + " subtasks, the frame holds " +
                                        std::to_string(i));
            } catch (const ProtocolError& e) {
                failure.kind = FailureKind::protocol;
                failure.message = "worker " + worker_name_ + ": " + e.what();
                send_run(run);
                send_failure(job_id, index, failure);
                return;
            }
            if (watched)
                watch_.start(job_id, index, job.timeout);
            run.writer.begin();
            bool mapped = false;
            try {
                job.model->run_map(job.shared.get(), subtask, index, run.writer.out());
                mapped = true;
            } catch (const TransientError&) {
                failure.kind = FailureKind::transient;
                describe_current_exception(failure);
            } catch (...) {
                failure.kind = FailureKind::exception;
                describe_current_exception(failure);
            }
            if (watched)
                watch_.stop();
            if (mapped) {
                run.writer.end();
                ++run.count;
                continue;
            }
            run.writer.abandon();
            send_run(run);
            send_failure(job_id, index, failure);
            if (failure.kind != FailureKind::transient)
                return;
            run.restart(index + 1);
        }
        send_run(run);
    }

    /// Consecutive partial results of one batch, on their way back as one message.
    struct Run {
        Run(std::uint64_t job_id, std::uint64_t first_index) : job(job_id), first(first_index) {}
        void restart(std::uint64_t next) {
            first = next;
            count = 0;
            bytes.clear();
            started = Clock::now();
        }

        std::uint64_t job;
        std::uint64_t first;
        std::uint64_t count = 0;
        std::string bytes;
        BatchWriter writer{bytes};
        Clock::time_point started = Clock::now();
    };

    /// Sends the results of a run, with the time map took for them (the client sizes its
    /// batches by it).
    void send_run(Run& run) {
        if (run.count == 0)
            return;
        const auto spent =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - run.started);
        std::array frames{header(Command::result, {run.job, run.first, run.count,
                                                   static_cast<std::uint64_t>(spent.count())}),
                          payload_frame(std::move(run.bytes))};
        send(socket_, {}, frames);
    }

    void send_failure(std::uint64_t job_id, std::uint64_t index, const Failure& failure) {
        std::array frames{header(Command::failure, {job_id, index}), encode_body(failure)};
        send(socket_, {}, frames);
    }

    zmq::socket_t socket_;
    std::string worker_name_;
    SubtaskWatch& watch_;
    std::unordered_map<std::uint64_t, OpenJob> jobs_;
};

/// The signals that stop a worker cleanly: blocked, and read from a signalfd by the link.
sigset_t stop_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    return signals;
}

/// Replaces this process with a fresh copy of itself, same command line, same pid: the one
/// way to get rid of a thread stuck in map. Never returns.
[[noreturn]] void restart_process(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    // The stuck map may hold a stdio stream's lock (blocked writing to a full pipe, say):
    // flush only the streams free now, rather than hang here.
    for (FILE* stream : {stdout, stderr}) {
        if (ftrylockfile(stream) == 0) {
            fflush_unlocked(stream);
            funlockfile(stream);
        }
    }
    // The new image sets up its own signal handling; it must not start with ours blocked.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    execv("/proc/self/exe", argv.data());
    log_warning("worker", std::string("cannot restart after a hung subtask (execv: ") +
                              std::strerror(errno) + "); exiting");
    std::_Exit(worker_failed);
}

/// The link to the broker, on the process's main thread.
class Link {
public:
    Link(zmq::context_t& context, const WorkerOptions& options, int signal_fd, SubtaskWatch& watch)
        : context_(context),
          options_(options),
          signal_fd_(signal_fd),
          watch_(watch),
          executor_(context, zmq::socket_type::pair) {
        tune(executor_);
        executor_.bind(executor_endpoint);
        name_ = process_name();
    }

    /// Returns the exit code.
    int run(Executor& executor) {
        std::promise<void> executor_done;
        auto executor_finished = executor_done.get_future();
        std::thread executor_thread([&] {
            try {
                executor.run();
            } catch (const std::exception& e) {
                log_warning("worker " + name_, std::string("executor stopped: ") + e.what());
                executor.say_stopped();
            }
            executor_done.set_value();
        });
        int code = worker_done;
        try {
            code = serve();
        } catch (const std::exception& e) {
            log_warning("worker " + name_,
                        std::string("stopped by an unexpected error: ") + e.what());
            code = worker_gave_up;
        }
        if (broker_ && code != worker_refused && code != worker_gave_up && code != worker_usage) {
            // Leaving on purpose: say so, so the broker requeues our subtasks at once
            // rather than after the heartbeat timeout. Never wait for it: a broker that is
            // not there must not keep the process alive.
            std::array leaving{header(Command::bye)};
            try {
                broker_.send(leaving[0], zmq::send_flags::dontwait);
            } catch (const zmq::error_t&) {
            }
        }
        if (code == worker_restart)
            restart_process(options_.argv);  // the executor is stuck: no tidying up
        std::array bye{header(Command::bye)};
        send(executor_, {}, bye);
        if (executor_finished.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
            // A map is still running and cannot be interrupted; closing the sockets now would
            // wait for it forever. End the process without tidying up.
            std::fflush(stdout);
            std::fflush(stderr);
            std::_Exit(code);
        }
        executor_thread.join();
        return code;
    }

private:
    void connect() {
        if (broker_) {
            // A new session: what the executor holds from the old one is void.
            std::array reset{header(Command::reconnect)};
            send(executor_, {}, reset);
        }
        broker_ = zmq::socket_t(context_, zmq::socket_type::dealer);
        tune(broker_);
        broker_.connect(options_.endpoint);
        Hello hello;
        hello.role = Role::worker;
        hello.name = name_;
        hello.platform = platform();
        hello.credits = options_.credits;
        hello.local = options_.local;
        hello.pid = getpid();
        hello.jobs = registered_jobs();
        std::array frames{header(Command::hello), encode_body(hello)};
        send(broker_, {}, frames);
        last_heard_ = Clock::now();
    }

    int serve() {
        try {
            connect();
        } catch (const zmq::error_t& e) {
            log_warning("worker " + name_, "cannot connect to '" + options_.endpoint +
                                               "': " + e.what() +
                                               " (an endpoint looks like tcp://host:5555)");
            broker_.close();
            return worker_usage;
        }
        auto silent_since = Clock::now();
        auto backoff = interval_;
        auto next_heartbeat = Clock::now() + interval_;
        auto now = Clock::now();  // read once per turn of the loop: a clock read is not free
        std::vector<zmq::message_t> frames;
        for (;;) {
            std::array<zmq::pollitem_t, 3> items{{{broker_.handle(), 0, ZMQ_POLLIN, 0},
                                                  {executor_.handle(), 0, ZMQ_POLLIN, 0},
                                                  {nullptr, signal_fd_, ZMQ_POLLIN, 0}}};
            // A subtask that started since the last look is seen here within one heartbeat
            // interval; the timeout is then enforced to the millisecond.
            const auto running = watch_.running();
            const auto wake_at =
                running ? std::min(next_heartbeat, running->deadline) : next_heartbeat;
            const auto wait =
                std::max(std::chrono::milliseconds(0),
                         std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now) +
                             std::chrono::milliseconds(1));
            protocol::poll(items, wait);
            now = Clock::now();
            if (items[2].revents & ZMQ_POLLIN)
                return worker_done;
            if (items[1].revents & ZMQ_POLLIN) {
                // Results and failures go straight on; all there are, so that a burst of
                // them costs one poll.
                for (int burst = 0; burst < 64 && receive(executor_, frames, false); ++burst) {
                    if (parse(frames, 0).command == Command::bye) {
                        // The executor stopped: its subtasks would never finish here.
                        log_warning("worker " + name_, "the executor thread stopped; leaving");
                        return worker_failed;
                    }
                    send(broker_, {}, frames);
                }
                next_heartbeat = now + interval_;
            }
            if (items[0].revents & ZMQ_POLLIN) {
                for (int burst = 0; burst < 64; ++burst) {
                    if (!receive(broker_, frames, false))
                        break;
                    last_heard_ = now;
                    silent_since = last_heard_;
                    backoff = interval_;
                    if (auto code = on_message(frames))
                        return *code;
                }
            }
            if (const auto hung = watch_.running(); hung && now >= hung->deadline)
                return report_hung(*hung);
            if (now >= next_heartbeat) {
                std::array beat{header(Command::heartbeat)};
                send(broker_, {}, beat);
                next_heartbeat = now + interval_;
            }
            if (now - last_heard_ > interval_ * liveness_ &&
                now - silent_since > options_.give_up) {
                log_warning("worker " + name_,
                            "the broker at " + options_.endpoint + " has been silent for " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   now - silent_since)
                                                   .count()) +
                                " s: giving up");
                return worker_gave_up;
            }
            if (now - last_heard_ > interval_ * liveness_ + backoff) {
                // Reconnect with a fresh socket, waiting longer each time.
                connect();
                backoff = std::min(backoff * 2, std::chrono::milliseconds(std::chrono::seconds(8)));
            }
        }
    }

    /// A subtask ran past its timeout: tells the broker, which gives it to another worker
    /// and drops this one, waits (briefly) for the broker to acknowledge, then restarts.
    int report_hung(const SubtaskWatch::Running& hung) {
        Failure failure;
        failure.kind = FailureKind::timeout;
        failure.worker = name_;
        failure.message = "subtask " + std::to_string(hung.index) + " ran longer than its " +
                          "timeout of " + std::to_string(hung.timeout.count()) + " ms on worker " +
                          name_;
        log_warning("worker " + name_,
                    failure.message + "; restarting this worker process (a thread stuck in map " +
                        "cannot be stopped)");
        std::array frames{header(Command::failure, {hung.job, hung.index}), encode_body(failure)};
        send(broker_, {}, frames);
        // The broker answers bye once it has taken the report; without that, a restart
        // could drop the report with the socket.
        const auto give_up_at = Clock::now() + std::chrono::seconds(2);
        std::vector<zmq::message_t> reply;
        for (auto now = Clock::now(); now < give_up_at; now = Clock::now()) {
            std::array<zmq::pollitem_t, 1> item{{{broker_.handle(), 0, ZMQ_POLLIN, 0}}};
            protocol::poll(item,
                           std::chrono::duration_cast<std::chrono::milliseconds>(give_up_at - now));
            while (receive(broker_, reply, false)) {
                try {
                    if (parse(reply, 0).command == Command::bye)
                        return worker_restart;
                } catch (const ProtocolError&) {
                }
            }
        }
        return worker_restart;
    }

    std::optional<int> on_message(std::vector<zmq::message_t>& frames) {
        Inbound message;
        try {
            message = parse(frames, 0);
        } catch (const ProtocolError& e) {
            log_warning("worker " + name_,
                        std::string("ignoring a malformed message from the broker: ") + e.what());
            return std::nullopt;
        }
        switch (message.command) {
            case Command::welcome:
                if (message.fields[0] > 0)
                    interval_ = std::chrono::milliseconds(message.fields[0]);
                if (message.fields[1] > 0)
                    liveness_ = static_cast<unsigned>(message.fields[1]);
                return std::nullopt;
            case Command::job:
            case Command::task:
            case Command::end:
                send(executor_, {}, std::span(frames));
                return std::nullopt;
            case Command::heartbeat:
                return std::nullopt;
            case Command::revoke:
                watch_.revoke(message.fields[0], message.fields[1]);
                return std::nullopt;
            case Command::notice:
                log_warning("worker " + name_, as_text(message.body[0]));
                return std::nullopt;
            case Command::reconnect:
                connect();
                return std::nullopt;
            case Command::bye:
                return worker_done;
            case Command::refuse:
                log_warning("worker " + name_, "refused by the broker at " + options_.endpoint +
                                                   ": " + std::string(as_text(message.body[0])));
                return worker_refused;
            default:
                log_warning("worker " + name_,
                            "ignoring a " + std::string(command_name(message.command)) +
                                " message, which a broker does not send to workers");
                return std::nullopt;
        }
    }

    zmq::context_t& context_;
    const WorkerOptions& options_;
    int signal_fd_;
    SubtaskWatch& watch_;
    zmq::socket_t executor_;
    zmq::socket_t broker_;
    std::string name_;
    std::chrono::milliseconds interval_{250};
    unsigned liveness_ = 5;
    Clock::time_point last_heard_;
};

}  // namespace

int run_worker(const WorkerOptions& options) {
    // SIGTERM and SIGINT end the worker cleanly through the poll loop; blocked before any
    // thread starts, so every thread inherits the mask and only the signalfd sees them.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        log_warning(
            "worker",
            "cannot watch for SIGTERM (signalfd failed); it will not stop the worker cleanly");
        pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    }

    int code = worker_done;
    {
        zmq::context_t context(1);
        SubtaskWatch watch;
        Link link(context, options, signal_fd, watch);
        Executor executor(context, process_name(), watch);
        code = link.run(executor);
    }
    if (signal_fd >= 0)
        close(signal_fd);
    return code;
}

}  // namespace dtask::detail
