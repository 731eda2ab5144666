// /metrics: the snapshot's counters, gauges and histogram as Prometheus text.

#include "http/metrics_text.hpp"

#include <cstdio>

namespace dtask::detail {

namespace {

/// `precise`: all the digits of a sum; else the few of a bucket bound ("0.0025").
std::string number(double value, bool precise = true) {
    char text[64];
    std::snprintf(text, sizeof text, precise ? "%.17g" : "%g", value);
    return text;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, std::uint64_t value) {
    out += name + " " + std::to_string(value) + "\n";
}

}  // namespace

std::string metrics_text(const StatusSnapshot& snapshot) {
    const Counters& c = snapshot.counters;
    std::string out;
    family(out, "dtask_subtasks_done_total", "counter",
           "Subtask results forwarded to their clients (a backup copy's included; none after their "
           "job ended).");
    sample(out, "dtask_subtasks_done_total", c.subtasks_done);
    family(out, "dtask_subtasks_failed_total", "counter",
           "Subtasks whose map failed on a worker: threw, or ran past its timeout.");
    sample(out, "dtask_subtasks_failed_total", c.subtasks_failed);
    family(out, "dtask_subtasks_retried_total", "counter",
           "Subtasks queued to run again: after a transient error, a timeout or a lost worker.");
    sample(out, "dtask_subtasks_retried_total", c.subtasks_retried);
    family(out, "dtask_backup_copies_total", "counter",
           "Backup copies of slow batches sent to idle workers.");
    sample(out, "dtask_backup_copies_total", c.backup_copies);
    family(out, "dtask_bytes_received_total", "counter",
           "Bytes of the messages the broker received, by the sender's role.");
    sample(out, "dtask_bytes_received_total{role=\"worker\"}", c.bytes_received_worker);
    sample(out, "dtask_bytes_received_total{role=\"client\"}", c.bytes_received_client);
    family(out, "dtask_bytes_sent_total", "counter",
           "Bytes of subtask batches sent to workers and results sent to clients.");
    sample(out, "dtask_bytes_sent_total{role=\"worker\"}", c.bytes_sent_worker);
    sample(out, "dtask_bytes_sent_total{role=\"client\"}", c.bytes_sent_client);
    family(out, "dtask_workers", "gauge", "Workers connected.");
    sample(out, "dtask_workers", snapshot.workers.size());
    family(out, "dtask_jobs", "gauge", "Jobs running (submitted, not yet ended).");
    sample(out, "dtask_jobs", snapshot.running_jobs);
    family(out, "dtask_queued_subtasks", "gauge",
           "Subtasks waiting in the broker for a worker (queues and quarantines).");
    sample(out, "dtask_queued_subtasks", snapshot.queued_subtasks);
    family(out, "dtask_batch_map_seconds", "histogram",
           "Map time of a batch as its worker reported it, from its first subtask to its last.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < map_time_bounds.size(); ++i) {
        cumulative += c.map_time_buckets[i];
        sample(out,
               "dtask_batch_map_seconds_bucket{le=\"" + number(map_time_bounds[i], false) + "\"}",
               cumulative);
    }
    cumulative += c.map_time_buckets.back();
    sample(out, "dtask_batch_map_seconds_bucket{le=\"+Inf\"}", cumulative);
    out += "dtask_batch_map_seconds_sum " + number(c.map_time_sum) + "\n";
    sample(out, "dtask_batch_map_seconds_count", c.map_time_count);
    return out;
}

}  // namespace dtask::detail
