// The broker's loop: the poll, the bursts and their sends, the routing of each message, the
// heartbeat tick, and the goodbye.

#include "broker/broker_loop.hpp"

#include <algorithm>
#include <array>
#include <new>
#include <optional>

#include <sys/resource.h>

#include <dtask/error.hpp>

#include "log.hpp"
#include "wire/burst.hpp"
#include "wire/liveness.hpp"

namespace dtask::detail {

using namespace protocol;

BrokerLoop::BrokerLoop(Broker& broker)
    : context_(broker),
      socket_(broker.socket_),
      liveness_(broker.options_.heartbeat_interval, broker.options_.heartbeat_liveness),
      gatekeeper_(broker.gatekeeper_.get()),
      accepts_(broker.accepts_.get()),
      poller_{{broker.stop_fd_, -1, -1, -1}} {
    poller_.watch_other(1, context_.local.exits_fd());
    if (gatekeeper_ != nullptr)
        poller_.watch_other(2, gatekeeper_->fd());
    if (accepts_ != nullptr)
        poller_.watch_other(3, accepts_->fd());
}

void BrokerLoop::run() {
    bool stopped = false;
    try {
        event_loop();
        stopped = true;
    } catch (const std::exception& e) {
        log(LogLevel::error, "broker", {},
            std::string("stopped by an unexpected error: ") + e.what());
    }
    shut_down(stopped);
}

void BrokerLoop::event_loop() {
    for (unsigned i = 0; i < context_.options.local_workers; ++i)
        context_.local.spawn();
    next_tick_ = Clock::now() + context_.pace.interval();
    std::vector<zmq::message_t> frames;
    poller_.watch(socket_);
    context_.publish_status(Clock::now());  // readers have a status from the start
    context_.broker.loop_started();
    for (;;) {
        const auto wake_at = context_.local.wake_at(next_tick_);
        // now() was read at the last wake-up, and during the burst after it.
        poller_.wait(std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now()));
        context_.clock.fresh();
        liveness_.woke(wake_at, now());
        if (poller_.readable(0))
            break;
        if (poller_.readable(1))
            on_children_exits();
        if (poller_.readable(2))
            gatekeeper_->answer(now());
        if (poller_.readable(3))
            on_accept_failures();
        context_.local.respawn_due(now());
        if (now() >= next_tick_) {
            tick();
            next_tick_ = Clock::now() + context_.pace.interval();
        }
        // Last before the wait, which then hears of what comes after.
        poller_.drained(drain(frames));
        context_.publish_status(now());
    }
}

/// Results go first: their client wakes while the tasks go out to the workers, and the tasks
/// it sends back in reply are there for the broker's next receive, which then does not
/// sleep; sent last, they left the client idle for the whole burst. Only the order between a
/// client's results and its other messages (a failure, a notice, its worker count) changes,
/// and a client takes those in any order: results of a job that failed are dropped, and
/// failures are reported whichever came first. The other messages go even if the results
/// fail to: at shutdown they hold the workers' bye and the clients' failures.
///
/// A peer over the network that has left max_unsent_per_peer messages unread is dropped
/// (ZMQ_SNDHWM): what the broker queues for a peer that does not read stays bounded. Dropping
/// it posts more (its work goes to others), sent in the next round. A peer whose routing id is
/// gone is noted, and dropped once the socket has been read empty (drop_gone).
void BrokerLoop::flush_outboxes() {
    std::vector<std::string> full;
    for (;;) {
        try {
            context_.results.flush_routed(socket_, full, gone_);
        } catch (...) {
            context_.outbox.flush_routed(socket_, full, gone_);
            throw;
        }
        context_.outbox.flush_routed(socket_, full, gone_);
        if (full.empty())
            return;
        for (auto& id : full)
            drop_unread(std::move(id));
        full.clear();
    }
}

/// ZeroMQ forgot these peers' routing ids: their connections closed (the process died or
/// ended, or the network cut it). Called once the socket was read empty after that was found,
/// so that their last messages were handled first: a peer that said bye is forgotten by then,
/// not dropped. The others are dropped as dead ones are, at once rather than after a silence
/// (two ticks at most, when a heartbeat finds them gone): what was on its way to or from them
/// may be lost with the connection.
void BrokerLoop::drop_gone() {
    std::vector<std::string> gone;
    gone.swap(gone_);
    for (auto& id : gone)
        drop_gone(std::move(id));
}

