#include "broker/broker.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "wire/batch.hpp"
#include "wire/batch_sizer.hpp"
#include "wire/burst.hpp"
#include "wire/deadline.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/liveness.hpp"
#include "log.hpp"
#include "wire/outbox.hpp"
#include "wire/protocol.hpp"
#include "wire/socket_poll.hpp"
#include "thread_name.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

namespace {

/// A batch of a job's subtasks: [first, first + count), their payloads packed in one frame.
struct Task {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    zmq::message_t payload;  // the whole task message: its header has the broker's job id
};

/// A batch a worker holds, kept to requeue if the worker is lost. Its results come back in
/// order, in runs: `next` is the first subtask whose result has not.
struct Held {
    std::uint64_t job = 0;
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t next = 0;
    zmq::message_t payload;
    Clock::time_point sent;
    std::int64_t expected_ns = 0;  // map time, from its job's so far (expected_work_ns)

    std::uint64_t end() const noexcept { return first + count; }
    bool contains(std::uint64_t job_id, std::uint64_t index) const noexcept {
        return job == job_id && index >= first && index < end();
    }
};

/// How much work a worker should hold in time: while one batch travels back and the next
/// one out, and while the broker handles a burst before it sends (Outbox), the batches
/// queued behind keep it busy. Single-subtask batches on 2 local workers ran a few percent
/// faster than with 500 us.
constexpr auto credit_window_time = std::chrono::milliseconds(2);

/// Subtasks per turn of a job of priority 1 when jobs compete for workers.
constexpr std::int64_t turn_quantum = 64;

/// Local worker deaths in a row after which the cluster stops replacing them.
constexpr unsigned max_restarts_in_a_row = 20;

/// A subtask no older than this gets no backup copy, however fast its job's others were.
constexpr auto backup_min_age = std::chrono::milliseconds(10);

struct WorkerPeer {
    std::string id;  // ROUTER routing id
    Hello hello;
    std::unordered_map<std::string, std::string> serves;  // job name -> signature
    // Batches it may hold now: sized from how fast it finishes them, up to its credits.
    unsigned window = 2;
    std::unordered_set<std::uint64_t> opened;  // jobs whose definition it has
    std::uint64_t last_opened_serial = 0;      // the job (by serial) it was last sent a batch of
    // Jobs that ended since it was last told: it hears of them with the next definition it
    // is sent, or at the next tick. Telling at once would wake it for nothing between two
    // short jobs, and the next job's subtasks would wait behind that.
    std::vector<std::uint64_t> ended;
    // The batches it holds, in the order sent, which is the order it runs them in.
    std::deque<Held> held;
    Clock::time_point last_result_at;  // when it last finished a batch
    double finish_interval_ns = 0;     // between batches finished back to back, smoothed
    bool isolated = false;             // running one quarantined batch, and nothing else
    bool draining = false;             // finishing what it holds, to run a quarantined batch alone
    bool hungry = false;               // in the broker's list of workers with room
    std::size_t hungry_slot = 0;       // where in that list

    std::int64_t held_work_ns = 0;  // map time its batches are expected to take, in all
    // Whether it serves the job (by serial) asked about last: nearly every question is
    // about the same job as the one before, and the full answer compares long signatures.
    std::uint64_t asked_serial = 0;
    bool serves_asked = false;

    /// Whether it may take another batch: it holds fewer than 2, or fewer than its window
    /// and less than credit_window_time of expected work. The window follows how fast it
    /// finishes batches; the expected work stops a window grown on tiny batches from
    /// filling with large ones.
    bool has_room() const noexcept {
        return held.size() < std::min(2u, window) ||
               (held.size() < window &&
                held_work_ns < std::chrono::nanoseconds(credit_window_time).count());
    }
    /// Forgets a batch it held: finished, revoked, or failed.
    void release(std::deque<Held>::iterator batch) {
        held_work_ns -= batch->expected_ns;
        if (batch == held.begin())
            held.pop_front();  // nearly always: batches finish in the order sent
        else
            held.erase(batch);
        if (held.empty())
            isolated = false;
    }
    /// The batch holding subtask `index` of `job`: nearly always the oldest.
    std::deque<Held>::iterator find(std::uint64_t job, std::uint64_t index) {
        return std::find_if(held.begin(), held.end(),
                            [&](const Held& batch) { return batch.contains(job, index); });
    }
    Clock::time_point last_heard;
};

struct ClientPeer {
    std::string id;
    std::string name;
    std::uint32_t index = 0;
    bool same_process = false;  // the Cluster's own client: never dropped for silence
    Clock::time_point last_heard;
    std::unordered_set<std::uint64_t> jobs;
};

/// A batch running on two workers: a backup copy. Keyed by its first index in its job; the
/// count tells it apart from another batch that starts there (a retried single).
struct Copies {
    std::uint64_t count = 0;
    std::vector<std::string> holders;

    bool of(std::uint64_t batch_count, const std::string& worker) const {
        return count == batch_count &&
               std::find(holders.begin(), holders.end(), worker) != holders.end();
    }
};

struct BrokerJob {
    std::uint64_t id = 0;      // client index << 32 | the client's job id
    std::uint64_t serial = 0;  // never reused, unlike a client's job id
    std::string client;        // routing id
    std::uint64_t client_job = 0;
    std::string name;
    std::string signature;
    zmq::message_t shared;
    std::deque<Task> queue;  // batches
    bool in_rotation = false;
    JobSettings settings;
    // Jobs take turns of priority × turn_quantum subtasks (deficit round robin: a batch
    // larger than what is left of a turn is sent, and the excess is taken from its next
    // turns), so that a job's share is counted in subtasks whatever its batches' sizes.
    unsigned priority = 1;
    std::int64_t turn_left = 0;  // subtasks left of its turn; below 0: owed
    // Batches held by a worker that crashed or vanished: any subtask in them may have killed
    // it, so each batch runs again alone on a worker. If that worker dies too, the batch is
    // halved, until a single subtask killed it: only such a death counts against a subtask.
    std::deque<Task> quarantine;
    // Attempts each subtask spoiled: killed its worker running alone, timed out, or threw a
    // TransientError. At settings.max_attempts the job fails.
    std::unordered_map<std::uint64_t, unsigned> spoiled;
    // Batches running on two workers (a backup copy): first index -> the workers holding it.
    std::unordered_map<std::uint64_t, Copies> copies;
    bool split_done = false;     // the client has sent every subtask: the tail has begun
    Clock::duration run_time{};  // of the batches finished, for the backup threshold
    std::uint64_t runs = 0;      // subtasks in those batches
    // What map took for the results so far, as the workers report it, and how many subtasks
    // that covers: the work a batch brings a worker. The broker's own view of a batch's time
    // (run_time) also holds its trip and, on a busy machine, the wait for the worker to be
    // scheduled; windows sized from that shrink as workers are added to few cores.
    double map_ns = 0;
    std::uint64_t mapped = 0;
    std::unordered_set<std::string> opened_by;  // workers holding its definition
    std::chrono::milliseconds worker_wait{0};
    bool waiting_for_worker = true;
    Clock::time_point worker_deadline;
};

/// Hashes a std::string key and a std::string_view alike, so that maps keyed by routing id
/// are searched with the received id in place. Routing ids are short and end in what tells
/// them apart (a worker's in random characters, ZeroMQ's own in a counter): their last 8
/// bytes, mixed, hash them in a few instructions, where a hash of every byte took a
/// noticeable share of the broker's time per message. Equal ids are still compared whole.
struct ViewHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        std::uint64_t tail = 0;
        const std::size_t size = std::min<std::size_t>(text.size(), sizeof tail);
        std::memcpy(&tail, text.data() + text.size() - size, size);
        // The 64-bit mix of splitmix64: every bit of the tail moves every bit of the hash.
        std::uint64_t hash = tail ^ (text.size() * 0x9e3779b97f4a7c15ULL);
        hash = (hash ^ (hash >> 30)) * 0xbf58476d1ce4e5b9ULL;
        hash = (hash ^ (hash >> 27)) * 0x94d049bb133111ebULL;
        return static_cast<std::size_t>(hash ^ (hash >> 31));
    }
};

