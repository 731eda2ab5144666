// Dispatch: the one place that hands batches to workers.

#include "broker/dispatch.hpp"

#include <array>

#include "broker/backups.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

void Dispatch::feed(WorkerPeer& worker) {
    if (worker.recovery.isolated)
        return;  // nothing beside a quarantined batch
    // Reserved while the quarantine holds a batch; released when it emptied without it.
    if (recovery_.reserve(worker.recovery, jobs_.all(),
                          [&](const BrokerJob& job) { return serves(worker.serving, job); })) {
        if (!worker.credits.held.empty()) {
            room_.remove(worker);  // until it has finished what it holds
            return;
        }
        if (send_quarantined(worker))
            return;
    }
    while (worker.credits.has_room() && !fair_share_.empty()) {
        auto turn =
            fair_share_.next([&](std::uint64_t id) { return jobs_.find(id); },
                             [&](const BrokerJob& job) { return serves(worker.serving, job); });
        if (turn.job == nullptr)
            break;
        send(worker, *turn.job, std::move(turn.batch));
    }
    while (worker.credits.has_room() && send_backup(worker)) {
    }
    if (!worker.credits.has_room())
        room_.remove(worker);
}

void Dispatch::place(BrokerJob& job) {
    if (job.queue.empty())
        return;
    fair_share_.join(job.id, job.turns);
    // One batch per worker and pass, so that a few batches spread over idle workers instead
    // of filling the first one's credits.
    for (bool gave = true; gave && !job.queue.empty();) {
        gave = false;
        for (std::size_t i = 0; i < room_.size() && !job.queue.empty();) {
            WorkerPeer& worker = room_[i];
            if (serves(worker.serving, job) && !worker.recovery.isolated &&
                !worker.recovery.reserved) {
                send(worker, job, job.queue.take_front());
                gave = true;
            }
            if (worker.credits.has_room())
                ++i;
            else
                room_.remove(worker);  // moves the last one into slot i
        }
    }
}

void Dispatch::feed_idle() {
    // A copy: feeding a worker takes it off the list. Feeding loses no worker.
    const std::vector<WorkerPeer*> idle = room_.workers();
    for (WorkerPeer* worker : idle)
        feed(*worker);
}

void Dispatch::feed_all(const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
        if (auto worker = peers_.workers().find(id); worker != peers_.workers().end())
            feed(worker->second);
    }
}

bool Dispatch::send_quarantined(WorkerPeer& worker) {
    QueuedBatch batch;
    BrokerJob* job = recovery_.take(
        worker.recovery, jobs_.all(),
        [&](const BrokerJob& candidate) { return serves(worker.serving, candidate); }, batch);
    if (job == nullptr)
        return false;
    send(worker, *job, std::move(batch), BatchKind::retry);
    room_.remove(worker);
    return true;
}

bool Dispatch::send_backup(WorkerPeer& idle) {
    // Looked for after every result a worker with a free credit sends: the clock is read and
    // the workers' batches scanned only when some job has reached its tail.
    if (!may_take_backup(idle, peers_, jobs_))
        return false;
    const Backup backup = choose_backup(idle, peers_, jobs_, Clock::now());
    if (backup.holder == nullptr)
        return false;
    record_copy(backup, idle);
    HeldBatch& running = backup.holder->credits.held.front();
    zmq::message_t payload;
    payload.copy(running.payload);
    stats_.backup_sent(backup.job->id);
    send(idle, *backup.job, QueuedBatch{running.first, running.count, std::move(payload)},
         BatchKind::backup);
    return true;
}

void Dispatch::send(WorkerPeer& worker, BrokerJob& job, QueuedBatch batch, BatchKind kind) {
    Serving& serving = worker.serving;
    // Nearly every batch is of the job the worker's last batch was of: no set lookup.
    if (serving.last_opened_serial != job.serial && serving.opened.insert(job.id).second) {
        tell_ended(worker);  // drops their data before it takes this job's
        std::uint64_t shared_id = 0;
        if (job.shared_object != nullptr) {
            shared_id = job.shared_object->id;
            // Once per worker: it keeps the object until the broker says unshare.
            if (serving.shared_held.insert(shared_id).second) {
                std::array share{header(Command::share, {shared_id}), zmq::message_t()};
                share[1].copy(job.shared_object->bytes);  // shares the bytes, no copy
                post(worker.id, share);
            }
        }
        zmq::message_t shared;
        shared.copy(job.shared);
        std::array definition{
            header(Command::job, {job.id, job.settings.subtask_timeout_ms, shared_id}),
            text_frame(job.name), text_frame(job.signature), std::move(shared)};
        post(worker.id, definition);
        job.opened_by.insert(worker.id);
    }
    serving.last_opened_serial = job.serial;
    std::array frames{zmq::message_t()};
    // Shares the bytes (header included): the frame is kept to requeue if the worker is
    // lost. Its header says job.id, batch.first and batch.count already.
    frames[0].copy(batch.payload);
    stats_.sent_to_worker(frames[0].size());
    post(worker.id, frames);
    const std::int64_t expected_ns = job.cost.expected_ns(batch.count);
    HeldBatch held{job.id,        batch.first, batch.count, batch.first, std::move(batch.payload),
                   clock_.last(), expected_ns};
    held.kind = static_cast<std::uint8_t>(kind);
    worker.credits.hold(std::move(held));
}

void Dispatch::tell_ended(WorkerPeer& worker) {
    for (const std::uint64_t job_id : worker.serving.ended) {
        std::array frames{header(Command::end, {job_id})};
        post(worker.id, frames);
    }
    worker.serving.ended.clear();
}

}  // namespace dtask::detail