void BrokerLoop::drop_gone(std::string id) {
    const std::string how = "its connection closed";
    if (const auto worker = context_.peers.workers().find(id);
        worker != context_.peers.workers().end()) {
        // A local worker's end is told by its process's exit, which names the signal that
        // killed it (a poison subtask's error quotes it): that comes at once.
        if (!worker->second.hello.local)
            worker_events_.lost(std::move(id), how);
    } else if (context_.peers.clients().contains(id)) {
        client_events_.lost(std::move(id), how);
    }
}

void BrokerLoop::drop_unread(std::string id) {
    const std::string how =
        "it left " + std::to_string(context_.options.max_unsent_per_peer) + " messages unread";
    if (context_.peers.workers().contains(id))
        worker_events_.lost(std::move(id), how, false);
    else if (context_.peers.clients().contains(id))
        client_events_.lost(std::move(id), how);
}

/// Handles what the socket holds now, so that a burst of messages costs one wait (up to 256
/// messages, then the timers get their turn), and sends what the burst posted. True if it
/// found the socket empty.
bool BrokerLoop::drain(std::vector<zmq::message_t>& frames) {
    if (gatekeeper_ != nullptr)
        gatekeeper_->refresh();  // rotated credentials: their holders are refused from now on
    const auto end = drain_burst(
        socket_, frames, 256,
        [&](std::vector<zmq::message_t>& message) {
            on_message(message);
            context_.clock.next();
            return true;
        },
        [&] {
            drop_gone();
            if (context_.results.empty() && context_.outbox.empty())
                return false;
            flush_outboxes();
            return true;
        });
    if (end != BurstEnd::empty) {
        flush_outboxes();
        return false;
    }
    last_drained_ = now();
    return true;
}

void BrokerLoop::on_message(std::vector<zmq::message_t>& frames) {
    if (frames.size() < 2)
        return;
    // A view: a worker's routing id is too long to be a string without an allocation.
    const std::string_view id = as_text(frames[0]);
    const std::string_view user = gatekeeper_ ? Gatekeeper::user_of(frames[1]) : std::string_view();
    const Sender sender = gatekeeper_ ? gatekeeper_->sender_of(user) : Sender::owner;
    if (sender == Sender::revoked)
        return on_revoked(std::string(id), frames[1]);
    if (auto other = other_release(frames, 1))
        return on_other_release(std::string(id), *other, sender, frames[1]);
    Inbound message;
    try {
        message = parse(frames, 1);
        // Only a peer's first message, a hello is refused unread past a small size.
        if (message.command == Command::hello && message.body[0].size() > max_hello_bytes)
            throw ProtocolError("a hello of " + std::to_string(message.body[0].size()) +
                                " bytes, more than the " + std::to_string(max_hello_bytes) +
                                " a hello may have");
    } catch (const ProtocolError& e) {
        on_protocol_error(std::string(id), e.what(), sender, frames[1]);
        return;
    }
    try {
        std::optional<Hello> hello;  // decoded once, by admitted() or here
        if (sender != Sender::owner && !admitted(id, sender, user, frames[1], message, hello))
            return;
        if (message.command == Command::hello) {
            if (!hello)
                hello = decode_body<Hello>(message.body[0], "hello");
            on_hello(std::string(id), std::move(*hello), sender, user, connection_fd(frames[1]));
        } else if (message.command == Command::pulse || message.command == Command::hung) {
            worker_events_.on_pulse(std::string(id), message, user);
        } else if (auto w = context_.peers.workers().find(id);
                   w != context_.peers.workers().end()) {
            w->second.last_heard = now();
            for (const auto& frame : frames)
                context_.stats.received_from_worker(frame.size());
            worker_events_.on_message(w->second, message);
        } else if (auto c = context_.peers.clients().find(id);
                   c != context_.peers.clients().end()) {
            c->second.last_heard = now();
            for (const auto& frame : frames)
                context_.stats.received_from_client(frame.size());
            client_events_.on_message(c->second, message);
        } else if (message.command != Command::bye) {
            // A peer we dropped (declared dead, or from before a restart): it must introduce
            // itself again; whatever it held was given to others already.
            std::array frames_out{header(Command::reconnect)};
            context_.post(id, frames_out);
        }
    } catch (const ProtocolError& e) {
        on_protocol_error(std::string(id), e.what(), sender, frames[1]);
    } catch (const std::bad_alloc&) {
        // Out of memory for one message (a huge one, or many peers at once): that peer is
        // dropped, and the broker goes on serving the others.
        on_out_of_memory(std::string(id));
    }
}

