// /api/status: the snapshot as JSON.

#include "http/status_json.hpp"

#include <nlohmann/json.hpp>

#include <dtask/version.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {

namespace {

template <class T>
nlohmann::json or_null(const std::optional<T>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

std::string status_json(const StatusSnapshot& snapshot) {
    using nlohmann::json;
    json out;
    out["version"] = DTASK_VERSION_STRING;
    out["protocol"] = static_cast<int>(protocol::version);
    out["time"] = snapshot.time;
    out["uptime_seconds"] = snapshot.uptime_seconds;
    json& workers = out["workers"] = json::array();
    for (const WorkerStatus& worker : snapshot.workers)
        workers.push_back({{"id", worker.id},
                           {"local", worker.local},
                           {"jobs", worker.jobs},
                           {"batches_held", worker.batches_held},
                           {"subtasks_done", worker.subtasks_done},
                           {"last_heard_seconds", worker.last_heard_seconds},
                           {"state", worker.state}});
    json& jobs = out["jobs"] = json::array();
    for (const JobStatus& job : snapshot.jobs)
        jobs.push_back({{"id", job.id},
                        {"name", job.name},
                        {"client", job.client},
                        {"priority", job.priority},
                        {"done", job.done},
                        {"total", or_null(job.total)},
                        {"rate", job.rate},
                        {"eta_seconds", or_null(job.eta_seconds)},
                        {"retries", job.retries},
                        {"quarantined", job.quarantined},
                        {"backups", job.backups},
                        {"state", job.state},
                        {"error", or_null(job.error)},
                        {"started", job.started},
                        {"ended", or_null(job.ended)}});
    json& stream = out["stream"] = json::array();
    for (const StreamEntry& bar : snapshot.stream)
        stream.push_back({{"worker", bar.worker},
                          {"job", bar.job},
                          {"start", bar.start},
                          {"end", bar.end},
                          {"subtasks", bar.subtasks},
                          {"kind", bar.kind}});
    json& throughput = out["throughput"] = json::array();
    for (const auto& [time, subtasks] : snapshot.throughput)
        throughput.push_back({{"time", time}, {"subtasks", subtasks}});
    json& events = out["events"] = json::array();
    for (const EventEntry& event : snapshot.events)
        events.push_back({{"time", event.time}, {"kind", event.kind}, {"text", event.text}});
    // Names and errors come from peers: bytes that are not UTF-8 are replaced, not thrown on.
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace dtask::detail
