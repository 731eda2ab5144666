// Broker statistics: the loop's hooks, and the snapshot it publishes.

#include "http/statistics.hpp"

#include <algorithm>

#include "broker/jobs.hpp"
#include "broker/peers.hpp"

namespace dtask::detail {

std::string bounded_text(std::string_view text, std::size_t max) {
    if (text.size() <= max)
        return std::string(text);
    std::size_t end = max;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end;  // not inside a UTF-8 sequence
    return std::string(text.substr(0, end)) + "...";
}

BrokerStatistics::BrokerStatistics(bool enabled) : enabled_(enabled) {}

void BrokerStatistics::event(const char* kind, std::string text, Clock::time_point now) {
    if (events_.size() == max_events)
        events_.pop_front();
    events_.push_back(Event{now, kind, bounded_text(text, max_text)});
}

void BrokerStatistics::worker_joined(const WorkerPeer& worker, Clock::time_point now) {
    if (!enabled_)
        return;
    event("worker_joined",
          "worker " + worker.hello.name + (worker.hello.local ? " (local)" : "") + " joined", now);
}

void BrokerStatistics::worker_lost(const WorkerPeer& worker, std::string_view how,
                                   Clock::time_point now) {
    if (!enabled_)
        return;
    event("worker_lost", "worker " + worker.hello.name + " is gone: " + std::string(how), now);
}

void BrokerStatistics::job_started(const BrokerJob& job, std::string_view client,
                                   Clock::time_point now) {
    if (!enabled_)
        return;
    JobRecord& record = jobs_[job.id];
    record.status.id = job.id;
    record.status.name = bounded_text(job.name, max_text);
    record.status.client = bounded_text(client, max_text);
    record.status.priority = job.settings.priority;
    const double unix_now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    record.status.started = unix_now - std::chrono::duration<double>(Clock::now() - now).count();
    event("job_started",
          "job " + std::to_string(job.id) + " '" + record.status.name + "' of " +
              record.status.client + " started",
          now);
}

void BrokerStatistics::subtasks_received(std::uint64_t job, std::uint64_t count) {
    if (!enabled_)
        return;
    if (auto it = jobs_.find(job); it != jobs_.end())
        it->second.received += count;
}

void BrokerStatistics::results(std::uint64_t job, std::uint64_t count, Clock::time_point now) {
    counters_.subtasks_done += count;
    if (!enabled_)
        return;
    const auto second = second_of(now);
    throughput_.add(second, count);
    if (auto it = jobs_.find(job); it != jobs_.end()) {
        it->second.status.done += count;
        it->second.rate.add(second, count);
    }
}

void BrokerStatistics::batch_ended(const WorkerPeer& worker, std::uint64_t job,
                                   Clock::time_point sent, std::uint64_t subtasks, BatchKind kind,
                                   std::int64_t map_ns, Clock::time_point now) {
    if (!enabled_)
        return;
    if (map_ns >= 0) {
        const double seconds = static_cast<double>(map_ns) / 1e9;
        const auto bucket =
            std::lower_bound(map_time_bounds.begin(), map_time_bounds.end(), seconds) -
            map_time_bounds.begin();
        ++counters_.map_time_buckets[static_cast<std::size_t>(bucket)];
        counters_.map_time_sum += seconds;
        ++counters_.map_time_count;
    }
    // A batch that a worker started before its previous one of the same job ended (or just
    // after) extends that bar: at thousands of batches a second, the stream shows when each
    // worker ran which job, not a bar per batch that no page could draw.
    // A worker names itself: a long name is cut, here without an allocation per batch.
    const std::string_view name = std::string_view(worker.hello.name).substr(0, max_text);
    const std::size_t look_back = std::min<std::size_t>(stream_.size(), 8);
    for (std::size_t i = 0; i < look_back; ++i) {
        Bar& bar = stream_[stream_.size() - 1 - i];
        if (bar.job == job && bar.kind == kind && bar.end + merge_gap >= sent &&
            bar.worker == name) {
            bar.end = std::max(bar.end, now);
            bar.subtasks += subtasks;
            return;
        }
    }
    while (!stream_.empty() &&
           (stream_.size() >= max_stream || now - stream_.front().end > stream_age))
        stream_.pop_front();
    stream_.push_back(Bar{std::string(name), job, sent, now, subtasks, kind});
}

void BrokerStatistics::retried(std::uint64_t job, std::uint64_t count) {
    counters_.subtasks_retried += count;
    if (!enabled_)
        return;
    if (auto it = jobs_.find(job); it != jobs_.end())
        it->second.status.retries += count;
}

void BrokerStatistics::backup_sent(std::uint64_t job) {
    ++counters_.backup_copies;
    if (!enabled_)
        return;
    if (auto it = jobs_.find(job); it != jobs_.end())
        ++it->second.status.backups;
}

void BrokerStatistics::job_ended(std::uint64_t job, const char* state, std::string_view error,
                                 Clock::time_point now) {
    if (!enabled_)
        return;
    auto it = jobs_.find(job);
    if (it == jobs_.end())
        return;
    JobStatus status = std::move(it->second.status);
    jobs_.erase(it);
    status.state = state;
    if (std::string_view(state) == "done")
        status.total = status.done;  // else what it would have had is not known
    const double unix_now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    status.ended = unix_now - std::chrono::duration<double>(Clock::now() - now).count();
    std::string text = "job " + std::to_string(status.id) + " '" + status.name + "' ";
    if (std::string_view(state) == "failed") {
        status.error = bounded_text(error, max_text);
        event("job_failed", text + "failed: " + *status.error, now);
    } else if (std::string_view(state) == "cancelled") {
        event("job_failed", text + "was cancelled", now);
    } else {
        event("job_done", text + "is done: " + std::to_string(status.done) + " subtasks", now);
    }
    if (finished_.size() == max_finished_jobs)
        finished_.pop_front();
    finished_.push_back(std::move(status));
}

std::shared_ptr<const StatusSnapshot> BrokerStatistics::snapshot(Peers& peers, Jobs& jobs,
                                                                 Clock::time_point now) {
    published_ = now;
    auto snapshot = std::make_shared<StatusSnapshot>();
    const double unix_now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto unix_of = [&](Clock::time_point t) {
        return unix_now - std::chrono::duration<double>(now - t).count();
    };
    snapshot->time = unix_now;
    snapshot->uptime_seconds = std::chrono::duration<double>(now - started_).count();
    snapshot->counters = counters_;

    for (auto& [id, worker] : peers.workers()) {
        WorkerStatus status;
        status.id = bounded_text(worker.hello.name, max_text);
        status.local = worker.hello.local;
        status.jobs.assign(worker.serving.opened.begin(), worker.serving.opened.end());
        std::sort(status.jobs.begin(), status.jobs.end());
        status.batches_held = worker.credits.held.size();
        status.subtasks_done = worker.subtasks_done;
        status.last_heard_seconds =
            std::max(0.0, std::chrono::duration<double>(now - worker.last_heard).count());
        status.state = worker.credits.stuck                                   ? "leaving"
                       : worker.recovery.isolated || worker.recovery.reserved ? "quarantine"
                       : !worker.credits.held.empty()                         ? "busy"
                                                                              : "idle";
        snapshot->workers.push_back(std::move(status));
    }
    std::sort(snapshot->workers.begin(), snapshot->workers.end(),
              [](const WorkerStatus& a, const WorkerStatus& b) { return a.id < b.id; });

    const auto second = second_of(now);
    for (auto& [id, job] : jobs.all()) {
        std::uint64_t queued = 0, quarantined = 0;
        for (const QueuedBatch& batch : job.queue)
            queued += batch.count;
        for (const QueuedBatch& batch : job.recovery.quarantine)
            quarantined += batch.count;
        snapshot->queued_subtasks += queued + quarantined;
        ++snapshot->running_jobs;
        auto record = jobs_.find(id);
        if (record == jobs_.end())
            continue;
        JobStatus status = record->second.status;
        status.quarantined = quarantined;
        status.state = status.done == 0 && job.opened_by.empty() ? "queued" : "running";
        if (job.backups.split_done)
            status.total = std::max(record->second.received, status.done);
        std::uint64_t last_ten = 0;  // the ten whole seconds before this one
        for (std::int64_t s = second - 10; s < second; ++s)
            last_ten += record->second.rate.at(s);
        status.rate = static_cast<double>(last_ten) / 10.0;
        if (status.total && status.rate > 0)
            status.eta_seconds = static_cast<double>(*status.total - status.done) / status.rate;
        snapshot->jobs.push_back(std::move(status));
    }
    std::sort(snapshot->jobs.begin(), snapshot->jobs.end(),
              [](const JobStatus& a, const JobStatus& b) { return a.id < b.id; });
    snapshot->jobs.insert(snapshot->jobs.begin(), finished_.begin(), finished_.end());

    while (!stream_.empty() && now - stream_.front().end > stream_age)
        stream_.pop_front();
    static constexpr const char* kinds[] = {"batch", "retry", "backup", "failure"};
    snapshot->stream.reserve(stream_.size());
    for (const Bar& bar : stream_)
        snapshot->stream.push_back(StreamEntry{bar.worker, bar.job, unix_of(bar.start),
                                               unix_of(bar.end), bar.subtasks,
                                               kinds[static_cast<int>(bar.kind)]});
    // Whole seconds of the last 5 minutes, oldest first; the current one is still counting.
    const double unix_second_now = unix_of(started_) + static_cast<double>(second);
    for (std::int64_t s = std::max<std::int64_t>(0, second - 300); s < second; ++s)
        snapshot->throughput.emplace_back(unix_second_now - static_cast<double>(second - s),
                                          throughput_.at(s));
    for (const Event& event : events_)
        snapshot->events.push_back(EventEntry{unix_of(event.time), event.kind, event.text});
    return snapshot;
}

}  // namespace dtask::detail