void BrokerLoop::on_out_of_memory(const std::string& id) {
    if (auto more = out_of_memory_log_.admit(now()))
        log_warning("broker", "out of memory while handling a message of " + who_is(id) +
                                  ": dropping that peer" + *more);
    context_.refuse(id, "the broker ran out of memory while handling its message");
    if (context_.peers.workers().contains(id))
        worker_events_.lost(id, "the broker ran out of memory while handling its message");
    if (context_.peers.clients().contains(id))
        client_events_.lost(id, "the broker ran out of memory while handling its message");
}

std::string BrokerLoop::who_is(const std::string& id) {
    if (auto w = context_.peers.workers().find(id); w != context_.peers.workers().end())
        return "worker " + w->second.hello.name;
    if (auto c = context_.peers.clients().find(id); c != context_.peers.clients().end())
        return "client " + c->second.name;
    return "an unknown peer";
}

void BrokerLoop::on_protocol_error(const std::string& id, const std::string& what, Sender sender,
                                   const zmq::message_t& frame) {
    log_turned_away("dropping " + who_is(id) + " after a malformed message: " + what, sender,
                    frame);
    // One refusal per peer and minute: a flood from a peer that never reads queues no more.
    if (refused_.should_log(id, now()))
        context_.refuse(id, "malformed message: " + what);
    if (context_.peers.workers().contains(id))
        worker_events_.lost(id, "it sent a malformed message (" + what + ")");
    if (context_.peers.clients().contains(id))
        client_events_.lost(id, "it sent a malformed message");
}

/// A peer of another release or protocol version: refused in its own protocol version, so
/// that it reads why, and forgotten.
void BrokerLoop::on_other_release(const std::string& id, const OtherRelease& other, Sender sender,
                                  const zmq::message_t& frame) {
    log_turned_away("refused a peer of another release: " + other.reason, sender, frame);
    if (refused_.should_log(id, now()))
        context_.refuse(id, other.reason, other.version);
    if (context_.peers.workers().contains(id))
        worker_events_.lost(id, other.reason);
    if (context_.peers.clients().contains(id))
        client_events_.lost(id, other.reason);
}

/// A peer over the network may send many: logged once per address and minute; the owner's
/// (and every peer on plain TCP) once per interval of their kind.
void BrokerLoop::log_turned_away(const std::string& line, Sender sender,
                                 const zmq::message_t& frame) {
    if (sender == Sender::owner) {
        if (auto more = malformed_log_.admit(now()))
            log_warning("broker", line + *more);
    } else if (gatekeeper_->should_log(frame, now())) {
        log_warning("broker", line);
    }
}

/// Whether a peer admitted by the gatekeeper may send `message` (a hello is decoded into
/// `hello`): its credential must be the one its record was made with, and of the role the
/// message is for. If not, the peer is refused and forgotten.
bool BrokerLoop::admitted(std::string_view id, Sender sender, std::string_view user,
                          const zmq::message_t& frame, const Inbound& message,
                          std::optional<Hello>& hello) {
    const auto& workers = context_.peers.workers();
    const auto& clients = context_.peers.clients();
    const auto worker = workers.find(id);
    const auto client = clients.find(id);
    const bool known_worker = worker != workers.end();
    const bool known_client = !known_worker && client != clients.end();
    // A routing id whose record another connection made: its peer is gone, and this is not
    // it (ids are 128 random bits). Nothing it says counts, nor costs that record anything.
    if ((known_worker && worker->second.admitted_as != user) ||
        (known_client && client->second.admitted_as != user))
        return false;
    Role role = Role::client;
    if (message.command == Command::hello)
        role = hello.emplace(decode_body<Hello>(message.body[0], "hello")).role;
    else if (known_worker || message.command == Command::pulse || message.command == Command::hung)
        role = Role::worker;
    else if (!known_client)
        return true;  // told to say hello again, which is checked
    if (role == Role::worker && sender != Sender::worker)
        refuse_peer(std::string(id), "its join token is a client's: it cannot serve as a worker",
                    frame);
    else if (role == Role::client && sender != Sender::client)
        refuse_peer(std::string(id), "its join token is a worker's: it cannot submit jobs", frame);
    else
        return true;
    return false;
}