std::string format_ms(std::chrono::milliseconds ms) {
    return std::to_string(ms.count()) + " ms";
}

}  // namespace

class Broker::Loop {
public:
    Loop(Broker& broker) : broker_(broker), socket_(broker.socket_), options_(broker.options_) {
        exits_fd_ = epoll_create1(EPOLL_CLOEXEC);
        if (exits_fd_ < 0)
            throw Error("dtask: cannot create the broker's epoll set of local workers");
        poller_.watch_other(1, exits_fd_);
    }
    ~Loop() { close(exits_fd_); }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    void run() {
        try {
            event_loop();
        } catch (const std::exception& e) {
            log_warning("broker", std::string("stopped by an unexpected error: ") + e.what());
        }
        shut_down();
    }

private:
    void event_loop() {
        for (unsigned i = 0; i < options_.local_workers; ++i)
            spawn_local();
        next_tick_ = Clock::now() + options_.heartbeat_interval;
        std::vector<zmq::message_t> frames;
        poller_.watch(socket_);
        for (;;) {
            const auto wake_at =
                respawns_.empty() ? next_tick_ : std::min(next_tick_, respawns_.front());
            // now() was read at the last wake-up, and during the burst after it.
            poller_.wait(std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now()));
            clock_.fresh();
            if (poller_.readable(0))
                break;
            if (poller_.readable(1))
                on_children_exits();
            respawn_due(now());
            if (now() >= next_tick_) {
                tick();
                next_tick_ = Clock::now() + options_.heartbeat_interval;
            }
            // Last before the wait, which then hears of what comes after.
            poller_.drained(drain(frames));
        }
    }

    /// Sends a message at the end of the burst (Outbox).
    void post(std::string_view to, std::span<zmq::message_t> frames) { outbox_.add(to, frames); }
    /// Sends a result to its client at the end of the burst, ahead of every other message.
    void post_result(std::string_view client, std::span<zmq::message_t> frames) {
        results_.add(client, frames);
    }
    /// Results go first: their client wakes while the tasks go out to the workers, and the
    /// tasks it sends back in reply are there for the broker's next receive, which then
    /// does not sleep. Sent last, they left the client, and with it one of the two cores,
    /// idle for the whole burst; batching off ran 5% faster with less CPU time in all.
    /// Only the order between a client's results and its other messages (a failure, a
    /// notice, its worker count) changes, and a client takes those in any order: results
    /// of a job that failed are dropped, and failures are reported whichever came first.
    /// The other messages go even if the results fail to: at shutdown they hold the
    /// workers' bye and the clients' failures.
    void flush_outboxes() {
        try {
            results_.flush(socket_);
        } catch (...) {
            outbox_.flush(socket_);
            throw;
        }
        outbox_.flush(socket_);
    }

    /// Handles what the socket holds now, so that a burst of messages costs one wait (up to
    /// 256 messages, then the timers get their turn), and sends what the burst posted. True
    /// if it found the socket empty.
    bool drain(std::vector<zmq::message_t>& frames) {
        const auto end = drain_burst(
            socket_, frames, 256,
            [&](std::vector<zmq::message_t>& message) {
                on_message(message);
                clock_.next();
                return true;
            },
            [&] {
                if (results_.empty() && outbox_.empty())
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

    /// When the message being handled was read (clock_).
    Clock::time_point now() const noexcept { return clock_.last(); }

    // ---- peers ----

    void on_message(std::vector<zmq::message_t>& frames) {
        if (frames.empty())
            return;
        // A view: a worker's routing id is too long to be a string without an allocation.
        const std::string_view id = as_text(frames[0]);
        Inbound message;
        try {
            message = parse(frames, 1);
        } catch (const ProtocolError& e) {
            on_protocol_error(std::string(id), e.what());
            return;
        }
        try {
            if (message.command == Command::hello) {
                on_hello(std::string(id), message);
            } else if (message.command == Command::pulse || message.command == Command::hung) {
                on_pulse(std::string(id), message);
            } else if (auto w = workers_.find(id); w != workers_.end()) {
                w->second.last_heard = now();
                on_worker_message(w->second, message);
            } else if (auto c = clients_.find(id); c != clients_.end()) {
                c->second.last_heard = now();
                on_client_message(c->second, message);
            } else if (message.command != Command::bye) {
                // A peer we dropped (declared dead, or from before a restart): it must
                // introduce itself again; whatever it held was given to others already.
                std::array frames_out{header(Command::reconnect)};
                post(id, frames_out);
            }
        } catch (const ProtocolError& e) {
            on_protocol_error(std::string(id), e.what());
        }
    }

    void on_protocol_error(const std::string& id, const std::string& what) {
        std::string who = "an unknown peer";
        if (auto w = workers_.find(id); w != workers_.end())
            who = "worker " + w->second.hello.name;
        if (auto c = clients_.find(id); c != clients_.end())
            who = "client " + c->second.name;
        log_warning("broker", "dropping " + who + " after a malformed message: " + what);
        refuse(id, "malformed message: " + what);
        if (workers_.contains(id))
            worker_lost(id, "it sent a malformed message (" + what + ")");
        if (clients_.contains(id))
            client_lost(id, "it sent a malformed message");
    }

    void refuse(const std::string& id, const std::string& reason) {
        std::array frames{header(Command::refuse), text_frame(reason)};
        post(id, frames);
    }

    void on_hello(const std::string& id, Inbound& message) {
        Hello hello = decode_body<Hello>(message.body[0], "hello");
        if (hello.platform != platform()) {
            refuse(id, "the peer's platform (" + hello.platform + ") differs from the broker's (" +
                           platform() + "): their binary data cannot be exchanged");
            log_warning("broker", "refused " + hello.name + ": platform " + hello.platform);
            return;
        }
        // A peer saying hello again starts afresh: what it held before is lost.
        if (workers_.contains(id))
            worker_lost(id, "it reconnected", false);
        if (clients_.contains(id))
            client_lost(id, "it said hello again");

        if (hello.role == Role::worker) {
            if (hello.credits == 0 || hello.credits > 65536) {
                refuse(id, "a worker must offer between 1 and 65536 credits, not " +
                               std::to_string(hello.credits));
                return;
            }
            // Only a child of ours is a local worker, whatever a peer says of itself.
            hello.local = hello.local &&
                          std::any_of(children_.begin(), children_.end(),
                                      [&](const auto& child) { return child.pid == hello.pid; });
            if (hello.local) {
                early_exits_.clear();
                joined_pids_.emplace(hello.pid, Clock::now());
            }
            WorkerPeer& worker = workers_[id];
            worker.id = id;
            worker.window = std::min(2u, hello.credits);
            for (const auto& [name, signature] : hello.jobs)
                worker.serves.emplace(name, signature);
            worker.hello = std::move(hello);
            worker.last_heard = Clock::now();
            welcome(id);
            for (auto& [job_id, job] : jobs_)
                check_definition(worker, job);
            make_hungry(worker);
            publish_worker_count();
            feed(worker);
        } else if (hello.role == Role::client) {
            ClientPeer& client = clients_[id];
            client.id = id;
            client.name = hello.name;
            // Only a client in this very process is exempt from the silence check.
            client.same_process = hello.same_process && hello.pid == getpid();
            client.index = next_client_index_++;
            client.last_heard = Clock::now();
            welcome(id);
            if (!client.same_process)
                send_status(id);
        } else {
            refuse(id, "unknown role " + std::to_string(static_cast<int>(hello.role)));
        }
    }

    void welcome(const std::string& id) {
        std::array frames{header(Command::welcome,
                                 {static_cast<std::uint64_t>(options_.heartbeat_interval.count()),
                                  options_.heartbeat_liveness})};
        post(id, frames);
    }

    void send_status(const std::string& client_id) {
        std::array frames{header(Command::status, {workers_.size()})};
        post(client_id, frames);
    }

    void publish_worker_count() {
        {
            std::lock_guard lock(broker_.mutex_);
            broker_.worker_count_ = workers_.size();
        }
        broker_.workers_changed_.notify_all();
        // A client in this process reads the count from the broker itself: its spare
        // connections may idle for long without reading.
        for (const auto& [id, client] : clients_) {
            if (!client.same_process)
                send_status(id);
        }
    }

    // ---- workers ----

    bool serves(WorkerPeer& worker, const BrokerJob& job) const {
        if (worker.asked_serial != job.serial) {
            auto it = worker.serves.find(job.name);
            worker.serves_asked = it != worker.serves.end() && it->second == job.signature;
            worker.asked_serial = job.serial;
        }
        return worker.serves_asked;
    }

    /// Tells both sides when a worker offers a job under the same name with other types.
    void check_definition(const WorkerPeer& worker, const BrokerJob& job) {
        auto it = worker.serves.find(job.name);
        if (it == worker.serves.end() || it->second == job.signature)
            return;
        const std::string text =
            "worker " + worker.hello.name + " was built with a different definition of job '" +
            job.name + "' (worker: " + it->second + "; client: " + job.signature +
            "); it will receive none of this job's subtasks: rebuild it from the same source";
        std::array to_worker{header(Command::notice, {0}), text_frame(text)};
        post(worker.id, to_worker);
        std::array to_client{header(Command::notice, {job.client_job}), text_frame(text)};
        post(job.client, to_client);
    }

    void on_worker_message(WorkerPeer& worker, Inbound& message) {
        switch (message.command) {
            case Command::heartbeat:
                return;
            case Command::result:
                return on_result(worker, message);
            case Command::failure:
                return on_failure(worker, message);
            case Command::bye:
                return worker_lost(worker.id, "it left", false);
            default:
                throw ProtocolError("a worker may not send a " +
                                    std::string(command_name(message.command)) + " message");
        }
    }

    void on_result(WorkerPeer& worker, Inbound& message) {
        const std::uint64_t job_id = message.fields[0];
        const std::uint64_t first = message.fields[1];
        const std::uint64_t count = message.fields[2];
        auto held = worker.find(job_id, first);
        if (held == worker.held.end())
            return;  // requeued, revoked or stale: not ours
        if (count == 0)
            throw ProtocolError("a result message of no results");
        if (count > held->end() - first)
            return;  // a run of another batch that starts in this one: a revoked copy's

        check_batch(message.batch, count, "result batch");
        held->next = std::max(held->next, first + count);
        BrokerJob* job = job_of(job_id);
        if (job != nullptr) {
            // A run cannot have taken longer than the broker has waited for it: a worker's
            // absurd report must not hold every worker to 2 batches for the rest of the job.
            const auto waited = std::max<std::int64_t>(
                0,
                std::chrono::duration_cast<std::chrono::nanoseconds>(now() - held->sent).count());
            job->map_ns += static_cast<double>(
                std::min(message.fields[3], static_cast<std::uint64_t>(waited)));
            job->mapped += count;
            // Forwarded as it came, but for the job id: the client's own.
            set_job_id(*message.frame, job->client_job);
            std::array out{std::move(*message.frame)};
            post_result(job->client, out);
        }
        std::vector<std::string> revoked;
        if (held->next == held->end())
            batch_done(worker, held, job, revoked);
        if (worker.has_room())
            make_hungry(worker);
        feed(worker);
        feed_all(revoked);
    }

    /// Every result of a batch came back: its credit is free, and what it took tells how
    /// many batches the worker should hold and whether a running one is late.
    void batch_done(WorkerPeer& worker, std::deque<Held>::iterator held, BrokerJob* job,
                    std::vector<std::string>& revoked) {
        const auto now = clock_.last();
        const auto started = std::max(held->sent, worker.last_result_at);
        if (worker.held.size() > 1 && worker.last_result_at > held->sent) {
            // It ran this batch right after the last one: the time between them is what a
            // batch costs it, transport included.
            const double interval = static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - worker.last_result_at)
                    .count());
            worker.finish_interval_ns = worker.finish_interval_ns == 0
                                            ? interval
                                            : 0.75 * worker.finish_interval_ns + 0.25 * interval;
            size_window(worker);
        }
        worker.last_result_at = now;
        if (job != nullptr) {
            job->run_time += now - started;
            job->runs += held->count;
            settle_copies(*job, held->first, held->count, worker.id, revoked);
        }
        worker.release(held);
    }

    /// Credits sized from the measured cost of a batch: enough batches to cover
    /// credit_window_time, at least 2, at most what the worker offered.
    void size_window(WorkerPeer& worker) {
        if (worker.finish_interval_ns <= 0)
            return;
        const double wanted = std::ceil(
            static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(credit_window_time).count()) /
            worker.finish_interval_ns);
        worker.window = static_cast<unsigned>(std::min(
            std::max(wanted, 2.0), static_cast<double>(std::max(worker.hello.credits, 1u))));
    }

    /// A batch ended on `winner`: every other copy of it is revoked, its credit given back.
    void settle_copies(BrokerJob& job, std::uint64_t first, std::uint64_t count,
                       const std::string& winner, std::vector<std::string>& revoked) {
        auto it = job.copies.find(first);
        if (it == job.copies.end() || !it->second.of(count, winner))
            return;  // no copies, or of another batch that starts at the same index
        const auto holders = std::move(it->second.holders);
        job.copies.erase(it);
        for (const auto& id : holders) {
            auto holder = workers_.find(id);
            if (id == winner || holder == workers_.end())
                continue;
            auto copy = holder->second.find(job.id, first);
            if (copy == holder->second.held.end() || copy->first != first || copy->count != count)
                continue;
            holder->second.release(copy);
            // If it has not started the copy it skips it; if it has, the result is ignored.
            std::array frames{header(Command::revoke, {job.id, first})};
            post(id, frames);
            make_hungry(holder->second);
            revoked.push_back(id);
        }
    }

    void feed_all(const std::vector<std::string>& ids) {
        for (const auto& id : ids) {
            if (auto worker = workers_.find(id); worker != workers_.end())
                feed(worker->second);
        }
    }

    /// Whether another worker still runs a copy of `holder`'s batch; forgets that copy.
    bool other_copy_runs(BrokerJob& job, const Held& batch, const std::string& holder) {
        auto it = job.copies.find(batch.first);
        if (it == job.copies.end() || !it->second.of(batch.count, holder))
            return false;  // no copies, or of another batch that starts at the same index
        std::erase(it->second.holders, holder);
        const bool others = !it->second.holders.empty();
        if (it->second.holders.size() <= 1)
            job.copies.erase(it);  // one copy left: an ordinary batch again
        return others;
    }

    /// Counts an attempt the subtask spoiled; true when that used up the job's attempts.
    bool spoil(BrokerJob& job, std::uint64_t index) {
        return ++job.spoiled[index] >= job.settings.max_attempts;
    }

    void on_failure(WorkerPeer& worker, Inbound& message) {
        const std::uint64_t job_id = message.fields[0];
        const std::uint64_t index = message.fields[1];
        Failure report = decode_body<Failure>(message.body[0], "a failure report");
        // Only a subtask of a batch this worker holds can fail: a stale report (from before a
        // reconnect, or about a batch given to another worker since) changes nothing.
        auto held = worker.find(job_id, index);
        const bool ours = held != worker.held.end();
        auto job = jobs_.find(job_id);
        if (report.kind == FailureKind::timeout)
            throw ProtocolError("a worker reports a timeout with hung, not failure");
        if (!ours)
            return;
        const bool retried = report.kind == FailureKind::transient && job != jobs_.end() &&
                             job->second.settings.retry_transient;
        if (!retried) {
            // The job fails; the worker runs nothing more of this batch.
            worker.release(held);
            if (job != jobs_.end()) {
                std::array out{header(Command::failure, {job->second.client_job, index}),
                               std::move(message.body[0])};
                post(job->second.client, out);
                forget_job(job_id);
            }
        } else {
            // The worker goes on with the rest of the batch; this subtask goes to the back
            // of the queue: the condition gets time to pass, and likely another worker
            // takes it.
            BrokerJob& failed_job = job->second;
            held->next = index + 1;
            Task single{index, 1,
                        slice_batch(held->payload, index - held->first, index - held->first + 1)};
            std::vector<std::string> revoked;
            if (held->next == held->end())
                batch_done(worker, held, &failed_job, revoked);
            if (!retry(failed_job, std::move(single), false)) {
                report.message += " (a transient error on each of its " +
                                  std::to_string(failed_job.spoiled[index]) +
                                  " attempts, the limit set by RunOptions::max_attempts)";
                fail_job(failed_job, index, report);
            }
            feed_all(revoked);
        }
        if (worker.has_room())
            make_hungry(worker);
        feed(worker);
    }

    /// A worker's pulse socket speaks for it while its main thread runs map: the body names
    /// the worker by its routing id. A pulse shows it alive, or leaving (SIGTERM); hung
    /// reports a subtask past its timeout, after which the worker restarts itself.
    void on_pulse(const std::string& sender, Inbound& message) {
        const std::string worker_id(as_text(message.body[0]));
        auto found = workers_.find(worker_id);
        if (message.command == Command::pulse) {
            if (found == workers_.end())
                return;  // a worker dropped already: its own socket hears of it
            found->second.last_heard = now();
            if (message.fields[0] == 1)
                worker_lost(worker_id, "it was stopped by a signal", false);
            return;
        }
        const Failure report = decode_body<Failure>(message.body[1], "a timeout report");
        // Acknowledge in any case, so that the worker restarts at once.
        std::array bye{header(Command::bye)};
        post(sender, bye);
        if (found == workers_.end())
            return;
        WorkerPeer& worker = found->second;
        make_full(worker);  // nothing more for it while it goes
        const std::uint64_t job_id = message.fields[0];
        const std::uint64_t index = message.fields[1];
        if (auto held = worker.find(job_id, index); held != worker.held.end()) {
            Held batch = std::move(*held);
            worker.release(held);
            if (auto job = jobs_.find(job_id); job != jobs_.end())
                on_timed_out(job->second, batch, index, report, worker.id);
        }
        worker_lost(worker_id, "it restarts after a subtask timed out", false);
    }

    /// After an attempt a single subtask spoiled: false if that used up the job's attempts
    /// (the caller fails the job); otherwise it is queued to run again.
    bool retry(BrokerJob& job, Task single, bool to_front) {
        if (spoil(job, single.first))
            return false;
        if (to_front)
            job.queue.push_front(std::move(single));
        else
            job.queue.push_back(std::move(single));
        place(job);
        return true;
    }

    /// What a batch had left when its worker stopped: [next, end), to run again.
    static Task remainder(Held& batch) {
        if (batch.next == batch.first)
            return Task{batch.first, batch.count, std::move(batch.payload)};
        return Task{batch.next, batch.end() - batch.next,
                    slice_batch(batch.payload, batch.next - batch.first, batch.count)};
    }

    /// Subtask `index` of `batch` hung its worker. The subtasks before it ran there, but
    /// their results are lost with the worker's restart: they and those after it go back to
    /// the queue; the hung one is retried alone, or fails the job.
    void on_timed_out(BrokerJob& job, Held& batch, std::uint64_t index, const Failure& report,
                      const std::string& worker_id) {
        if (spoil(job, index)) {
            Failure failure;
            failure.kind = FailureKind::timeout;
            failure.worker = report.worker;
            failure.message = "job '" + job.name + "': subtask " + std::to_string(index) +
                              " ran longer than its timeout of " +
                              std::to_string(job.settings.subtask_timeout_ms) + " ms on " +
                              std::to_string(job.spoiled[index]) +
                              " attempt(s), the limit (RunOptions::max_attempts); the last on "
                              "worker " +
                              report.worker;
            fail_job(job, index, failure);
            return;
        }
        log_warning("broker",
                    "job '" + job.name + "': " + report.message + "; it goes to another worker");
        if (other_copy_runs(job, batch, worker_id))
            return;  // the other copy carries on with the whole batch
        const std::uint64_t from = batch.next - batch.first;
        const std::uint64_t at = index - batch.first;
        if (at + 1 < batch.count)
            job.queue.push_front(Task{index + 1, batch.count - at - 1,
                                      slice_batch(batch.payload, at + 1, batch.count)});
        job.queue.push_front(Task{index, 1, slice_batch(batch.payload, at, at + 1)});
        if (from < at)
            job.queue.push_front(Task{batch.next, at - from, slice_batch(batch.payload, from, at)});
        place(job);
    }

    /// Gives the worker subtasks while it has credits, taking jobs in turn.
    void feed(WorkerPeer& worker) {
        if (worker.isolated)
            return;  // nothing beside a quarantined batch
        if (worker.draining && quarantined_ == 0) {
            // The quarantine emptied without it (its job ended): it serves as before.
            worker.draining = false;
            --draining_;
        }
        if (quarantined_ > 0 && reserved_for_quarantine(worker)) {
            if (!worker.held.empty()) {
                make_full(worker);  // until it has finished what it holds
                return;
            }
            if (run_quarantined(worker))
                return;
        }
        while (worker.has_room() && !rotation_.empty()) {
            bool sent = false;
            // Each pass either sends a batch or gives a job in debt a turn's worth of credit,
            // so this ends; the bound is the most passes a largest batch can owe.
            const std::size_t passes =
                rotation_.size() * (BatchSizer::max_batch / turn_quantum + 2);
            for (std::size_t pass = 0; pass < passes && !rotation_.empty(); ++pass) {
                const std::uint64_t job_id = rotation_.front();
                rotation_.pop_front();
                BrokerJob* found = job_of(job_id);
                if (found == nullptr)
                    continue;
                BrokerJob& job = *found;
                if (job.queue.empty()) {
                    job.in_rotation = false;
                    job.turn_left = 0;
                    continue;
                }
                if (!serves(worker, job)) {
                    rotation_.push_back(job_id);
                    continue;
                }
                if (job.turn_left <= 0) {
                    job.turn_left += static_cast<std::int64_t>(job.priority) * turn_quantum;
                    if (job.turn_left <= 0 && !rotation_.empty()) {
                        rotation_.push_back(job_id);  // still in debt: the others go first
                        continue;
                    }
                    job.turn_left = std::max<std::int64_t>(job.turn_left, 1);
                }
                Task task = std::move(job.queue.front());
                job.queue.pop_front();
                job.turn_left -= static_cast<std::int64_t>(task.count);
                if (job.queue.empty()) {
                    job.in_rotation = false;
                    job.turn_left = 0;
                } else if (job.turn_left > 0) {
                    rotation_.push_front(job_id);  // its turn goes on
                } else {
                    rotation_.push_back(job_id);
                }
                send_task(worker, job, std::move(task));
                sent = true;
                break;
            }
            if (!sent)
                break;
        }
        while (worker.has_room() && send_backup(worker)) {
        }
        if (!worker.has_room())
            make_full(worker);
    }

    /// A job whose running subtasks may get backup copies: it allows them, is at its tail
    /// (all sent, none queued or in quarantine), and has finished one to compare with.
    static bool may_back_up(const BrokerJob& job) {
        return job.settings.backup_tasks && job.split_done && job.queue.empty() &&
               job.quarantine.empty() && job.runs > 0;
    }

    /// Whether a subtask of the batch has spoiled an attempt already: such a batch gets no
    /// backup copy, since its retries are counted and copies would not be.
    static bool holds_spoiled(const BrokerJob& job, const Held& batch) {
        return std::any_of(job.spoiled.begin(), job.spoiled.end(), [&](const auto& entry) {
            return entry.first >= batch.first && entry.first < batch.end();
        });
    }

    /// MapReduce's backup tasks: at the tail of a job (none of its subtasks queued), the
    /// batch that has run longest, well past what the job's average subtask cost predicts
    /// for it, gets a copy on this idle worker. The first to finish wins (settle_copies).
    /// False if no batch qualifies.
    bool send_backup(WorkerPeer& idle) {
        // Looked for after every result a worker with a free credit sends: the scan of what
        // the workers hold below is done only when some job has reached its tail.
        if (idle.isolated || idle.draining ||
            std::none_of(jobs_.begin(), jobs_.end(),
                         [](const auto& entry) { return may_back_up(entry.second); }))
            return false;
        const auto now = Clock::now();
        WorkerPeer* holder = nullptr;
        Clock::duration longest{};
        for (auto& [id, other] : workers_) {
            if (id == idle.id || other.held.empty() || other.isolated)
                continue;
            // A worker runs its batches in the order they were sent: the oldest is the one
            // running, since its previous batch finished (or since it was sent, if later).
            const Held& running = other.held.front();
            auto job = jobs_.find(running.job);
            if (job == jobs_.end())
                continue;
            const BrokerJob& candidate = job->second;
            if (!may_back_up(candidate) || candidate.copies.contains(running.first) ||
                holds_spoiled(candidate, running) || !serves(idle, candidate))
                continue;
            const auto age = now - std::max(running.sent, other.last_result_at);
            const auto expected = candidate.run_time / static_cast<Clock::rep>(candidate.runs) *
                                  static_cast<Clock::rep>(running.count);
            if (age < backup_min_age || age < 2 * expected || age <= longest)
                continue;
            holder = &other;
            longest = age;
        }
        if (holder == nullptr)
            return false;
        Held& running = holder->held.front();
        BrokerJob& job = jobs_.at(running.job);
        job.copies[running.first] = Copies{running.count, {holder->id, idle.id}};
        zmq::message_t payload;
        payload.copy(running.payload);
        send_task(idle, job, Task{running.first, running.count, std::move(payload)});
        return true;
    }

    void send_task(WorkerPeer& worker, BrokerJob& job, Task task) {
        // Nearly every batch is of the job the worker's last batch was of: no set lookup.
        if (worker.last_opened_serial != job.serial && worker.opened.insert(job.id).second) {
            tell_ended(worker);  // drops their data before it takes this job's
            zmq::message_t shared;
            shared.copy(job.shared);
            std::array definition{header(Command::job, {job.id, job.settings.subtask_timeout_ms}),
                                  text_frame(job.name), text_frame(job.signature),
                                  std::move(shared)};
            post(worker.id, definition);
            job.opened_by.insert(worker.id);
        }
        worker.last_opened_serial = job.serial;
        std::array frames{zmq::message_t()};
        // Shares the bytes (header included): the frame is kept to requeue if the worker is
        // lost. Its header says job.id, task.first and task.count already.
        frames[0].copy(task.payload);
        post(worker.id, frames);
        const std::int64_t expected_ns = expected_work_ns(job, task.count);
        worker.held_work_ns += expected_ns;
        worker.held.push_back(Held{job.id, task.first, task.count, task.first,
                                   std::move(task.payload), now(), expected_ns});
    }

    /// The map time `count` subtasks of the job are expected to take. A batch of a job none of
    /// whose results has come back counts as half the window's time: a worker whose window
    /// grew on another job's tiny batches takes two of them, not its whole window, and the
    /// others get the rest until the job's cost is known.
    static std::int64_t expected_work_ns(const BrokerJob& job, std::uint64_t count) {
        constexpr auto window_ns = std::chrono::nanoseconds(credit_window_time).count();
        if (job.mapped == 0)
            return window_ns / 2;
        // Bounded so that the conversion, and the sum of what a worker holds, cannot overflow.
        const double expected =
            job.map_ns / static_cast<double>(job.mapped) * static_cast<double>(count);
        return static_cast<std::int64_t>(std::min(expected, 1e15));
    }

    void tell_ended(WorkerPeer& worker) {
        for (const std::uint64_t job_id : worker.ended) {
            std::array frames{header(Command::end, {job_id})};
            post(worker.id, frames);
        }
        worker.ended.clear();
    }

    /// Drops a worker. `crashed`: it died or went silent, so what it held is suspect and
    /// goes to quarantine; otherwise (it left, or reconnected) it goes back to the queues.
    void worker_lost(std::string id, const std::string& how,
                     bool crashed = true) {  // id by value: callers pass map keys
        auto it = workers_.find(id);
        if (it == workers_.end())
            return;
        make_full(it->second);
        WorkerPeer worker = std::move(it->second);
        workers_.erase(it);
        if (worker.draining)
            --draining_;
        for (std::uint64_t job_id : worker.opened) {
            if (auto job = jobs_.find(job_id); job != jobs_.end())
                job->second.opened_by.erase(id);
        }
        if (!worker.held.empty()) {
            log_warning("broker", "worker " + worker.hello.name + " is gone (" + how +
                                      ") holding " + std::to_string(worker.held.size()) +
                                      " batch(es) of subtasks; they go to other workers");
        }
        std::vector<std::uint64_t> requeued;
        // From the newest: each goes to the front of its queue, so the oldest ends up first.
        for (auto held = worker.held.rbegin(); held != worker.held.rend(); ++held) {
            auto job_it = jobs_.find(held->job);
            if (job_it == jobs_.end())
                continue;
            BrokerJob& job = job_it->second;
            if (other_copy_runs(job, *held, id))
                continue;  // its other copy carries on
            Task rest = remainder(*held);
            if (!crashed) {
                job.queue.push_front(std::move(rest));
                requeued.push_back(held->job);
                continue;
            }
            if (worker.isolated) {
                // It ran this batch and nothing else: a subtask in it killed the worker.
                if (rest.count > 1) {
                    // Which one is found by halving: each half runs alone in turn.
                    const std::uint64_t half = rest.count / 2;
                    job.quarantine.push_back(
                        Task{rest.first, half, slice_batch(rest.payload, 0, half)});
                    job.quarantine.push_back(Task{rest.first + half, rest.count - half,
                                                  slice_batch(rest.payload, half, rest.count)});
                    quarantined_ += 2;
                    continue;
                }
                if (spoil(job, rest.first)) {
                    const unsigned deaths = job.spoiled[rest.first];
                    Failure failure;
                    failure.kind = FailureKind::worker_lost;
                    failure.worker = worker.hello.name;
                    failure.message = "job '" + job.name + "': subtask " +
                                      std::to_string(rest.first) +
                                      " killed the worker running it, " + std::to_string(deaths) +
                                      " time(s), each time running alone, the limit set by "
                                      "RunOptions::max_attempts; the last, " +
                                      worker.hello.name + ": " + how;
                    fail_job(job, rest.first, failure);
                    continue;
                }
            }
            job.quarantine.push_back(std::move(rest));
            ++quarantined_;
        }
        publish_worker_count();
        for (std::uint64_t job_id : requeued) {
            if (auto job = jobs_.find(job_id); job != jobs_.end())
                place(job->second);
        }
        feed_idle();
    }

    /// Notes that the worker has room for more batches. No allocation: a worker goes in and
    /// out of this list with nearly every result.
    void make_hungry(WorkerPeer& worker) {
        if (worker.hungry)
            return;
        worker.hungry = true;
        worker.hungry_slot = hungry_.size();
        hungry_.push_back(&worker);
    }

    void make_full(WorkerPeer& worker) {
        if (!worker.hungry)
            return;
        worker.hungry = false;
        if (worker.hungry_slot + 1 != hungry_.size()) {
            hungry_[worker.hungry_slot] = hungry_.back();
            hungry_[worker.hungry_slot]->hungry_slot = worker.hungry_slot;
        }
        hungry_.pop_back();
    }

    /// Offers work to every worker with free credits, after work appeared that place() does
    /// not hand out (quarantined subtasks).
    void feed_idle() {
        // A copy: feeding a worker takes it off the list. Feeding loses no worker.
        const std::vector<WorkerPeer*> idle = hungry_;
        for (WorkerPeer* worker : idle)
            feed(*worker);
    }

    /// Whether this worker is (or now becomes) reserved to run a quarantined subtask alone.
    bool reserved_for_quarantine(WorkerPeer& worker) {
        if (worker.draining) {
            if (quarantined_ > 0)
                return true;
            worker.draining = false;
            --draining_;
            return false;
        }
        if (draining_ >= quarantined_)
            return false;  // enough workers are on their way to it
        const bool serves_one = std::any_of(jobs_.begin(), jobs_.end(), [&](const auto& entry) {
            return !entry.second.quarantine.empty() && serves(worker, entry.second);
        });
        if (!serves_one)
            return false;
        worker.draining = true;
        ++draining_;
        return true;
    }

    /// Sends a drained worker one quarantined batch, alone. False if it serves none.
    bool run_quarantined(WorkerPeer& worker) {
        worker.draining = false;
        --draining_;
        for (auto& [job_id, job] : jobs_) {
            if (job.quarantine.empty() || !serves(worker, job))
                continue;
            Task task = std::move(job.quarantine.front());
            job.quarantine.pop_front();
            --quarantined_;
            worker.isolated = true;
            send_task(worker, job, std::move(task));
            make_full(worker);
            return true;
        }
        return false;
    }

    // ---- clients ----

    void on_client_message(ClientPeer& client, Inbound& message) {
        switch (message.command) {
            case Command::heartbeat:
                return;
            case Command::submit:
                return on_submit(client, message);
            case Command::task:
                return on_task(client, message);
            case Command::end:
            case Command::cancel:
                return forget_job(job_id_of(client, message.fields[0]));
            case Command::split_done:
                if (auto job = jobs_.find(job_id_of(client, message.fields[0])); job != jobs_.end())
                    job->second.split_done = true;
                return;
            case Command::bye:
                return client_lost(client.id, "it left");
            default:
                throw ProtocolError("a client may not send a " +
                                    std::string(command_name(message.command)) + " message");
        }
    }

    std::uint64_t job_id_of(const ClientPeer& client, std::uint64_t client_job) const {
        if (client_job > 0xffffffffULL)
            throw ProtocolError("client job id " + std::to_string(client_job) + " is out of range");
        return (static_cast<std::uint64_t>(client.index) << 32) | client_job;
    }

    void on_submit(ClientPeer& client, Inbound& message) {
        const std::uint64_t id = job_id_of(client, message.fields[0]);
        if (jobs_.contains(id))
            throw ProtocolError("job id " + std::to_string(message.fields[0]) + " submitted twice");
        // Decoded before the job exists: a malformed frame must leave nothing behind.
        auto settings = decode_body<JobSettings>(message.body[3], "the job's settings");
        BrokerJob& job = jobs_[id];
        job.id = id;
        job.serial = ++job_serials_;
        job.client = client.id;
        job.client_job = message.fields[0];
        job.settings = std::move(settings);
        job.settings.max_attempts = std::clamp(job.settings.max_attempts, 1u, 1000u);
        job.worker_wait = std::chrono::milliseconds(std::min<std::uint64_t>(
            job.settings.worker_wait_ms, std::chrono::milliseconds::max().count()));
        job.priority = std::clamp(job.settings.priority, 1u, 1000u);
        job.name = std::string(as_text(message.body[0]));
        job.signature = std::string(as_text(message.body[1]));
        job.shared = std::move(message.body[2]);
        job.worker_deadline = deadline_after(Clock::now(), job.worker_wait);
        client.jobs.insert(id);
        for (auto& [worker_id, worker] : workers_) {
            check_definition(worker, job);
            if (serves(worker, job))
                job.waiting_for_worker = false;
        }
    }

    void on_task(ClientPeer& client, Inbound& message) {
        BrokerJob* found = job_of(job_id_of(client, message.fields[0]));
        if (found == nullptr)
            return;  // failed or cancelled meanwhile
        BrokerJob& job = *found;
        const std::uint64_t count = message.fields[2];
        if (count == 0)
            throw ProtocolError("a task batch of no subtasks");
        check_batch(message.batch, count, "task batch");
        // Kept and sent as it came, but for the job id: the broker's. A frame received is
        // this process's alone to change.
        set_job_id(*message.frame, job.id);
        job.queue.push_back(Task{message.fields[1], count, std::move(*message.frame)});
        place(job);
    }

    /// Puts a job with queued subtasks in the rotation and gives them to workers with free
    /// credits. Busy workers are not looked at: while all are busy this costs O(1).
    void place(BrokerJob& job) {
        if (job.queue.empty())
            return;
        if (!job.in_rotation) {
            rotation_.push_back(job.id);
            job.in_rotation = true;
        }
        // One batch per worker and pass, so that a few batches spread over idle workers
        // instead of filling the first one's credits.
        for (bool gave = true; gave && !job.queue.empty();) {
            gave = false;
            for (std::size_t i = 0; i < hungry_.size() && !job.queue.empty();) {
                WorkerPeer& worker = *hungry_[i];
                if (serves(worker, job) && !worker.isolated && !worker.draining) {
                    Task task = std::move(job.queue.front());
                    job.queue.pop_front();
                    send_task(worker, job, std::move(task));
                    gave = true;
                }
                if (worker.has_room())
                    ++i;
                else
                    make_full(worker);  // moves the last one into slot i
            }
        }
    }

    void fail_job(BrokerJob& job, std::uint64_t index, const Failure& failure) {
        std::array out{header(Command::failure, {job.client_job, index}), encode_body(failure)};
        post(job.client, out);
        forget_job(job.id);
    }

    /// The job of broker id `id`, or null. Nearly every message is about the job the one
    /// before was about, and a lookup in jobs_ (a division to find the bucket) was 3% of the
    /// broker thread with batching off, at three lookups a subtask: the last job found is
    /// remembered, until it is erased (forget_job).
    BrokerJob* job_of(std::uint64_t id) {
        if (last_job_ != nullptr && last_job_->id == id)
            return last_job_;
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            return nullptr;
        last_job_ = &it->second;
        return last_job_;
    }

    /// Drops a job's queue; the workers holding its definition are told to drop it too
    /// (tell_ended). Results still on their way are then ignored.
    void forget_job(std::uint64_t job_id) {
        auto it = jobs_.find(job_id);
        if (it == jobs_.end())
            return;
        for (const auto& worker_id : it->second.opened_by) {
            auto worker = workers_.find(worker_id);
            if (worker == workers_.end())
                continue;
            worker->second.opened.erase(job_id);
            worker->second.ended.push_back(job_id);
        }
        quarantined_ -= it->second.quarantine.size();
        if (auto client = clients_.find(it->second.client); client != clients_.end())
            client->second.jobs.erase(job_id);
        if (last_job_ == &it->second)
            last_job_ = nullptr;
        jobs_.erase(it);  // a stale id left in rotation_ is skipped there
    }

    void client_lost(std::string id, const std::string& how) {  // by value: callers pass map keys
        auto it = clients_.find(id);
        if (it == clients_.end())
            return;
        auto jobs = std::move(it->second.jobs);
        const std::string name = it->second.name;
        clients_.erase(it);
        if (jobs.empty())
            return;
        std::size_t queued = 0;
        for (std::uint64_t job_id : jobs) {
            if (auto job = jobs_.find(job_id); job != jobs_.end())
                for (const auto* batches : {&job->second.queue, &job->second.quarantine}) {
                    for (const Task& batch : *batches)
                        queued += batch.count;
                }
            forget_job(job_id);
        }
        // Results still on their way from workers are dropped as they arrive.
        log_warning("broker", "client " + name + " is gone (" + how + "): dropped its " +
                                  std::to_string(jobs.size()) + " job(s) and " +
                                  std::to_string(queued) + " queued subtask(s)");
    }

    // ---- time ----

    void tick() {
        const auto now = Clock::now();
        const Liveness rule(options_.heartbeat_interval, options_.heartbeat_liveness);
        const auto silence = rule.silence();
        std::vector<std::string> silent_workers, silent_clients;
        const bool unread_now = poller_.unread(socket_);
        const auto unread = [unread_now] { return unread_now; };
        for (auto& [id, worker] : workers_) {
            if (rule.silent(worker.last_heard, now, unread, last_drained_))
                silent_workers.push_back(id);
        }
        for (auto& [id, client] : clients_) {
            if (!client.same_process && rule.silent(client.last_heard, now, unread, last_drained_))
                silent_clients.push_back(id);
        }
        for (const auto& id : silent_workers) {
            worker_lost(
                id, "it sent nothing for " +
                        format_ms(std::chrono::duration_cast<std::chrono::milliseconds>(silence)));
        }
        for (const auto& id : silent_clients)
            client_lost(
                id, "it sent nothing for " +
                        format_ms(std::chrono::duration_cast<std::chrono::milliseconds>(silence)));

        for (auto& [id, worker] : workers_) {
            tell_ended(worker);
            std::array frames{header(Command::heartbeat)};
            post(id, frames);
        }
        for (const auto& [id, client] : clients_) {
            // A client in this process watches no heartbeats, and one may idle for long
            // without reading (ClientCore::run_here's spare connections).
            if (client.same_process)
                continue;
            std::array frames{header(Command::heartbeat)};
            post(id, frames);
        }
        check_worker_waits(now);
        feed_idle();  // subtasks running long enough by now may get backup copies
    }

    void check_worker_waits(Clock::time_point now) {
        std::vector<std::uint64_t> expired;
        for (auto& [job_id, entry] : jobs_) {
            BrokerJob& job = entry;  // a plain reference: clang 14 cannot capture a binding
            const bool served = std::any_of(workers_.begin(), workers_.end(), [&](auto& worker) {
                return serves(worker.second, job);
            });
            if (served) {
                job.waiting_for_worker = false;
            } else if (!job.waiting_for_worker) {
                job.waiting_for_worker = true;
                job.worker_deadline = deadline_after(now, job.worker_wait);
            } else if (now >= job.worker_deadline) {
                expired.push_back(job_id);
            }
        }
        for (std::uint64_t job_id : expired) {
            BrokerJob& job = jobs_.at(job_id);
            Failure failure;
            failure.kind = FailureKind::no_worker;
            failure.message = "job '" + job.name + "': no connected worker serves it (" +
                              job.signature + ") after waiting " + format_ms(job.worker_wait) +
                              "; the broker listens on " + listening();
            if (!early_exits_.empty())
                failure.message += "; " + early_exits_;
            if (!restarts_stopped_.empty())
                failure.message += "; " + restarts_stopped_;
            fail_job(job, 0, failure);
        }
    }

    std::string listening() const {
        std::string text;
        for (const auto& endpoint : broker_.endpoints_)
            text += (text.empty() ? "" : ", ") + endpoint;
        return text;
    }

    // ---- local worker processes ----

    void spawn_local() {
        try {
            children_.push_back(
                spawn_worker(broker_.endpoints_.front(), options_.local_worker_credits));
        } catch (const Error& e) {
            log_warning("broker", e.what());
            return;
        }
        epoll_event watch{};
        watch.events = EPOLLIN;
        watch.data.fd = children_.back().pidfd;
        if (epoll_ctl(exits_fd_, EPOLL_CTL_ADD, watch.data.fd, &watch) != 0)
            log_warning("broker", "cannot watch a local worker for its exit (epoll_ctl)");
        std::lock_guard lock(broker_.mutex_);
        broker_.local_pids_.push_back(children_.back().pid);
    }

    /// Handles the local workers that exited.
    void on_children_exits() {
        std::array<epoll_event, 16> exited{};  // more wait for the next poll
        const int count = epoll_wait(exits_fd_, exited.data(), exited.size(), 0);
        for (int i = 0; i < count; ++i)
            on_child_exit(exited[static_cast<std::size_t>(i)].data.fd);
    }

    void on_child_exit(int pidfd) {
        // Out of the set before reaping closes the pidfd: closing takes it out only if no
        // other process shares the fd (a host that forked keeps a copy), and a stale entry
        // would stay readable, or name the next pidfd given the same number.
        epoll_ctl(exits_fd_, EPOLL_CTL_DEL, pidfd, nullptr);
        auto child = std::find_if(children_.begin(), children_.end(),
                                  [&](const auto& c) { return c.pidfd == pidfd; });
        if (child == children_.end())
            return;
        const pid_t pid = child->pid;
        const std::string how = describe_wait_status(reap(*child));
        children_.erase(child);
        auto joined = joined_pids_.find(pid);
        const bool had_joined = joined != joined_pids_.end();
        if (had_joined) {
            // A worker that served a good while died of something else than a crash loop.
            if (Clock::now() - joined->second > std::chrono::seconds(30))
                deaths_in_a_row_ = 0;
            joined_pids_.erase(joined);
        }
        {
            std::lock_guard lock(broker_.mutex_);
            std::erase(broker_.local_pids_, pid);
        }
        auto worker = std::find_if(workers_.begin(), workers_.end(), [&](const auto& entry) {
            return entry.second.hello.local && entry.second.hello.pid == pid;
        });
        if (worker != workers_.end()) {
            worker_lost(worker->first, "local worker process " + std::to_string(pid) + " " + how);
        } else if (had_joined) {
            log_warning("broker", "local worker process " + std::to_string(pid) + " " + how);
        } else {
            early_exits_ = "local worker process " + std::to_string(pid) + " " + how +
                           " before it joined (does main() call dtask::init(argc, argv) first?)";
            log_warning("broker", early_exits_);
        }
        schedule_respawn();
    }

    /// Keeps the number of local workers: a dead one is replaced at once the first few
    /// times, then after a backoff that doubles with each death in a row, and not at all
    /// after too many deaths in a row (a worker that cannot live must not turn the host into
    /// a fork loop). A death more than 30 s after the one before starts a new row.
    void schedule_respawn() {
        const auto now = Clock::now();
        if (now - last_death_ > std::chrono::seconds(30))
            deaths_in_a_row_ = 0;
        last_death_ = now;
        ++deaths_in_a_row_;
        if (deaths_in_a_row_ > max_restarts_in_a_row) {
            if (deaths_in_a_row_ == max_restarts_in_a_row + 1) {
                restarts_stopped_ = "local workers died " + std::to_string(deaths_in_a_row_) +
                                    " times in a row, so the cluster stopped restarting them";
                log_warning("broker", restarts_stopped_);
            }
            return;
        }
        restarts_stopped_.clear();
        const unsigned doublings = deaths_in_a_row_ > 3 ? deaths_in_a_row_ - 4 : 0;
        const auto backoff =
            deaths_in_a_row_ <= 3
                ? std::chrono::milliseconds(0)
                : std::min(std::chrono::milliseconds(100 << std::min(doublings, 5u)),
                           std::chrono::milliseconds(2000));
        respawns_.push_back(now + backoff);
    }

    void respawn_due(Clock::time_point now) {
        while (!respawns_.empty() && respawns_.front() <= now) {
            respawns_.pop_front();
            spawn_local();
        }
    }

    void shut_down() {
        for (auto& [id, worker] : workers_) {
            if (!worker.hello.local)
                continue;
            std::array frames{header(Command::bye)};
            post(id, frames);
        }
        for (auto& [job_id, job] : jobs_) {
            Failure failure;
            failure.kind = FailureKind::shutdown;
            failure.message = "job '" + job.name + "': the broker shut down while it ran";
            std::array out{header(Command::failure, {job.client_job, 0}), encode_body(failure)};
            post(job.client, out);
        }
        try {
            flush_outboxes();
        } catch (const zmq::error_t& e) {
            log_warning("broker", std::string("cannot say goodbye: ") + e.what());
        }
        // Workers still starting have no link to receive a bye on: SIGTERM reaches them all.
        stop_children(children_, std::chrono::seconds(3));
        {
            std::lock_guard lock(broker_.mutex_);
            broker_.local_pids_.clear();
            broker_.worker_count_ = 0;
        }
        broker_.workers_changed_.notify_all();
    }

    Broker& broker_;
    zmq::socket_t& socket_;
    const BrokerOptions& options_;
    std::vector<ChildProcess> children_;
    // The pidfds of children_, watched as one: a poll costs the same for 1 or 100 of them.
    int exits_fd_ = -1;
    // By routing id, found by a view of the id received.
    std::unordered_map<std::string, WorkerPeer, ViewHash, std::equal_to<>> workers_;
    std::unordered_map<std::string, ClientPeer, ViewHash, std::equal_to<>> clients_;
    std::unordered_map<std::uint64_t, BrokerJob> jobs_;
    BrokerJob* last_job_ = nullptr;       // found last by job_of: jobs_'s elements never move
    std::deque<std::uint64_t> rotation_;  // jobs with queued subtasks, served in turn
    // Workers with room for more batches, in no order. A worker leaves it before it leaves
    // workers_, whose elements never move.
    std::vector<WorkerPeer*> hungry_;
    std::uint64_t job_serials_ = 0;  // the last BrokerJob::serial given
    std::uint32_t next_client_index_ = 1;
    std::string early_exits_;  // why the last local worker that never joined ended
    std::unordered_map<std::int64_t, Clock::time_point> joined_pids_;  // local workers: joined at
    std::size_t quarantined_ = 0;             // subtasks in all jobs' quarantines
    std::size_t draining_ = 0;                // workers reserved to run one of them
    std::deque<Clock::time_point> respawns_;  // when to start a replacement, in order
    Clock::time_point last_death_;
    unsigned deaths_in_a_row_ = 0;
    std::string restarts_stopped_;  // why no local worker is started any more
    Clock::time_point next_tick_;
    Clock::time_point last_drained_ = Clock::now();  // the socket last had nothing unread
    // When the message being handled was read, shared by everything that stamps it: read
    // once per turn, then every few messages of a burst.
    LazyClock clock_;
    SocketPoll<2> poller_{{broker_.stop_fd_, -1}};  // then exits_fd_, once made
    Outbox results_;                                // results the burst forwards to clients
    Outbox outbox_;                                 // everything else the burst sends
};

