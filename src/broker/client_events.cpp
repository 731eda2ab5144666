// The broker's loop, for clients and their jobs: hello, submit, batches of subtasks, the end
// of a job, the wait for a worker, and the loss of a client.

#include "broker/client_events.hpp"

#include <algorithm>
#include <array>

#include <unistd.h>

#include <dtask/error.hpp>

#include "log.hpp"

namespace dtask::detail {

using namespace protocol;

/// Takes in a client that said hello (a peer saying hello again was dropped first).
void ClientEvents::hello(const std::string& id, const Hello& hello, bool in_process) {
    const ClientPeer& client = c_.peers.add_client(id, hello, in_process, Clock::now());
    c_.welcome(id, !client.same_process);
    if (!client.same_process)
        c_.send_status(id);
}

void ClientEvents::on_message(ClientPeer& client, Inbound& message) {
    switch (message.command) {
        case Command::heartbeat:
            return;
        case Command::submit:
            return on_submit(client, message);
        case Command::task:
            return on_task(client, message);
        case Command::end:
            return c_.forget_job(job_id_of(client, message.fields[0], message.command));
        case Command::cancel:
            return c_.forget_job(job_id_of(client, message.fields[0], message.command),
                                 "cancelled");
        case Command::share:
            return c_.shared.add(client.id, message.fields[0], std::move(message.body[0]));
        case Command::unshare:
            if (auto id = c_.shared.release(client.id, message.fields[0]))
                c_.drop_shared(*id);
            return;
        case Command::split_done:
            if (BrokerJob* job =
                    c_.jobs.find(job_id_of(client, message.fields[0], message.command)))
                job->backups.split_done = true;
            return;
        case Command::bye:
            return lost(client.id, "it left");
        default:
            throw ProtocolError("a client may not send a " +
                                std::string(command_name(message.command)) + " message");
    }
}

std::uint64_t ClientEvents::job_id_of(const ClientPeer& client, std::uint64_t client_job,
                                      Command command) const {
    if (auto it = client.jobs.find(client_job); it != client.jobs.end())
        return it->second;
    // Ended or failed meanwhile: what the client sent before it heard is stale. An id past
    // any it submitted is no job of its.
    if (client_job == 0 || client_job > client.last_submitted)
        throw ProtocolError("a " + std::string(command_name(command)) + " for job " +
                            std::to_string(client_job) + ", which this client never submitted");
    return 0;
}

void ClientEvents::on_submit(ClientPeer& client, Inbound& message) {
    const std::uint64_t client_job = message.fields[0];
    if (client_job == 0 || client_job <= client.last_submitted)
        throw ProtocolError("job id " + std::to_string(client_job) + " submitted after job " +
                            std::to_string(client.last_submitted) +
                            ": a client numbers its jobs from 1 up");
    client.last_submitted = client_job;
    if (const std::string why =
            job_refusal(limits_of(client), client.name, client.jobs.size(), message.body[2].size());
        !why.empty())
        return refuse_job(client, message, FailureKind::limit, why);
    // Decoded before the job exists: a malformed frame must leave nothing behind.
    auto settings = decode_body<JobSettings>(message.body[3], "the job's settings");
    SharedRecord* shared_object = nullptr;
    if (settings.shared_object != 0) {
        std::string why;
        shared_object = c_.shared.use(client.id, settings.shared_object, why);
        if (shared_object == nullptr)
            return refuse_job(client, message, FailureKind::shared_data, why);
    }
    const std::uint64_t id = c_.jobs.new_id();
    BrokerJob& job =
        c_.jobs.submit(id, client.id, message.fields[0], std::move(settings),
                       std::string(as_text(message.body[0])), std::string(as_text(message.body[1])),
                       std::move(message.body[2]), Clock::now());
    job.shared_object = shared_object;
    client.jobs.emplace(client_job, id);
    c_.stats.job_started(job, client.name, c_.now());
    if (log_enabled(LogLevel::info)) {
        log_info("broker", "job '" + job.name + "' (" + std::to_string(id) + ") started: client " +
                               client.name + ", priority " + std::to_string(job.settings.priority));
    }
    for (auto& [worker_id, worker] : c_.peers.workers()) {
        c_.check_definition(worker, job);
        if (worker.available_for(job))
            job.worker.waiting = false;
    }
}

ClientLimits ClientEvents::limits_of(const ClientPeer& client) const {
    return client.same_process ? ClientLimits{} : c_.options.client_limits;
}

void ClientEvents::refuse_job(const ClientPeer& client, const Inbound& message, FailureKind kind,
                              const std::string& why) {
    Failure failure;
    failure.kind = kind;
    failure.message =
        "job '" + std::string(as_text(message.body[0])) + "' was refused by the broker: " + why;
    std::array out{header(Command::failure, {message.fields[0], 0}), encode_body(failure)};
    c_.post(client.id, out);
}

void ClientEvents::on_task(ClientPeer& client, Inbound& message) {
    BrokerJob* found = c_.jobs.find(job_id_of(client, message.fields[0], Command::task));
    if (found == nullptr)
        return;  // failed or cancelled meanwhile
    BrokerJob& job = *found;
    const std::uint64_t count = message.fields[2];  // at least 1, and first + count no wrap
    check_batch(message.batch, count, "task batch");
    if (const std::string why = batch_refusal(
            limits_of(client), client.name, c_.jobs.queued_bytes(client.id), message.frame->size());
        !why.empty()) {
        Failure failure;
        failure.kind = FailureKind::limit;
        failure.message =
            "job '" + job.name + "': the broker refused a batch of its subtasks: " + why;
        return c_.fail_job(job, message.fields[1], failure);
    }
    // Kept and sent as it came, but for the job id: the broker's. A frame received is this
    // process's alone to change.
    set_job_id(*message.frame, job.id);
    job.queue.push_back(QueuedBatch{message.fields[1], count, std::move(*message.frame)});
    c_.stats.subtasks_received(job.id, count);
    job.backups.split_done = false;  // more came after a window held by partials
    c_.dispatch.place(job);
}

void ClientEvents::lost(std::string id, const std::string& how) {  // by value: map keys
    auto it = c_.peers.clients().find(id);
    if (it == c_.peers.clients().end())
        return;
    auto jobs = std::move(it->second.jobs);
    const std::string name = it->second.name;
    c_.peers.clients().erase(it);
    // After its jobs: an object a job of its used is dropped as that job is forgotten.
    const auto drop_shared = [&] {
        for (const std::uint64_t shared_id : c_.shared.drop_client(id))
            c_.drop_shared(shared_id);
    };
    if (jobs.empty())
        return drop_shared();
    std::size_t queued = 0;
    for (const auto& [client_job, job_id] : jobs) {
        if (auto job = c_.jobs.all().find(job_id); job != c_.jobs.all().end())
            for (const auto* batches : {&job->second.queue, &job->second.recovery.quarantine}) {
                for (const QueuedBatch& batch : *batches)
                    queued += batch.count;
            }
        c_.forget_job(job_id, "failed", "its client " + name + " is gone (" + how + ")");
    }
    drop_shared();
    // Results still on their way from workers are dropped as they arrive.
    log_warning("broker", "client " + name + " is gone (" + how + "): dropped its " +
                              std::to_string(jobs.size()) + " job(s) and " +
                              std::to_string(queued) + " queued subtask(s)");
}

/// Fails the jobs that no connected worker has served for their worker_wait.
void ClientEvents::check_worker_waits(Clock::time_point now) {
    auto& workers = c_.peers.workers();
    const auto expired = c_.jobs.waits_expired(now, [&](const BrokerJob& job) {
        return std::any_of(workers.begin(), workers.end(),
                           [&](auto& worker) { return worker.second.available_for(job); });
    });
    // Local workers that die before they join fail the waiting jobs at once, saying why.
    std::vector<std::uint64_t> failing = expired;
    if (c_.local.fail_waiting_jobs()) {
        for (const auto& [job_id, job] : c_.jobs.all())
            if (job.worker.waiting &&
                std::find(expired.begin(), expired.end(), job_id) == expired.end())
                failing.push_back(job_id);
    }
    const std::string why_none = c_.local.why_none(now);
    for (std::uint64_t job_id : failing) {
        BrokerJob& job = c_.jobs.all().at(job_id);
        Failure failure;
        failure.kind = FailureKind::no_worker;
        failure.message =
            "job '" + job.name + "': no connected worker serves it (" + job.signature + ")" +
            (now >= job.worker.deadline ? " after waiting " + format_ms(job.worker.wait)
                                        : std::string(", and the local workers cannot start")) +
            "; the broker listens on " + c_.listening();
        if (!c_.owners_client(job.client)) {
            if (!c_.local.early_exits().empty() || !why_none.empty())
                failure.message += std::string("; ") + std::string(local_failures_for_others);
        } else {
            if (!c_.local.early_exits().empty())
                failure.message += "; " + c_.local.early_exits();
            if (!why_none.empty() && why_none != c_.local.early_exits() && !job.worker.told_why)
                failure.message += "; " + why_none;  // else the client adds the notice
        }
        c_.fail_job(job, 0, failure);
    }
}

void ClientEvents::tell_waiting_jobs(const std::string& why) {
    for (auto& entry : c_.jobs.all()) {
        BrokerJob& job = entry.second;
        if (!job.worker.waiting)
            continue;
        const std::string_view text =
            c_.owners_client(job.client) ? std::string_view(why) : local_failures_for_others;
        std::array frames{header(Command::notice, {job.client_job}), text_frame(text)};
        c_.post(job.client, frames);
        job.worker.told_why = true;
    }
}

}  // namespace dtask::detail
