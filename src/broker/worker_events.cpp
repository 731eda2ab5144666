// The broker's loop, for workers: hello, results, failures, pulses and timeouts, and the
// loss of a worker. The policies decide what becomes of each batch; this acts on it.

#include "broker/worker_events.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

#include <dtask/error.hpp>

#include "broker/backups.hpp"
#include "log.hpp"

namespace dtask::detail {

using namespace protocol;

/// Takes in a worker that said hello (a peer saying hello again was dropped first).
void WorkerEvents::hello(const std::string& id, Hello hello) {
    if (hello.credits == 0 || hello.credits > 65536) {
        c_.refuse(id, "a worker must offer between 1 and 65536 credits, not " +
                          std::to_string(hello.credits));
        return;
    }
    // Only a child of ours is a local worker, whatever a peer says of itself.
    hello.local = hello.local && c_.local.is_child(hello.pid);
    if (hello.local)
        c_.local.joined(hello.pid, Clock::now());
    WorkerPeer& worker = c_.peers.add_worker(id, std::move(hello), Clock::now());
    c_.fair_share.worker_joined(worker.serving.serves,
                                [&](std::uint64_t job_id) { return c_.jobs.find(job_id); });
    c_.welcome(id, !worker.hello.local);
    for (auto& [job_id, job] : c_.jobs.all())
        c_.check_definition(worker, job);
    c_.room.add(worker);
    c_.stats.worker_joined(worker, c_.now());
    c_.publish_worker_count();
    if (log_enabled(LogLevel::info)) {
        log_info("broker", "worker " + worker.hello.name + " joined (" +
                               (worker.hello.local ? "local" : "remote") + ", " +
                               std::to_string(c_.peers.workers().size()) + " worker(s) now)");
    }
    c_.dispatch.feed(worker);
}

void WorkerEvents::on_message(WorkerPeer& worker, Inbound& message) {
    switch (message.command) {
        case Command::heartbeat:
            return;
        case Command::result:
            return on_result(worker, message);
        case Command::failure:
            return on_failure(worker, message);
        case Command::bye:
            return lost(worker.id, "it left", false);
        default:
            throw ProtocolError("a worker may not send a " +
                                std::string(command_name(message.command)) + " message");
    }
}

void WorkerEvents::on_result(WorkerPeer& worker, Inbound& message) {
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t first = message.fields[1];
    const std::uint64_t count = message.fields[2];
    std::deque<HeldBatch>::iterator held;
    std::string why;
    switch (fit_run(worker.credits.held, job_id, first, count, held, why)) {
        case RunFit::continues:
            break;
        case RunFit::stale:
            return;  // requeued, revoked or of a job that ended: not ours
        case RunFit::wrong:
            throw ProtocolError("results for subtasks " + std::to_string(first) + " to " +
                                std::to_string(first + count - 1) + ", but " + why);
    }
    check_batch(message.batch, count, "result batch");
    held->next = first + count;
    // A worker's figure: summed without wrapping, whatever it says.
    held->map_ns +=
        std::min(message.fields[3], std::numeric_limits<std::uint64_t>::max() - held->map_ns);
    worker.subtasks_done += count;
    BrokerJob* job = c_.jobs.find(job_id);
    if (job != nullptr) {
        c_.stats.results(job_id, count, c_.now());
        job->cost.add(
            message.fields[3],
            std::chrono::duration_cast<std::chrono::nanoseconds>(c_.now() - held->sent).count(),
            count);
        // Forwarded as it came, but for the job id: the client's own.
        set_job_id(*message.frame, job->client_job);
        std::array out{std::move(*message.frame)};
        c_.post_result(job->client, out);
    }
    std::vector<std::string> revoked;
    if (held->next == held->end())
        batch_done(worker, held, job, revoked);
    if (worker.credits.has_room())
        c_.room.add(worker);
    c_.dispatch.feed(worker);
    c_.dispatch.feed_all(revoked);
}

/// Every result of a batch came back: its credit is free, what it took sizes the worker's
/// credit limit, and its other copies (backups) are revoked, their holders in `revoked`.
void WorkerEvents::batch_done(WorkerPeer& worker, std::deque<HeldBatch>::iterator held,
                              BrokerJob* job, std::vector<std::string>& revoked) {
    const auto started = worker.credits.finished(*held, c_.clock.last(), worker.hello.credits);
    c_.stats.batch_ended(worker, held->job, held->sent, held->count,
                         static_cast<BatchKind>(held->kind),
                         static_cast<std::int64_t>(std::min<std::uint64_t>(
                             held->map_ns, std::numeric_limits<std::int64_t>::max())),
                         c_.clock.last());
    if (job != nullptr) {
        job->backups.finished(c_.clock.last() - started, held->count);
        for (const auto& id : settle_copies(job->backups, held->first, held->count, worker.id)) {
            auto holder = c_.peers.workers().find(id);
            if (holder == c_.peers.workers().end())
                continue;
            WorkerPeer& loser = holder->second;
            auto copy = loser.credits.find(job->id, held->first);
            if (copy == loser.credits.held.end() || copy->first != held->first ||
                copy->count != held->count)
                continue;
            loser.release(copy);
            // If it has not started the copy it skips it; if it has, the result is ignored.
            std::array frames{header(Command::revoke, {job->id, held->first})};
            c_.post(id, frames);
            c_.room.add(loser);
            revoked.push_back(id);
        }
    }
    worker.release(held);
}

void WorkerEvents::on_failure(WorkerPeer& worker, Inbound& message) {
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t index = message.fields[1];
    Failure report = decode_body<Failure>(message.body[0], "a failure report");
    // Only a subtask of a batch this worker holds can fail: a stale report (from before a
    // reconnect, or about a batch given to another worker since) changes nothing.
    if (report.kind == FailureKind::timeout)
        throw ProtocolError("a worker reports a timeout with hung, not failure");
    if (index == std::numeric_limits<std::uint64_t>::max())
        throw ProtocolError("a failure of subtask " + std::to_string(index) +
                            ", past the last subtask index");
    std::deque<HeldBatch>::iterator held;
    std::string why;
    switch (fit_run(worker.credits.held, job_id, index, 1, held, why)) {
        case RunFit::continues:
            break;
        case RunFit::stale:
            return;
        case RunFit::wrong:
            throw ProtocolError("a failure of subtask " + std::to_string(index) + ", but " + why);
    }
    c_.stats.subtask_failed();
    c_.stats.batch_ended(worker, job_id, held->sent, index - held->next + 1, BatchKind::failure, -1,
                         c_.now());
    auto job = c_.jobs.all().find(job_id);
    const bool retried = report.kind == FailureKind::transient && job != c_.jobs.all().end() &&
                         job->second.settings.retry_transient;
    if (!retried) {
        // The job fails; the worker runs nothing more of this batch.
        worker.release(held);
        if (job != c_.jobs.all().end()) {
            std::array out{header(Command::failure, {job->second.client_job, index}),
                           std::move(message.body[0])};
            c_.post(job->second.client, out);
            c_.forget_job(job_id, "failed", report.message);
        }
    } else {
        // The worker goes on with the rest of the batch; this subtask goes to the back of
        // the queue (Recovery::retry).
        BrokerJob& failed_job = job->second;
        held->next = index + 1;
        QueuedBatch single{
            index, 1, slice_batch(held->payload, index - held->first, index - held->first + 1)};
        std::vector<std::string> revoked;
        if (held->next == held->end())
            batch_done(worker, held, &failed_job, revoked);
        if (Recovery::retry(failed_job, std::move(single))) {
            c_.stats.retried(failed_job.id, 1);
            c_.dispatch.place(failed_job);
        } else {
            report.message += " (a transient error on each of its " +
                              std::to_string(failed_job.recovery.spoiled[index]) +
                              " attempts, the limit set by RunOptions::max_attempts)";
            c_.fail_job(failed_job, index, report);
        }
        c_.dispatch.feed_all(revoked);
    }
    if (worker.credits.has_room())
        c_.room.add(worker);
    c_.dispatch.feed(worker);
}

/// A worker's pulse socket speaks for it while its main thread runs map: the body names the
/// worker by its routing id. A pulse shows it alive, or leaving (SIGTERM); hung reports a
/// subtask past its timeout, after which the worker restarts itself.
void WorkerEvents::on_pulse(const std::string& sender, Inbound& message, std::string_view user) {
    const std::string worker_id(as_text(message.body[0]));
    auto found = c_.peers.workers().find(worker_id);
    // A pulse speaks for a worker admitted as the pulse's own connection was: no remote
    // peer speaks for a local worker, nor a peer of one credential for another's worker.
    if (found != c_.peers.workers().end() && found->second.admitted_as != user)
        return;
    if (message.command == Command::pulse) {
        if (found == c_.peers.workers().end())
            return;  // a worker dropped already: its own socket hears of it
        found->second.last_heard = c_.now();
        tell_pulse_of_ended(found->second, sender);
        if (message.fields[0] == 1)
            lost(worker_id, "it was stopped by a signal", false);
        return;
    }
    const Failure report = decode_body<Failure>(message.body[1], "a timeout report");
    // Acknowledge in any case, so that the worker restarts at once.
    std::array bye{header(Command::bye)};
    c_.post(sender, bye);
    if (found == c_.peers.workers().end())
        return;
    WorkerPeer& worker = found->second;
    c_.room.remove(worker);  // nothing more for it while it goes
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t index = message.fields[1];
    bool ended = false;
    if (auto held = worker.credits.find(job_id, index); held != worker.credits.held.end()) {
        c_.stats.subtask_failed();
        c_.stats.batch_ended(worker, job_id, held->sent, held->count, BatchKind::failure, -1,
                             c_.now());
        HeldBatch batch = std::move(*held);
        worker.release(held);
        ended = batch.job_ended;
        if (auto job = c_.jobs.all().find(job_id); job != c_.jobs.all().end())
            on_timed_out(job->second, batch, index, report, worker.id);
    }
    lost(worker_id,
         ended ? "it restarts: a subtask of a job that ended did not return in time"
               : "it restarts after a subtask timed out",
         false);
}

/// A stuck worker's pulse thread (Credits::stuck) is told which ended jobs it still runs, in
/// answer to each pulse: it hears of them even if it had not pulsed when they ended.
void WorkerEvents::tell_pulse_of_ended(WorkerPeer& worker, const std::string& pulse_id) {
    if (worker.pulse_id != pulse_id)
        worker.pulse_id = pulse_id;
    if (!worker.credits.stuck)
        return;
    std::optional<std::uint64_t> told;  // batches of a job are usually side by side
    for (const HeldBatch& batch : worker.credits.held) {
        if (!batch.job_ended || told == batch.job)
            continue;
        std::array frames{header(Command::end, {batch.job})};
        c_.post(pulse_id, frames);
        told = batch.job;
    }
}

/// Subtask `index` of `batch` hung its worker: it fails the job after its last attempt,
/// else it runs again alone, and the rest of the batch goes back to the queue.
void WorkerEvents::on_timed_out(BrokerJob& job, HeldBatch& batch, std::uint64_t index,
                                const Failure& report, const std::string& worker_id) {
    if (Recovery::spoil(job, index)) {
        c_.fail_job(job, index, Recovery::timed_out(job, index, report.worker));
        return;
    }
    log_warning("broker",
                "job '" + job.name + "': " + report.message + "; it goes to another worker");
    c_.stats.retried(job.id, 1);
    if (other_copy_runs(job.backups, batch, worker_id))
        return;  // the other copy carries on with the whole batch
    Recovery::requeue_around(job, batch, index);
    c_.dispatch.place(job);
}

/// Drops a worker. `crashed`: it died or went silent, so what it held is suspect and goes to
/// quarantine; otherwise (it left, or reconnected) it goes back to the queues.
void WorkerEvents::lost(std::string id, const std::string& how,
                        bool crashed) {  // id by value: callers pass map keys
    auto it = c_.peers.workers().find(id);
    if (it == c_.peers.workers().end())
        return;
    c_.room.remove(it->second);
    c_.stats.worker_lost(it->second, how, c_.now());
    WorkerPeer worker = std::move(it->second);
    c_.peers.workers().erase(it);
    c_.fair_share.worker_left(worker.serving.serves);
    c_.recovery.unreserve(worker.recovery);
    for (std::uint64_t job_id : worker.serving.opened) {
        if (auto job = c_.jobs.all().find(job_id); job != c_.jobs.all().end())
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
        auto job_it = c_.jobs.all().find(batch->job);
        if (job_it == c_.jobs.all().end())
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
        c_.stats.retried(job.id, rest.count);
        if (c_.recovery.crashed(job, std::move(rest), worker.recovery.isolated) == Suspect::failed)
            c_.fail_job(job, first,
                        Recovery::killed_its_worker(job, first, worker.hello.name, how));
    }
    c_.publish_worker_count();
    if (log_enabled(LogLevel::info)) {
        log_info("broker", "worker " + worker.hello.name + " left (" + how + ", " +
                               std::to_string(c_.peers.workers().size()) + " worker(s) now)");
    }
    for (std::uint64_t job_id : requeued) {
        if (auto job = c_.jobs.all().find(job_id); job != c_.jobs.all().end())
            c_.dispatch.place(job->second);
    }
    c_.dispatch.feed_idle();
}

}  // namespace dtask::detail
