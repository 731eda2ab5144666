#include "worker/link.hpp"

#include <array>
#include <random>

#include <unistd.h>

#include <dtask/error.hpp>

#include "job_registry.hpp"
#include "log.hpp"
#include "wire/burst.hpp"
#include "wire/protocol.hpp"
#include "worker/rejoin.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

/// A routing id of its own for each connection, which the pulses name: a reconnecting
/// worker must not collide with its old session, which the broker may still hold.
std::string new_routing_id() {
    return random_routing_id('w');
}

/// Marks the main thread busy (in user code, deaf to its socket) for a scope.
class InUserCode {
public:
    explicit InUserCode(PulseShared& shared) : shared_(shared) {
        shared_.busy.store(true, std::memory_order_release);
    }
    ~InUserCode() { shared_.busy.store(false, std::memory_order_release); }
    InUserCode(const InUserCode&) = delete;
    InUserCode& operator=(const InUserCode&) = delete;

private:
    PulseShared& shared_;
};

}  // namespace

Link::Link(zmq::context_t& context, const WorkerOptions& options, int signal_fd,
           PulseShared& shared)
    : context_(context),
      options_(options),
      shared_(shared),
      name_(process_name()),
      runner_(broker_, name_, shared),
      poller_({signal_fd, -1}) {}

int Link::run() {
    int code = worker_done;
    try {
        code = serve();
    } catch (const std::exception& e) {
        // A send fails once ZeroMQ has ended a refused connection: the refusal says why.
        if (auto why = handshakes_ ? handshakes_->failure() : std::nullopt) {
            log_warning("worker", name_, *why);
            code = worker_refused;
        } else {
            log(LogLevel::error, "worker", name_,
                std::string("stopped by an unexpected error: ") + e.what());
            code = worker_failed;
        }
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

void Link::connect() {
    if (broker_)
        runner_.forget_all();  // a new session: what the old one opened is void
    progress_ = {};            // until the new session's welcome
    welcomed_ = false;
    handshakes_.reset();
    broker_ = zmq::socket_t(context_, zmq::socket_type::dealer);
    tune(broker_);
    if (options_.token) {
        use_token(broker_, *options_.token);
        handshakes_.emplace(context_, broker_, options_.endpoint);
        poller_.watch_other(1, handshakes_->fd());
    }
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
    std::array frames{hello_header(), encode_body(hello)};
    send_to_broker(frames);
    last_heard_ = Clock::now();
}

void Link::send_to_broker(std::span<zmq::message_t> frames) {
    send(broker_, {}, frames);
    shared_.note_sent();
}

int Link::serve() {
    try {
        connect();
    } catch (const zmq::error_t& e) {
        log_warning("worker", name_,
                    "cannot connect to '" + options_.endpoint + "': " + e.what() +
                        " (an endpoint looks like tcp://host:5555)");
        broker_.close();
        return worker_misused;
    }
    now_ = Clock::now();
    auto silent_since = now_;
    auto backoff = liveness_.interval();
    auto next_heartbeat = shared_.last_sent_at() + liveness_.interval();
    std::vector<zmq::message_t> frames;
    for (;;) {
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat - now_) +
            std::chrono::milliseconds(1);
        poller_.wait(wait);
        const auto planned = now_ + wait;
        now_ = Clock::now();
        liveness_.woke(planned, now_);
        if (poller_.readable(0))
            return worker_done;
        if (poller_.readable(1)) {
            if (auto why = handshakes_->failure()) {
                log_warning("worker", name_, *why);
                return worker_refused;
            }
        }
        std::optional<int> exit_code;
        const auto end =
            drain_burst(broker_, frames, 64, [&](std::vector<zmq::message_t>& message) {
                last_heard_ = now_;
                silent_since = now_;
                backoff = liveness_.interval();
                exit_code = on_message(message);  // keeps now_ current
                return !exit_code;
            });
        if (exit_code)
            return *exit_code;
        if (end == BurstEnd::empty)
            last_drained_ = now_;
        poller_.drained(end == BurstEnd::empty);
        // Whatever the worker sends shows it alive: a heartbeat only after an interval
        // of silence.
        if (now_ >= shared_.last_sent_at() + liveness_.interval()) {
            std::array beat{header(Command::heartbeat)};
            send_to_broker(beat);
        }
        next_heartbeat = shared_.last_sent_at() + liveness_.interval();
        const auto verdict = liveness_.judge(
            last_heard_, now_, [&] { return poller_.unread(broker_); }, last_drained_, progress_);
        if (verdict == Liveness::Verdict::moving) {
            last_heard_ = now_;  // a big message from the broker is arriving
            silent_since = now_;
            backoff = liveness_.interval();
        }
        if (verdict != Liveness::Verdict::silent)
            continue;
        if (now_ - silent_since > options_.give_up) {
            log_warning("worker", name_,
                        "the broker at " + options_.endpoint + " has been silent for " +
                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                               now_ - silent_since)
                                               .count()) +
                            " s: giving up");
            return worker_gave_up;
        }
        if (time_to_rejoin(now_ - last_heard_, liveness_.silence(), backoff, welcomed_)) {
            // Reconnect with a fresh socket, waiting longer each time.
            connect();
            backoff = next_rejoin_backoff(backoff);
        }
    }
}