/// A message from a connection admitted with a credential rotated since: its peer is refused
/// and forgotten, once; whatever else comes on that connection is dropped unanswered.
void BrokerLoop::on_revoked(const std::string& id, const zmq::message_t& frame) {
    if (context_.peers.workers().contains(id) || context_.peers.clients().contains(id))
        refuse_peer(id, "its join token was rotated: ask the broker's owner for the current one",
                    frame);
}

/// Refuses a peer admitted over the network, saying `why`, and forgets it if it has a
/// record; the log hears of it once per address and minute.
void BrokerLoop::refuse_peer(const std::string& id, const std::string& why,
                             const zmq::message_t& frame) {
    if (gatekeeper_->should_log(frame, now()))
        log_warning("broker", "refused a peer: " + why);
    context_.refuse(id, why);
    if (context_.peers.workers().contains(id))
        worker_events_.lost(id, why);
    else if (context_.peers.clients().contains(id))
        client_events_.lost(id, why);
}

void BrokerLoop::on_hello(const std::string& id, Hello hello, Sender sender, std::string_view user,
                          int fd) {
    if (sender != Sender::owner) {
        // Only the owner's own processes are local workers or in the broker's process.
        hello.local = false;
        hello.same_process = false;
    }
    if (hello.platform != platform()) {
        context_.refuse(id, "the peer's platform (" + hello.platform +
                                ") differs from the broker's (" + platform() +
                                "): their binary data cannot be exchanged");
        log_warning("broker", "refused " + hello.name + ": platform " + hello.platform);
        return;
    }
    // A peer saying hello again starts afresh: what it held before is lost.
    if (context_.peers.workers().contains(id))
        worker_events_.lost(id, "it reconnected", false);
    if (context_.peers.clients().contains(id))
        client_events_.lost(id, "it said hello again");

    // A descriptor is one connection's: one closed after its peer's hello was queued may
    // carry this peer's now, whose bytes must not keep that other peer alive.
    if (fd >= 0) {
        for (auto& [other, worker] : context_.peers.workers())
            if (worker.progress.fd() == fd)
                worker.progress.forget();
        for (auto& [other, client] : context_.peers.clients())
            if (client.progress.fd() == fd)
                client.progress.forget();
    }
    if (hello.role == Role::worker) {
        worker_events_.hello(id, std::move(hello));
        if (auto w = context_.peers.workers().find(id); w != context_.peers.workers().end()) {
            w->second.admitted_as = user;
            w->second.progress = ConnectionProgress(fd);
        }
    } else if (hello.role == Role::client) {
        // Over inproc (no descriptor) only: the Cluster's own client, in this process.
        client_events_.hello(id, hello, sender == Sender::owner && fd < 0);
        if (auto c = context_.peers.clients().find(id); c != context_.peers.clients().end()) {
            c->second.admitted_as = user;
            c->second.progress = ConnectionProgress(fd);
        }
    } else
        context_.refuse(id, "unknown role " + std::to_string(static_cast<int>(hello.role)));
}

