// The broker's loop, for clients and their jobs: submit, batches of subtasks, the end of a
// job, its failure, the wait for a worker, and the loss of a client.

#include <algorithm>
#include <array>

#include <dtask/error.hpp>

#include "broker/broker_loop.hpp"
#include "log.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

std::string format_ms(std::chrono::milliseconds ms) {
    return std::to_string(ms.count()) + " ms";
}

}  // namespace

void BrokerLoop::on_client_message(ClientPeer& client, Inbound& message) {
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
            if (BrokerJob* job = jobs_.find(job_id_of(client, message.fields[0])))
                job->backups.split_done = true;
            return;
        case Command::bye:
            return client_lost(client.id, "it left");
        default:
            throw ProtocolError("a client may not send a " +
                                std::string(command_name(message.command)) + " message");
    }
}

std::uint64_t BrokerLoop::job_id_of(const ClientPeer& client, std::uint64_t client_job) const {
    if (client_job > 0xffffffffULL)
        throw ProtocolError("client job id " + std::to_string(client_job) + " is out of range");
    return (static_cast<std::uint64_t>(client.index) << 32) | client_job;
}

void BrokerLoop::on_submit(ClientPeer& client, Inbound& message) {
    const std::uint64_t id = job_id_of(client, message.fields[0]);
    if (jobs_.contains(id))
        throw ProtocolError("job id " + std::to_string(message.fields[0]) + " submitted twice");
    // Decoded before the job exists: a malformed frame must leave nothing behind.
    auto settings = decode_body<JobSettings>(message.body[3], "the job's settings");
    BrokerJob& job = jobs_.submit(id, client.id, message.fields[0], std::move(settings),
                                  std::string(as_text(message.body[0])),
                                  std::string(as_text(message.body[1])), std::move(message.body[2]),
                                  Clock::now());
    client.jobs.insert(id);
    for (auto& [worker_id, worker] : peers_.workers()) {
        check_definition(worker, job);
        if (serves(worker.serving, job))
            job.worker.waiting = false;
    }
}

void BrokerLoop::on_task(ClientPeer& client, Inbound& message) {
    BrokerJob* found = jobs_.find(job_id_of(client, message.fields[0]));
    if (found == nullptr)
        return;  // failed or cancelled meanwhile
    BrokerJob& job = *found;
    const std::uint64_t count = message.fields[2];
    if (count == 0)
        throw ProtocolError("a task batch of no subtasks");
    check_batch(message.batch, count, "task batch");
    // Kept and sent as it came, but for the job id: the broker's. A frame received is this
    // process's alone to change.
    set_job_id(*message.frame, job.id);
    job.queue.push_back(QueuedBatch{message.fields[1], count, std::move(*message.frame)});
    dispatch_.place(job);
}

void BrokerLoop::fail_job(BrokerJob& job, std::uint64_t index, const Failure& failure) {
    std::array out{header(Command::failure, {job.client_job, index}), encode_body(failure)};
    post(job.client, out);
    forget_job(job.id);
}

/// Drops a job's queue; the workers holding its definition are told to drop it too
/// (Dispatch::tell_ended). Results still on their way are then ignored.
void BrokerLoop::forget_job(std::uint64_t job_id) {
    auto it = jobs_.all().find(job_id);
    if (it == jobs_.all().end())
        return;
    for (const auto& worker_id : it->second.opened_by) {
        auto worker = peers_.workers().find(worker_id);
        if (worker == peers_.workers().end())
            continue;
        worker->second.serving.opened.erase(job_id);
        worker->second.serving.ended.push_back(job_id);
    }
    recovery_.forget(it->second.recovery);
    if (auto client = peers_.clients().find(it->second.client); client != peers_.clients().end())
        client->second.jobs.erase(job_id);
    jobs_.erase(it);  // a stale id left in the rotation is skipped there
}

void BrokerLoop::client_lost(std::string id, const std::string& how) {  // by value: map keys
    auto it = peers_.clients().find(id);
    if (it == peers_.clients().end())
        return;
    auto jobs = std::move(it->second.jobs);
    const std::string name = it->second.name;
    peers_.clients().erase(it);
    if (jobs.empty())
        return;
    std::size_t queued = 0;
    for (std::uint64_t job_id : jobs) {
        if (auto job = jobs_.all().find(job_id); job != jobs_.all().end())
            for (const auto* batches : {&job->second.queue, &job->second.recovery.quarantine}) {
                for (const QueuedBatch& batch : *batches)
                    queued += batch.count;
            }
        forget_job(job_id);
    }
    // Results still on their way from workers are dropped as they arrive.
    log_warning("broker", "client " + name + " is gone (" + how + "): dropped its " +
                              std::to_string(jobs.size()) + " job(s) and " +
                              std::to_string(queued) + " queued subtask(s)");
}

/// Fails the jobs that no connected worker has served for their worker_wait.
void BrokerLoop::check_worker_waits(Clock::time_point now) {
    auto& workers = peers_.workers();
    const auto expired = jobs_.waits_expired(now, [&](const BrokerJob& job) {
        return std::any_of(workers.begin(), workers.end(),
                           [&](auto& worker) { return serves(worker.second.serving, job); });
    });
    for (std::uint64_t job_id : expired) {
        BrokerJob& job = jobs_.all().at(job_id);
        Failure failure;
        failure.kind = FailureKind::no_worker;
        failure.message = "job '" + job.name + "': no connected worker serves it (" +
                          job.signature + ") after waiting " + format_ms(job.worker.wait) +
                          "; the broker listens on " + listening();
        if (!local_.early_exits().empty())
            failure.message += "; " + local_.early_exits();
        if (!local_.restarts_stopped().empty())
            failure.message += "; " + local_.restarts_stopped();
        fail_job(job, 0, failure);
    }
}

std::string BrokerLoop::listening() const {
    std::string text;
    for (const auto& endpoint : broker_.endpoints_)
        text += (text.empty() ? "" : ", ") + endpoint;
    return text;
}

}  // namespace dtask::detail
