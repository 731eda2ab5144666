// The broker's context: the acts the loop and its handlers share.

#include "broker/broker_context.hpp"

#include <array>

#include "log.hpp"
#include "random_hex.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

/// A random incarnation, never 0 (a client's "none known yet").
std::uint64_t new_incarnation() {
    const std::uint64_t drawn = std::stoull(random_hex(8, "the broker's incarnation"), nullptr, 16);
    return drawn != 0 ? drawn : 1;
}

}  // namespace

BrokerContext::BrokerContext(Broker& owner)
    : broker(owner),
      options(owner.options_),
      incarnation(new_incarnation()),
      local(owner.endpoints_, owner.options_.local_worker_credits,
            owner.options_.local_worker_respawn, owner.mutex_, owner.local_pids_) {}

void BrokerContext::refuse(const std::string& id, const std::string& reason,
                           std::uint8_t in_version) {
    std::array frames{refuse_header(in_version), text_frame(reason)};
    post(id, frames);
}

void BrokerContext::welcome(const std::string& id, bool bounded) {
    // The largest frame the peer may send: the listen endpoints' bound, which a local worker
    // or a client in this process does not meet (0: none).
    const std::uint64_t max_message = bounded && !options.endpoints.empty()
                                          ? static_cast<std::uint64_t>(options.max_message_bytes)
                                          : 0;
    std::array frames{
        header(Command::welcome, {static_cast<std::uint64_t>(pace.interval().count()),
                                  options.heartbeat_liveness, max_message, incarnation})};
    post(id, frames);
}

void BrokerContext::send_status(const std::string& client_id) {
    std::array frames{header(Command::status, {peers.workers().size()})};
    post(client_id, frames);
}

void BrokerContext::publish_worker_count() {
    {
        std::lock_guard lock(broker.mutex_);
        broker.worker_count_ = peers.workers().size();
    }
    broker.state_changed_.notify_all();
    // A client in this process reads the count from the broker itself: its spare connections
    // may idle for long without reading.
    for (const auto& [id, client] : peers.clients()) {
        if (!client.same_process)
            send_status(id);
    }
}

/// Tells both sides when a worker offers a job under the same name with other types.
void BrokerContext::check_definition(const WorkerPeer& worker, const BrokerJob& job) {
    auto it = worker.serving.serves.find(job.name);
    if (it == worker.serving.serves.end() || it->second == job.signature)
        return;
    const std::string text =
        "worker " + worker.hello.name + " was built with a different definition of job '" +
        job.name + "' (worker: " + it->second + "; client: " + job.signature +
        "); it will receive none of this job's subtasks: rebuild it from the same source";
    std::array to_worker{header(Command::notice, {0}), text_frame(text)};
    post(worker.id, to_worker);
    // A client from elsewhere hears of its own job only: not which host runs the worker, nor
    // the worker's definition (another program's types).
    const std::string told =
        owners_client(job.client)
            ? text
            : "a worker was built with a different definition of job '" + job.name +
                  "' (client: " + job.signature +
                  "); it will receive none of this job's subtasks: rebuild it from the same "
                  "source";
    std::array to_client{header(Command::notice, {job.client_job}), text_frame(told)};
    post(job.client, to_client);
}

bool BrokerContext::owners_client(const std::string& client) const {
    const auto it = peers.clients().find(client);
    return it != peers.clients().end() && it->second.admitted_as.empty();
}

void BrokerContext::fail_job(BrokerJob& job, std::uint64_t index, const Failure& failure) {
    std::array out{header(Command::failure, {job.client_job, index}), encode_body(failure)};
    post(job.client, out);
    forget_job(job.id, "failed", failure.message);
}

/// Drops a job's queue; the workers holding its definition are told to drop it too
/// (Dispatch::tell_ended). Results still on their way are then ignored.
void BrokerContext::forget_job(std::uint64_t job_id, const char* state, std::string_view error) {
    auto it = jobs.all().find(job_id);
    if (it == jobs.all().end())
        return;
    stats.job_ended(job_id, state, error, now());
    if (log_enabled(LogLevel::info)) {
        const std::string how = std::string_view(state) == "failed"
                                    ? "failed: " + std::string(error)
                                : std::string_view(state) == "cancelled" ? "cancelled by its client"
                                                                         : std::string(state);
        log_info("broker",
                 "job '" + it->second.name + "' (" + std::to_string(job_id) + ") ended: " + how);
    }
    for (const auto& worker_id : it->second.opened_by) {
        auto worker = peers.workers().find(worker_id);
        if (worker == peers.workers().end())
            continue;
        worker->second.serving.opened.erase(job_id);
        worker->second.serving.ended.push_back(job_id);
        hold_stuck(worker->second, job_id);
    }
    recovery.forget(it->second.recovery);
    fair_share.forget(job_id, it->second.name, it->second.signature, it->second.turns);
    if (SharedRecord* object = it->second.shared_object; object && shared.done_with(*object))
        drop_shared(object->id);
    if (auto client = peers.clients().find(it->second.client); client != peers.clients().end())
        client->second.jobs.erase(it->second.client_job);
    jobs.erase(it);  // a stale id left in the rotation is skipped there
}

/// A worker holding a batch of a job that ended may be inside a map that never returns: it
/// gets no work and serves no job (worker_wait) until it gives the batch back (results, or a
/// failure saying it skipped the rest) or restarts. Its pulse thread hears of the end now if
/// the worker has pulsed, else at its next pulse (WorkerEvents::on_pulse), and restarts the
/// worker if that map has not returned within ended_job_grace.
void BrokerContext::hold_stuck(WorkerPeer& worker, std::uint64_t job_id) {
    bool holds = false;
    for (HeldBatch& batch : worker.credits.held) {
        if (batch.job == job_id) {
            batch.job_ended = true;
            holds = true;
        }
    }
    if (!holds)
        return;
    worker.credits.stuck = true;
    room.remove(worker);
    if (!worker.pulse_id.empty()) {
        std::array frames{header(Command::end, {job_id})};
        post(worker.pulse_id, frames);
    }
}

void BrokerContext::drop_shared(std::uint64_t id) {
    for (auto& [worker_id, worker] : peers.workers()) {
        if (worker.serving.shared_held.erase(id) != 0) {
            std::array frames{header(Command::unshare, {id})};
            post(worker_id, frames);
        }
    }
    shared.erase(id);
}

void BrokerContext::publish_status(Clock::time_point at) {
    if (!stats.due(at))
        return;
    auto snapshot = stats.snapshot(peers, jobs, at);
    std::lock_guard lock(broker.status_mutex_);
    broker.status_ = std::move(snapshot);
}

std::string BrokerContext::listening() const {
    std::string text;
    for (const auto& endpoint : broker.endpoints_)
        text += (text.empty() ? "" : ", ") + endpoint;
    return text;
}

}  // namespace dtask::detail