void BrokerLoop::tick() {
    const auto now = Clock::now();
    // A client in this process watches no heartbeats, and one may idle for long without
    // reading (ClientCore::run_here's spare connections).
    const auto heartbeated = [](const ClientPeer& client) { return !client.same_process; };
    const auto& clients = context_.peers.clients();
    const std::size_t peers =
        context_.peers.workers().size() +
        static_cast<std::size_t>(std::count_if(
            clients.begin(), clients.end(), [&](const auto& c) { return heartbeated(c.second); }));
    const bool paced = context_.pace.update(peers, now);
    liveness_.set_interval(context_.pace.judged(now));
    const Liveness& rule = liveness_;
    const auto silence = rule.silence();
    const bool unread_now = poller_.unread(socket_);
    const auto silent = context_.peers.silent(
        rule, now, [unread_now] { return unread_now; }, last_drained_);
    const std::string how =
        "it sent nothing for " +
        format_ms(std::chrono::duration_cast<std::chrono::milliseconds>(silence));
    for (const auto& id : silent.workers)
        worker_events_.lost(id, how);
    for (const auto& id : silent.clients)
        client_events_.lost(id, how);

    // A new pace is told instead of this tick's heartbeat, and is one.
    const auto beat = [&] {
        return paced ? header(Command::pace,
                              {static_cast<std::uint64_t>(context_.pace.interval().count())})
                     : header(Command::heartbeat);
    };
    for (auto& [id, worker] : context_.peers.workers()) {
        context_.dispatch.tell_ended(worker);
        std::array frames{beat()};
        context_.post(id, frames);
    }
    for (const auto& [id, client] : context_.peers.clients()) {
        if (!heartbeated(client))
            continue;
        std::array frames{beat()};
        context_.post(id, frames);
    }
    if (paced)
        log(LogLevel::info, "broker", {},
            "heartbeats every " + format_ms(context_.pace.interval()) + " from now on, for " +
                std::to_string(peers) + " peers");
    client_events_.check_worker_waits(now);
    context_.dispatch.feed_idle();  // batches running long enough by now may get backup copies
}

/// Logs the connections the listen endpoints failed to accept (rate-limited: out of
/// descriptors, ZeroMQ retries at once, and fails again, until some are closed).
void BrokerLoop::on_accept_failures() {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    while (const auto event = accepts_->next()) {
        if (auto line = accept_failures_.on_failure(event->value, limit.rlim_cur, now()))
            log_warning("broker", *line);
    }
}

void BrokerLoop::on_children_exits() {
    context_.local.on_exits([&](const LocalWorkers::Exit& exit) {
        auto& workers = context_.peers.workers();
        auto worker = std::find_if(workers.begin(), workers.end(), [&](const auto& entry) {
            return entry.second.hello.local && entry.second.hello.pid == exit.pid;
        });
        if (worker != workers.end()) {
            worker_events_.lost(
                worker->first, "local worker process " + std::to_string(exit.pid) + " " + exit.how);
        } else if (exit.had_joined) {
            log_warning("broker",
                        "local worker process " + std::to_string(exit.pid) + " " + exit.how);
        } else {
            context_.local.exited_early(exit);
        }
    });
    if (const std::string why = context_.local.take_announcement(); !why.empty())
        client_events_.tell_waiting_jobs(why);
}

void BrokerLoop::shut_down(bool dismiss) {
    // A stop on purpose dismisses remote workers too: they exit 0 instead of taking the
    // silence for a broker that vanished (status 4 after the give-up time).
    for (auto& [id, worker] : context_.peers.workers()) {
        if (!dismiss && !worker.hello.local)
            continue;
        std::array frames{header(Command::bye)};
        context_.post(id, frames);
    }
    for (auto& [job_id, job] : context_.jobs.all()) {
        Failure failure;
        failure.kind = FailureKind::shutdown;
        failure.message = "job '" + job.name + "': the broker shut down while it ran";
        std::array out{header(Command::failure, {job.client_job, 0}), encode_body(failure)};
        context_.post(job.client, out);
    }
    try {
        flush_outboxes();
        // What is queued goes out while the socket closes, for up to this long (ZeroMQ's
        // linger, 200 ms on other dtask sockets): a remote worker must not miss its
        // dismissal because the I/O thread was slow; one that reads nothing costs the end
        // of the broker at most that.
        socket_.set(zmq::sockopt::linger, static_cast<int>(goodbye_linger.count()));
    } catch (const zmq::error_t& e) {
        log_warning("broker", std::string("cannot say goodbye: ") + e.what());
    }
    context_.local.stop(std::chrono::seconds(3));
    {
        std::lock_guard lock(context_.broker.mutex_);
        context_.broker.worker_count_ = 0;
    }
    context_.broker.state_changed_.notify_all();
}

}  // namespace dtask::detail
