#include "client/connection.hpp"

#include <array>

#include <unistd.h>

#include <dtask/error.hpp>
#include <dtask/shared.hpp>

#include "client/client_loop.hpp"
#include "log.hpp"
#include "wire/burst.hpp"

namespace dtask::detail {

using namespace protocol;

Connection::Connection(zmq::context_t& context, const ClientCoreOptions& options, ClientLoop& loop)
    : options_(options),
      loop_(loop),
      socket_(context, zmq::socket_type::dealer),
      liveness_(options.heartbeat_interval, options.heartbeat_liveness),
      context_(context),
      restart_(options.same_process ? std::chrono::milliseconds(0) : options.restart_grace) {
    open();
    say_hello();
}

/// Sets up and connects the socket, whose routing id is new: nothing said on an earlier
/// socket (and nothing an earlier broker sent) reaches this session.
void Connection::open() {
    tune(socket_);
    // 128 random bits: no other peer can guess it and take over this client's record.
    socket_.set(zmq::sockopt::routing_id, random_routing_id('c'));
    if (options_.token) {
        use_token(socket_, *options_.token);
        handshakes_.emplace(context_, socket_, options_.endpoint);
        poller_.watch_other(1, handshakes_->fd());
    }
    retry_interrupted([&] { socket_.connect(options_.endpoint); });
    poller_.watch(socket_);
}

bool Connection::wait(int other_fd, std::chrono::milliseconds timeout) {
    poller_.watch_other(0, other_fd);
    poller_.wait(timeout);
    if (poller_.readable(1) && refusal_.empty()) {
        if (auto why = handshakes_->failure()) {
            // Final, as a refusal in words is: the jobs fail with the reason.
            refusal_ = *why;
            loop_.fail_all(refusal_);
        }
    }
    return poller_.readable(0);
}

void Connection::receive_burst(LazyClock& clock, Clock::time_point slice_end) {
    if (clock.last() >= slice_end) {
        poller_.drained(false);  // the slice went to other work: read at the next turn
        return;
    }
    const auto end = drain_burst(socket_, frames_, 256, [&](std::vector<zmq::message_t>& message) {
        last_heard_ = clock.next();
        on_message(message);
        return clock.last() < slice_end;
    });
    if (end == BurstEnd::empty)
        last_drained_ = clock.last();
    poller_.drained(end == BurstEnd::empty);
}

void Connection::heartbeat_if_due(Clock::time_point now) {
    // A refused client sends nothing more: after a refused handshake there is no connection.
    if (now < next_heartbeat_ || !refusal_.empty())
        return;
    tell_finished();
    std::array beat{header(Command::heartbeat)};
    send(socket_, {}, beat);
    next_heartbeat_ = now + liveness_.interval();
    check_broker(now);
    check_restart(now);
}

void Connection::send_submit(std::uint64_t id, const RunState& run, const JobSettings& settings) {
    if (holding())
        return;  // registered when the broker is back
    tell_finished();
    JobSettings sent = settings;
    if (const SharedObject* object = run.shared_object()) {
        // Sent once per session, before the first job that uses it: the broker keeps it.
        if (shares_sent_.insert(object->id()).second) {
            std::array share{header(Command::share, {object->id()}),
                             zmq::message_t(object->bytes().data(), object->bytes().size())};
            send(socket_, {}, share);
        }
        sent.shared_object = object->id();
    }
    std::array frames{header(Command::submit, {id}), text_frame(run.job_name()),
                      text_frame(run.signature()),
                      zmq::message_t(run.shared().data(), run.shared().size()), encode_body(sent)};
    send(socket_, {}, frames);
}

void Connection::send_unshare(std::uint64_t id) {
    if (shares_sent_.erase(id) == 0 || holding())
        return;  // no job used it since the last hello: the broker never had it
    std::array frames{header(Command::unshare, {id})};
    send(socket_, {}, frames);
}

zmq::message_t Connection::send_batch(std::uint64_t id, std::uint64_t first, std::uint64_t count,
                                      std::string& bytes, bool keep) {
    const std::size_t start =
        write_batch_header(std::as_writable_bytes(std::span(bytes).first(task_header_room)),
                           Command::task, id, {first, count});
    std::array frames{payload_frame(std::move(bytes), start)};
    zmq::message_t kept;
    if (keep)
        kept.copy(frames[0]);
    if (!holding())
        send(socket_, {}, frames);
    return kept;
}

void Connection::resend_batch(zmq::message_t& frame) {
    std::array frames{std::move(frame)};
    send(socket_, {}, frames);
}

void Connection::send_about(Command command, std::uint64_t id) {
    if (holding())
        return;  // the broker that knew the job is gone
    std::array frames{header(command, {id})};
    send(socket_, {}, frames);
}

void Connection::tell_finished() {
    if (holding())
        return;  // kept, and dropped when the broker is back: it never knew them
    for (const std::uint64_t id : finished_)
        send_about(Command::end, id);
    finished_.clear();
}

void Connection::say_goodbye() {
    tell_finished();
    std::array bye{header(Command::bye)};
    send(socket_, {}, bye);
}

void Connection::say_goodbye_if_possible() noexcept {
    try {
        say_goodbye();
    } catch (const std::exception&) {
    }
}

void Connection::say_hello() {
    awaiting_welcome_ = true;
    shares_sent_.clear();  // a new session: the broker forgot the old one's shared objects
    finished_.clear();     // and its jobs: an end for one it never knew would be refused
    Hello hello;
    hello.role = Role::client;
    hello.name = process_name();
    hello.platform = platform();
    hello.same_process = options_.same_process;
    hello.pid = getpid();
    std::array frames{hello_header(), encode_body(hello)};
    send(socket_, {}, frames);
    last_heard_ = Clock::now();
}

void Connection::on_message(std::vector<zmq::message_t>& frames) {
    Inbound message;
    try {
        message = parse(frames, 0);
    } catch (const ProtocolError& e) {
        if (claims_command(frames[0], Command::welcome) && refusal_.empty()) {
            // Settings it cannot take (a heartbeat interval out of range): as final as a
            // refusal, since no session can follow.
            refusal_ = "the broker at " + options_.endpoint +
                       " sent a welcome this client cannot take: " + e.what();
            return loop_.fail_all(refusal_);
        }
        log_warning("client",
                    std::string("ignoring a malformed message from the broker: ") + e.what());
        return;
    }
    switch (message.command) {
        case Command::welcome:
            return on_welcome(message, frames[0]);
        case Command::heartbeat:
            return;
        case Command::pace:
            return liveness_.set_interval(std::chrono::milliseconds(message.fields[0]));
        case Command::status:
            return loop_.on_status(message.fields[0]);
        case Command::result:
            return loop_.on_result(message);
        case Command::failure:
            return loop_.on_failure(message);
        case Command::notice:
            return loop_.on_notice(message);
        case Command::refuse:
            // A refusal is final: this client's jobs fail with its reason from now on.
            refusal_ = "the broker at " + options_.endpoint +
                       " refused this client: " + std::string(as_text(message.body[0]));
            return loop_.fail_all(refusal_);
        case Command::reconnect:
            // Answers to what we sent before our last hello are stale: the broker
            // handles messages in order, so the welcome to that hello is on its way.
            if (awaiting_welcome_)
                return;
            return on_broker_lost("the broker at " + options_.endpoint +
                                  " no longer knew this client (it restarted?)");
        default:
            log_warning("client", "ignoring a " + std::string(command_name(message.command)) +
                                      " message, which a broker does not send to clients");
    }
}

void Connection::on_welcome(const Inbound& message, const zmq::message_t& header) {
    welcomed_ = true;
    awaiting_welcome_ = false;
    liveness_.adopt(message);
    max_message_ = message.fields[2];
    progress_ = ConnectionProgress(connection_fd(header));
    switch (restart_.welcomed(message.fields[3], last_heard_)) {
        case BrokerRestart::Welcome::carry_on:
            return;
        case BrokerRestart::Welcome::resume:
            finished_.clear();  // ended while the client waited: the new broker never knew them
            return loop_.resume(
                std::chrono::duration_cast<std::chrono::milliseconds>(last_heard_ - lost_at_));
        case BrokerRestart::Welcome::forgotten:
            finished_.clear();
            return loop_.fail_all(
                "the broker at " + options_.endpoint +
                " no longer knew this client: it did not restart (the same broker welcomed it "
                "again), but dropped this client, and its jobs with it (was this client silent "
                "for too long, or did it leave too many messages unread?)");
    }
}

void Connection::on_broker_lost(const std::string& why) {
    const auto now = Clock::now();
    const bool waiting = restart_.waiting();
    if (restart_.lost(now)) {
        if (!waiting) {
            lost_why_ = why;
            lost_at_ = now;
            log_warning("client",
                        why + "; waiting up to " + std::to_string(restart_.grace().count()) +
                            " ms for it to come back (ClientOptions::broker_restart_grace)");
        }
        // A new socket: a hello on the old one could reach a broker after messages that
        // the broker no longer knows what to do with.
        handshakes_.reset();
        socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
        progress_ = {};
        open();
        say_hello();
        return;
    }
    loop_.fail_all(why);
    if (refusal_.empty())
        say_hello();
}

void Connection::check_restart(Clock::time_point now) {
    if (auto waited = restart_.expired(now)) {
        finished_.clear();
        loop_.fail_all(lost_why_ + "; waited " + std::to_string(waited->count()) +
                       " ms for it to come back, in vain (the grace period, "
                       "ClientOptions::broker_restart_grace, is " +
                       std::to_string(restart_.grace().count()) + " ms)");
    }
}

void Connection::check_broker(Clock::time_point now) {
    if (options_.same_process || !refusal_.empty())
        return;
    const auto verdict = liveness_.judge(
        last_heard_, now, [&] { return poller_.unread(socket_); }, last_drained_, progress_);
    if (verdict == Liveness::Verdict::moving)
        last_heard_ = now;  // a big message from the broker is arriving
    if (verdict != Liveness::Verdict::silent)
        return;
    const auto silent = std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_).count());
    if (welcomed_) {
        on_broker_lost("lost contact with the broker at " + options_.endpoint + ": silent for " +
                       silent + " ms");
    } else {
        on_broker_lost("no answer from a broker at " + options_.endpoint + " for " + silent +
                       " ms: is it running, and is the endpoint right?");
    }
    last_heard_ = now;  // the next verdict after another full silence
}

}  // namespace dtask::detail