std::optional<int> Link::on_message(std::vector<zmq::message_t>& frames) {
    Inbound message;
    try {
        message = parse(frames, 0);
    } catch (const ProtocolError& e) {
        if (claims_command(frames[0], Command::welcome)) {
            // Settings it cannot take (a heartbeat interval out of range): no session.
            log_warning("worker", name_,
                        "the broker at " + options_.endpoint +
                            " sent a welcome this worker cannot take: " + e.what());
            return worker_refused;
        }
        log_warning("worker", name_,
                    std::string("ignoring a malformed message from the broker: ") + e.what());
        return std::nullopt;
    }
    switch (message.command) {
        case Command::welcome:
            welcomed_ = true;
            liveness_.adopt(message);
            runner_.set_max_message(message.fields[2]);
            progress_ = ConnectionProgress(connection_fd(frames[0]));
            shared_.interval_ms.store(static_cast<long>(liveness_.interval().count()));
            return std::nullopt;
        case Command::job: {
            // Decoding the job-wide data may take long too: the pulse speaks meanwhile.
            const InUserCode in_user_code(shared_);
            runner_.open_job(message);
            now_ = Clock::now();
            return std::nullopt;
        }
        case Command::task: {
            const InUserCode in_user_code(shared_);
            now_ = runner_.run_batch(message, now_);
            return std::nullopt;
        }
        case Command::share:
            try {
                runner_.shared_objects().add(message.fields[0], std::move(message.body[0]));
            } catch (const ProtocolError& e) {
                log_warning("worker", name_, e.what());
            }
            return std::nullopt;
        case Command::unshare:
            runner_.shared_objects().remove(message.fields[0]);  // may free large data
            now_ = Clock::now();
            return std::nullopt;
        case Command::end:
            runner_.end_job(message.fields[0]);  // may free large job-wide data
            now_ = Clock::now();
            return std::nullopt;
        case Command::heartbeat:
            return std::nullopt;
        case Command::pace:
            // Many peers: the broker heartbeats less often, and so may this worker.
            liveness_.set_interval(std::chrono::milliseconds(message.fields[0]));
            shared_.interval_ms.store(static_cast<long>(liveness_.interval().count()));
            return std::nullopt;
        case Command::revoke:
            // The batch was read, and so run, before the revoke behind it: nothing to
            // skip. The broker ignores the result.
            return std::nullopt;
        case Command::notice:
            log_warning("worker", name_, as_text(message.body[0]));
            return std::nullopt;
        case Command::reconnect:
            connect();
            return std::nullopt;
        case Command::bye:
            // Dismissed: the broker stops on purpose (its host ended, dtaskd was stopped).
            // Only the broker this socket's session reaches can say it.
            log(LogLevel::info, "worker", name_,
                "dismissed by the broker at " + options_.endpoint + ", which is stopping");
            return worker_done;
        case Command::refuse:
            log_warning("worker", name_,
                        "refused by the broker at " + options_.endpoint + ": " +
                            std::string(as_text(message.body[0])));
            return worker_refused;
        default:
            log_warning("worker", name_,
                        "ignoring a " + std::string(command_name(message.command)) +
                            " message, which a broker does not send to workers");
            return std::nullopt;
    }
}

}  // namespace dtask::detail