namespace {

zmq::socket_t make_router(zmq::context_t& context) {
    try {
        zmq::socket_t socket(context, zmq::socket_type::router);
        tune(socket);
        return socket;
    } catch (const zmq::error_t& e) {
        throw TransportError(std::string("dtask: cannot create the broker's socket: ") + e.what());
    }
}

}  // namespace

Broker::Broker(zmq::context_t& context, BrokerOptions options)
    : options_(std::move(options)), socket_(make_router(context)) {
    for (const auto& endpoint : options_.endpoints) {
        try {
            retry_interrupted([&] { socket_.bind(endpoint); });
        } catch (const zmq::error_t& e) {
            throw TransportError("dtask: cannot listen on '" + endpoint + "': " + e.what());
        }
        endpoints_.push_back(socket_.get(zmq::sockopt::last_endpoint));
    }
    if (!options_.inproc_endpoint.empty()) {
        try {
            retry_interrupted([&] { socket_.bind(options_.inproc_endpoint); });
        } catch (const zmq::error_t& e) {
            throw TransportError("dtask: cannot bind '" + options_.inproc_endpoint +
                                 "': " + e.what());
        }
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0)
        throw Error("dtask: cannot create the broker's stop event (eventfd)");
}

Broker::~Broker() {
    stop();
    if (stop_fd_ >= 0)
        close(stop_fd_);
}

void Broker::start() {
    thread_ = std::thread([this] {
        name_this_thread("dtask-broker");
        run();
    });
}

void Broker::run() noexcept {
    Loop loop(*this);
    loop.run();
    socket_.close();
}

void Broker::stop() {
    if (!thread_.joinable())
        return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(stop_fd_, &one, sizeof one);
    thread_.join();
}

bool Broker::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return workers_changed_.wait_for(lock, timeout, [&] { return worker_count_.load() >= count; });
}

std::vector<pid_t> Broker::local_worker_pids() const {
    std::lock_guard lock(mutex_);
    return local_pids_;
}

}  // namespace dtask::detail
