#pragma once
// Broker statistics: what the HTTP endpoint shows, kept by the broker's loop alone (no lock,
// plain counters) and published to other threads as an immutable StatusSnapshot at most
// every 250 ms. With the endpoint off it keeps nothing: every hook returns at its first test.
// Everything is bounded whatever peers send: the stream by age and count, the events and
// finished jobs by count, the names and errors by length.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/snapshot.hpp"

namespace dtask::detail {

struct WorkerPeer;
struct BrokerJob;
class Peers;
class Jobs;

/// Counts per second over the last N seconds, in a ring.
template <std::size_t N>
class SecondRing {
public:
    void add(std::int64_t second, std::uint64_t count) noexcept {
        auto& slot = slots_[static_cast<std::size_t>(second) % N];
        if (slot.second != second)
            slot = {second, 0};
        slot.count += count;
    }
    /// The count of `second`, if it is still in the ring.
    std::uint64_t at(std::int64_t second) const noexcept {
        const auto& slot = slots_[static_cast<std::size_t>(second) % N];
        return slot.second == second ? slot.count : 0;
    }

private:
    struct Slot {
        std::int64_t second = -1;
        std::uint64_t count = 0;
    };
    std::array<Slot, N> slots_{};
};

/// Kinds of batch in the task stream (StreamEntry::kind).
enum class BatchKind : std::uint8_t { batch, retry, backup, failure };

class BrokerStatistics {
public:
    using Clock = std::chrono::steady_clock;

    /// Bounds: batches in the stream, its age, events, finished jobs, and text lengths.
    static constexpr std::size_t max_stream = 5000;
    static constexpr auto stream_age = std::chrono::seconds(60);
    /// A batch sent at most this long after a bar of its worker and job ended joins that bar.
    static constexpr auto merge_gap = std::chrono::milliseconds(5);
    static constexpr std::size_t max_events = 200;
    static constexpr std::size_t max_finished_jobs = 50;
    static constexpr std::size_t max_text = 300;
    static constexpr auto publish_interval = std::chrono::milliseconds(250);

    explicit BrokerStatistics(bool enabled);

    bool enabled() const noexcept { return enabled_; }

    void received_from_worker(std::size_t bytes) noexcept {
        counters_.bytes_received_worker += bytes;
    }
    void received_from_client(std::size_t bytes) noexcept {
        counters_.bytes_received_client += bytes;
    }
    void sent_to_worker(std::size_t bytes) noexcept { counters_.bytes_sent_worker += bytes; }
    void sent_to_client(std::size_t bytes) noexcept { counters_.bytes_sent_client += bytes; }

    void worker_joined(const WorkerPeer& worker, Clock::time_point now);
    void worker_lost(const WorkerPeer& worker, std::string_view how, Clock::time_point now);
    void job_started(const BrokerJob& job, std::string_view client, Clock::time_point now);
    void subtasks_received(std::uint64_t job, std::uint64_t count);
    /// `count` results of `job` came back from `worker` (whose count the caller raised).
    void results(std::uint64_t job, std::uint64_t count, Clock::time_point now);
    /// A batch ended (all its results back, or a failure): one bar in the task stream; `map_ns`
    /// the map time its worker reported, or negative for a batch that did not finish.
    void batch_ended(const WorkerPeer& worker, std::uint64_t job, Clock::time_point sent,
                     std::uint64_t subtasks, BatchKind kind, std::int64_t map_ns,
                     Clock::time_point now);
    void subtask_failed() noexcept { ++counters_.subtasks_failed; }
    void retried(std::uint64_t job, std::uint64_t count);
    void backup_sent(std::uint64_t job);
    /// A job ended: "done", "failed" (with `error`) or "cancelled".
    void job_ended(std::uint64_t job, const char* state, std::string_view error,
                   Clock::time_point now);

    /// Whether a new snapshot is due at `now`.
    bool due(Clock::time_point now) const noexcept {
        return enabled_ && now - published_ >= publish_interval;
    }
    /// A snapshot of the broker at `now`, from its records and these statistics.
    std::shared_ptr<const StatusSnapshot> snapshot(Peers& peers, Jobs& jobs, Clock::time_point now);

private:
    struct JobRecord {
        JobStatus status;
        std::uint64_t received = 0;
        SecondRing<12> rate;
    };
    std::int64_t second_of(Clock::time_point t) const noexcept {
        return std::chrono::duration_cast<std::chrono::seconds>(t - started_).count();
    }
    void event(const char* kind, std::string text, Clock::time_point now);

    bool enabled_;
    Clock::time_point started_ = Clock::now();
    Clock::time_point published_{};
    Counters counters_;
    std::unordered_map<std::uint64_t, JobRecord> jobs_;  // live ones: as many as the broker's
    std::deque<JobStatus> finished_;
    struct Bar {
        std::string worker;
        std::uint64_t job;
        Clock::time_point start, end;
        std::uint64_t subtasks;
        BatchKind kind;
    };
    std::deque<Bar> stream_;
    struct Event {
        Clock::time_point time;
        const char* kind;
        std::string text;
    };
    std::deque<Event> events_;
    SecondRing<301> throughput_;
};

/// `text` cut to `max` bytes (at a UTF-8 boundary), for what peers name themselves.
std::string bounded_text(std::string_view text, std::size_t max);

}  // namespace dtask::detail
