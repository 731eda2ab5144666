// The broker's loop, for workers: hello, results, failures, pulses and timeouts, and the loss
// of a worker. The policies decide what becomes of each batch; this acts on it.

#include <algorithm>
#include <array>

#include <unistd.h>

#include <dtask/error.hpp>

#include "broker/backups.hpp"
#include "broker/broker_loop.hpp"
#include "log.hpp"

namespace dtask::detail {

using namespace protocol;

void BrokerLoop::on_hello(const std::string& id, Inbound& message) {
    Hello hello = decode_body<Hello>(message.body[0], "hello");
    if (hello.platform != platform()) {
        refuse(id, "the peer's platform (" + hello.platform + ") differs from the broker's (" +
                       platform() + "): their binary data cannot be exchanged");
        log_warning("broker", "refused " + hello.name + ": platform " + hello.platform);
        return;
    }
    // A peer saying hello again starts afresh: what it held before is lost.
    if (peers_.workers().contains(id))
        worker_lost(id, "it reconnected", false);
    if (peers_.clients().contains(id))
        client_lost(id, "it said hello again");

    if (hello.role == Role::worker) {
        if (hello.credits == 0 || hello.credits > 65536) {
            refuse(id, "a worker must offer between 1 and 65536 credits, not " +
                           std::to_string(hello.credits));
            return;
        }
        // Only a child of ours is a local worker, whatever a peer says of itself.
        hello.local = hello.local && local_.is_child(hello.pid);
        if (hello.local)
            local_.joined(hello.pid, Clock::now());
        WorkerPeer& worker = peers_.add_worker(id, std::move(hello), Clock::now());
        welcome(id);
        for (auto& [job_id, job] : jobs_.all())
            check_definition(worker, job);
        room_.add(worker);
        publish_worker_count();
        dispatch_.feed(worker);
    } else if (hello.role == Role::client) {
        const ClientPeer& client = peers_.add_client(id, hello, getpid(), Clock::now());
        welcome(id);
        if (!client.same_process)
            send_status(id);
    } else {
        refuse(id, "unknown role " + std::to_string(static_cast<int>(hello.role)));
    }
}

void BrokerLoop::welcome(const std::string& id) {
    std::array frames{header(Command::welcome,
                             {static_cast<std::uint64_t>(options_.heartbeat_interval.count()),
                              options_.heartbeat_liveness})};
    post(id, frames);
}

void BrokerLoop::send_status(const std::string& client_id) {
    std::array frames{header(Command::status, {peers_.workers().size()})};
    post(client_id, frames);
}

void BrokerLoop::publish_worker_count() {
    {
        std::lock_guard lock(broker_.mutex_);
        broker_.worker_count_ = peers_.workers().size();
    }
    broker_.workers_changed_.notify_all();
    // A client in this process reads the count from the broker itself: its spare connections
    // may idle for long without reading.
    for (const auto& [id, client] : peers_.clients()) {
        if (!client.same_process)
            send_status(id);
    }
}

/// Tells both sides when a worker offers a job under the same name with other types.
void BrokerLoop::check_definition(const WorkerPeer& worker, const BrokerJob& job) {
    auto it = worker.serving.serves.find(job.name);
    if (it == worker.serving.serves.end() || it->second == job.signature)
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

void BrokerLoop::on_worker_message(WorkerPeer& worker, Inbound& message) {
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

void BrokerLoop::on_result(WorkerPeer& worker, Inbound& message) {
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t first = message.fields[1];
    const std::uint64_t count = message.fields[2];
    auto held = worker.credits.find(job_id, first);
    if (held == worker.credits.held.end())
        return;  // requeued, revoked or stale: not ours
    if (count == 0)
        throw ProtocolError("a result message of no results");
    if (count > held->end() - first)
        return;  // a run of another batch that starts in this one: a revoked copy's

    check_batch(message.batch, count, "result batch");
    held->next = std::max(held->next, first + count);
    BrokerJob* job = jobs_.find(job_id);
    if (job != nullptr) {
        job->cost.add(message.fields[3],
                      std::chrono::duration_cast<std::chrono::nanoseconds>(now() - held->sent).count(),
                      count);
        // Forwarded as it came, but for the job id: the client's own.
        set_job_id(*message.frame, job->client_job);
        std::array out{std::move(*message.frame)};
        post_result(job->client, out);
    }
    std::vector<std::string> revoked;
    if (held->next == held->end())
        batch_done(worker, held, job, revoked);
    if (worker.credits.has_room())
        room_.add(worker);
    dispatch_.feed(worker);
    dispatch_.feed_all(revoked);
}

/// Every result of a batch came back: its credit is free, what it took sizes the worker's
/// credit limit, and its other copies (backups) are revoked, their holders in `revoked`.
void BrokerLoop::batch_done(WorkerPeer& worker, std::deque<HeldBatch>::iterator held,
                            BrokerJob* job, std::vector<std::string>& revoked) {
    const auto started = worker.credits.finished(*held, clock_.last(), worker.hello.credits);
    if (job != nullptr) {
        job->backups.finished(clock_.last() - started, held->count);
        for (const auto& id : settle_copies(job->backups, held->first, held->count, worker.id)) {
            auto holder = peers_.workers().find(id);
            if (holder == peers_.workers().end())
                continue;
            WorkerPeer& loser = holder->second;
            auto copy = loser.credits.find(job->id, held->first);
            if (copy == loser.credits.held.end() || copy->first != held->first ||
                copy->count != held->count)
                continue;
            loser.release(copy);
            // If it has not started the copy it skips it; if it has, the result is ignored.
            std::array frames{header(Command::revoke, {job->id, held->first})};
            post(id, frames);
            room_.add(loser);
            revoked.push_back(id);
        }
    }
    worker.release(held);
}

void BrokerLoop::on_failure(WorkerPeer& worker, Inbound& message) {
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t index = message.fields[1];
    Failure report = decode_body<Failure>(message.body[0], "a failure report");
    // Only a subtask of a batch this worker holds can fail: a stale report (from before a
    // reconnect, or about a batch given to another worker since) changes nothing.
    auto held = worker.credits.find(job_id, index);
    const bool ours = held != worker.credits.held.end();
    auto job = jobs_.all().find(job_id);
    if (report.kind == FailureKind::timeout)
        throw ProtocolError("a worker reports a timeout with hung, not failure");
    if (!ours)
        return;
    const bool retried = report.kind == FailureKind::transient && job != jobs_.all().end() &&
                         job->second.settings.retry_transient;
    if (!retried) {
        // The job fails; the worker runs nothing more of this batch.
        worker.release(held);
        if (job != jobs_.all().end()) {
            std::array out{header(Command::failure, {job->second.client_job, index}),
                           std::move(message.body[0])};
            post(job->second.client, out);
            forget_job(job_id);
        }
    } else {
        // The worker goes on with the rest of the batch; this subtask goes to the back of
        // the queue (Recovery::retry).
        BrokerJob& failed_job = job->second;
        held->next = index + 1;
        QueuedBatch single{index, 1,
                           slice_batch(held->payload, index - held->first, index - held->first + 1)};
        std::vector<std::string> revoked;
        if (held->next == held->end())
            batch_done(worker, held, &failed_job, revoked);
        if (Recovery::retry(failed_job, std::move(single))) {
            dispatch_.place(failed_job);
        } else {
            report.message += " (a transient error on each of its " +
                              std::to_string(failed_job.recovery.spoiled[index]) +
                              " attempts, the limit set by RunOptions::max_attempts)";
            fail_job(failed_job, index, report);
        }
        dispatch_.feed_all(revoked);
    }
    if (worker.credits.has_room())
        room_.add(worker);
    dispatch_.feed(worker);
}

/// A worker's pulse socket speaks for it while its main thread runs map: the body names the
/// worker by its routing id. A pulse shows it alive, or leaving (SIGTERM); hung reports a
/// subtask past its timeout, after which the worker restarts itself.
void BrokerLoop::on_pulse(const std::string& sender, Inbound& message) {
    const std::string worker_id(as_text(message.body[0]));
    auto found = peers_.workers().find(worker_id);
    if (message.command == Command::pulse) {
        if (found == peers_.workers().end())
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
    if (found == peers_.workers().end())
        return;
    WorkerPeer& worker = found->second;
    room_.remove(worker);  // nothing more for it while it goes
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t index = message.fields[1];
    if (auto held = worker.credits.find(job_id, index); held != worker.credits.held.end()) {
        HeldBatch batch = std::move(*held);
        worker.release(held);
        if (auto job = jobs_.all().find(job_id); job != jobs_.all().end())
            on_timed_out(job->second, batch, index, report, worker.id);
    }
    worker_lost(worker_id, "it restarts after a subtask timed out", false);
}

/// Subtask `index` of `batch` hung its worker: it fails the job after its last attempt,
/// else it runs again alone, and the rest of the batch goes back to the queue.
void BrokerLoop::on_timed_out(BrokerJob& job, HeldBatch& batch, std::uint64_t index,
                              const Failure& report, const std::string& worker_id) {
    if (Recovery::spoil(job, index)) {
        fail_job(job, index, Recovery::timed_out(job, index, report.worker));
        return;
    }
    log_warning("broker", "job '" + job.name + "': " + report.message + "; it goes to another worker");
    if (other_copy_runs(job.backups, batch, worker_id))
        return;  // the other copy carries on with the whole batch
    Recovery::requeue_around(job, batch, index);
    dispatch_.place(job);
}

/// Drops a worker. `crashed`: it died or went silent, so what it held is suspect and goes to
/// quarantine; otherwise (it left, or reconnected) it goes back to the queues.
void BrokerLoop::worker_lost(std::string id, const std::string& how,
                             bool crashed) {  // id by value: callers pass map keys
    auto it = peers_.workers().find(id);
    if (it == peers_.workers().end())
        return;
    room_.remove(it->second);
    WorkerPeer worker = std::move(it->second);
    peers_.workers().erase(it);
    recovery_.unreserve(worker.recovery);
    for (std::uint64_t job_id : worker.serving.opened) {
        if (auto job = jobs_.all().find(job_id); job != jobs_.all().end())
            job->second.opened_by.erase(id);
    }
    auto& held = worker.credits.held;
    if (!held.empty()) {
        log_warning("broker", "worker " + worker.hello.name + " is gone (" + how + ") holding " +
                                  std::to_string(held.size()) +
                                  " batch(es) of subtasks; they go to other workers");
    }
    std::vector<std::uint64_t> requeued;
    // From the newest: each goes to the front of its queue, so the oldest ends up first.
    for (auto batch = held.rbegin(); batch != held.rend(); ++batch) {
        auto job_it = jobs_.all().find(batch->job);
        if (job_it == jobs_.all().end())
            continue;
        BrokerJob& job = job_it->second;
        if (other_copy_runs(job.backups, *batch, id))
            continue;  // its other copy carries on
        QueuedBatch rest = remainder(*batch);
        if (!crashed) {
            job.queue.push_front(std::move(rest));
            requeued.push_back(batch->job);
            continue;
        }
        const std::uint64_t first = rest.first;
        if (recovery_.crashed(job, std::move(rest), worker.recovery.isolated) == Suspect::failed)
            fail_job(job, first, Recovery::killed_its_worker(job, first, worker.hello.name, how));
    }
    publish_worker_count();
    for (std::uint64_t job_id : requeued) {
        if (auto job = jobs_.all().find(job_id); job != jobs_.all().end())
            dispatch_.place(job->second);
    }
    dispatch_.feed_idle();
}

}  // namespace dtask::detail
