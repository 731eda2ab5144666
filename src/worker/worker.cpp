#include "worker/worker.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>

#include <sys/signalfd.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define DTASK_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define DTASK_LEAK_CHECK 1
#endif
#endif
#ifdef DTASK_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

#include <dtask/detail/job_model.hpp>
#include <dtask/error.hpp>

#include "worker/batch_runner.hpp"
#include "log.hpp"
#include "wire/protocol.hpp"
#include "wire/socket_poll.hpp"
#include "worker/worker_pulse.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

sigset_t stop_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    return signals;
}

void flush_standard_streams() noexcept {
    for (FILE* stream : {stdout, stderr}) {
        if (ftrylockfile(stream) == 0) {
            fflush_unlocked(stream);
            funlockfile(stream);
        }
    }
}

[[noreturn]] void end_worker_process(int code) noexcept {
    flush_standard_streams();
#ifdef DTASK_LEAK_CHECK
    // _Exit skips the sanitizer's leak check at exit: run it here, so that a leak in map or
    // in the worker's own code is reported like one in any other process.
    __lsan_do_recoverable_leak_check();
#endif
    std::_Exit(code);
}

[[noreturn]] void restart_process(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    flush_standard_streams();
    // The new image sets up its own signal handling; it must not start with ours blocked.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    execv("/proc/self/exe", argv.data());
    log_warning("worker", std::string("cannot restart after a hung subtask (execv: ") +
                              std::strerror(errno) + "); exiting");
    end_worker_process(worker_failed);
}

namespace {

/// A routing id of its own for each connection, which the pulses name: a reconnecting
/// worker must not collide with its old session, which the broker may still hold.
std::string new_routing_id() {
    static std::mt19937_64 random{std::random_device{}()};
    static unsigned connection = 0;
    std::string id(1, 'w');
    for (const auto part : {static_cast<std::uint64_t>(getpid()), std::uint64_t{++connection},
                            static_cast<std::uint64_t>(random() % 1000000007)})
        id += std::to_string(part) + ".";
    return id;
}

/// Marks the main thread busy (in user code, deaf to its socket) for a scope.
class Busy {
public:
    explicit Busy(PulseShared& shared) : shared_(shared) {
        shared_.busy.store(true, std::memory_order_release);
    }
    ~Busy() { shared_.busy.store(false, std::memory_order_release); }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

private:
    PulseShared& shared_;
};

/// The worker's main thread: the link to the broker, and map.
class Worker {
public:
    Worker(zmq::context_t& context, const WorkerOptions& options, int signal_fd,
           PulseShared& shared)
        : context_(context),
          options_(options),
          signal_fd_(signal_fd),
          shared_(shared),
          name_(process_name()),
          runner_(broker_, name_, shared),
          poller_({signal_fd}) {}

    /// Returns the exit code.
    int run() {
        int code = worker_done;
        try {
            code = serve();
        } catch (const std::exception& e) {
            log_warning("worker " + name_,
                        std::string("stopped by an unexpected error: ") + e.what());
            code = worker_failed;
        }
        if (broker_ && code != worker_refused && code != worker_gave_up && code != worker_misused) {
            // Leaving on purpose: say so, so the broker requeues our batches at once rather
            // than after the heartbeat timeout. Never wait for it: a broker that is not
            // there must not keep the process alive.
            std::array leaving{header(Command::bye)};
            try {
                broker_.send(leaving[0], zmq::send_flags::dontwait);
            } catch (const zmq::error_t&) {
            }
        }
        return code;
    }

private:
    void connect() {
        if (broker_)
            runner_.forget_all();  // a new session: what the old one opened is void
        broker_ = zmq::socket_t(context_, zmq::socket_type::dealer);
        tune(broker_);
        const std::string id = new_routing_id();
        broker_.set(zmq::sockopt::routing_id, id);
        shared_.set_routing_id(id);
        retry_interrupted([&] { broker_.connect(options_.endpoint); });
        poller_.watch(broker_);
        Hello hello;
        hello.role = Role::worker;
        hello.name = name_;
        hello.platform = platform();
        hello.credits = options_.credits;
        hello.local = options_.local;
        hello.pid = getpid();
        hello.jobs = registered_jobs();
        std::array frames{header(Command::hello), encode_body(hello)};
        send_to_broker(frames);
        last_heard_ = Clock::now();
    }

    void send_to_broker(std::span<zmq::message_t> frames) {
        send(broker_, {}, frames);
        shared_.note_sent();
    }

    int serve() {
        try {
            connect();
        } catch (const zmq::error_t& e) {
            log_warning("worker " + name_, "cannot connect to '" + options_.endpoint +
                                               "': " + e.what() +
                                               " (an endpoint looks like tcp://host:5555)");
            broker_.close();
            return worker_misused;
        }
        now_ = Clock::now();
        auto silent_since = now_;
        auto backoff = interval_;
        auto next_heartbeat = shared_.last_sent_at() + interval_;
        std::vector<zmq::message_t> frames;
        for (;;) {
            poller_.wait(
                std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat - now_) +
                std::chrono::milliseconds(1));
            now_ = Clock::now();
            if (poller_.readable(0))
                return worker_done;
            bool drained = false;
            for (int burst = 0; burst < 64; ++burst) {
                if (!receive(broker_, frames, false)) {
                    drained = true;
                    break;
                }
                last_heard_ = now_;
                silent_since = now_;
                backoff = interval_;
                if (auto code = on_message(frames))  // keeps now_ current
                    return *code;
            }
            poller_.drained(drained);
            // Whatever the worker sends shows it alive: a heartbeat only after an interval
            // of silence.
            if (now_ >= shared_.last_sent_at() + interval_) {
                std::array beat{header(Command::heartbeat)};
                send_to_broker(beat);
            }
            next_heartbeat = shared_.last_sent_at() + interval_;
            if (now_ - last_heard_ <= interval_ * liveness_)
                continue;
            // Messages still unread (the broker's heartbeats among them, behind a long batch)
            // mean the broker is not silent: no verdict until they are read.
            if (poller_.unread(broker_))
                continue;
            if (now_ - silent_since > options_.give_up) {
                log_warning("worker " + name_,
                            "the broker at " + options_.endpoint + " has been silent for " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   now_ - silent_since)
                                                   .count()) +
                                " s: giving up");
                return worker_gave_up;
            }
            if (now_ - last_heard_ > interval_ * liveness_ + backoff) {
                // Reconnect with a fresh socket, waiting longer each time.
                connect();
                backoff = std::min(backoff * 2, std::chrono::milliseconds(std::chrono::seconds(8)));
            }
        }
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
                if (message.fields[0] > 0) {
                    interval_ = std::chrono::milliseconds(message.fields[0]);
                    shared_.interval_ms.store(static_cast<long>(interval_.count()));
                }
                if (message.fields[1] > 0)
                    liveness_ = static_cast<unsigned>(message.fields[1]);
                return std::nullopt;
            case Command::job: {
                // Decoding the job-wide data may take long too: the pulse speaks meanwhile.
                const Busy busy(shared_);
                runner_.open_job(message);
                now_ = Clock::now();
                return std::nullopt;
            }
            case Command::task: {
                const Busy busy(shared_);
                now_ = runner_.run_batch(message, now_);
                return std::nullopt;
            }
            case Command::end:
                runner_.end_job(message.fields[0]);  // may free large job-wide data
                now_ = Clock::now();
                return std::nullopt;
            case Command::heartbeat:
                return std::nullopt;
            case Command::revoke:
                // The batch was read, and so run, before the revoke behind it: nothing to
                // skip. The broker ignores the result.
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
    PulseShared& shared_;
    std::string name_;
    zmq::socket_t broker_;
    BatchRunner runner_;
    std::chrono::milliseconds interval_{250};
    unsigned liveness_ = 5;
    Clock::time_point last_heard_;
    // The time: read after each poll, then carried from batch to batch, whose runs read it
    // when they end (a clock read costs as much as a good part of an empty subtask).
    Clock::time_point now_;
    SocketPoll<1> poller_;  // the socket, and the signals' descriptor
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
        PulseShared shared;
        Worker worker(context, options, signal_fd, shared);
        try {
            Pulse pulse(context, options.endpoint, process_name(), signal_fd, shared, options.argv);
            code = worker.run();
        } catch (const zmq::error_t& e) {
            log_warning("worker " + process_name(),
                        "cannot connect to '" + options.endpoint + "': " + e.what() +
                            " (an endpoint looks like tcp://host:5555)");
            code = worker_misused;
        }
    }
    if (signal_fd >= 0)
        close(signal_fd);
    return code;
}

}  // namespace dtask::detail
