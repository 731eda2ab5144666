#pragma once
// Peers: who is connected. A worker or client exists for the broker from its hello until it
// leaves, says hello again, sends a malformed message or falls silent (the Liveness rule).
// Each record is composed of the parts the policies keep of it, so that a message costs one
// lookup by routing id.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/batches.hpp"
#include "broker/credits.hpp"
#include "broker/jobs.hpp"
#include "broker/recovery.hpp"
#include "wire/connection_progress.hpp"
#include "wire/liveness.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

struct WorkerPeer {
    using Clock = std::chrono::steady_clock;

    std::string id;  // ROUTER routing id
    protocol::Hello hello;
    std::string admitted_as;  // the User-Id its hello came with: "" for the owner's own
    Clock::time_point last_heard;
    Serving serving;                  // the jobs it serves and knows
    Credits credits;                  // the batches it holds and may hold
    WorkerRecovery recovery;          // isolated or reserved for a quarantined batch
    ConnectionProgress progress;      // its connection, from its hello: moving bytes is life
    std::string pulse_id;             // routing id of its pulse socket, once it sent a pulse
    std::uint64_t subtasks_done = 0;  // results it sent, for the statistics

    /// Forgets a batch it held: finished, revoked, or failed.
    void release(std::deque<HeldBatch>::iterator batch) {
        credits.release(batch);
        if (credits.held.empty())
            recovery.isolated = false;
        if (credits.stuck)
            credits.stuck = std::any_of(credits.held.begin(), credits.held.end(),
                                        [](const HeldBatch& held) { return held.job_ended; });
    }
    /// Whether it serves `job` now: it offers it and is not stuck in an ended job's map.
    bool available_for(const BrokerJob& job) { return !credits.stuck && serves(serving, job); }
};

struct ClientPeer {
    using Clock = std::chrono::steady_clock;

    std::string id;
    std::string name;
    std::string admitted_as;    // the User-Id its hello came with: "" for the owner's own
    bool same_process = false;  // the Cluster's own client: never dropped for silence
    Clock::time_point last_heard;
    // Its jobs: its own id -> the broker's. A client names only its own jobs, so none can
    // act on another's.
    std::unordered_map<std::uint64_t, std::uint64_t> jobs;
    std::uint64_t last_submitted = 0;  // the highest job id it submitted
    ConnectionProgress progress;       // its connection, from its hello: moving bytes is life
};

/// Hashes a std::string key and a std::string_view alike, so that maps keyed by routing id
/// are searched with the received id in place. Routing ids are short and end in what tells
/// them apart (a worker's in random characters, ZeroMQ's own in a counter): their last 8
/// bytes, mixed, hash them in a few instructions instead of every byte. Equal ids are still
/// compared whole.
struct ViewHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        std::uint64_t tail = 0;
        const std::size_t size = std::min<std::size_t>(text.size(), sizeof tail);
        std::memcpy(&tail, text.data() + text.size() - size, size);
        // The 64-bit mix of splitmix64: every bit of the tail moves every bit of the hash.
        std::uint64_t hash = tail ^ (text.size() * 0x9e3779b97f4a7c15ULL);
        hash = (hash ^ (hash >> 30)) * 0xbf58476d1ce4e5b9ULL;
        hash = (hash ^ (hash >> 27)) * 0x94d049bb133111ebULL;
        return static_cast<std::size_t>(hash ^ (hash >> 31));
    }
};

class Peers {
public:
    using Clock = std::chrono::steady_clock;

    /// By routing id, found by a view of the id received. Elements never move.
    template <class Peer>
    using Map = std::unordered_map<std::string, Peer, ViewHash, std::equal_to<>>;

    /// A worker that said hello, with the credits it offered (checked by the caller).
    WorkerPeer& add_worker(const std::string& id, protocol::Hello hello, Clock::time_point now);
    /// A client that said hello; `in_process`: it came over inproc, so it is in this very
    /// process (only then is its same_process believed).
    ClientPeer& add_client(const std::string& id, const protocol::Hello& hello, bool in_process,
                           Clock::time_point now);

    /// The routing ids of the peers silent at `now` (a client in this process is never). A
    /// peer whose connection is moving bytes is not: it counts as heard at `now`.
    struct Silent {
        std::vector<std::string> workers;
        std::vector<std::string> clients;
    };
    template <class Unread>
    Silent silent(const Liveness& rule, Clock::time_point now, Unread&& unread,
                  Clock::time_point last_drained) {
        Silent found;
        const auto silent = [&](auto& peer) {
            const auto verdict =
                rule.judge(peer.last_heard, now, unread, last_drained, peer.progress);
            if (verdict == Liveness::Verdict::moving)
                peer.last_heard = now;
            return verdict == Liveness::Verdict::silent;
        };
        for (auto& [id, worker] : workers_) {
            if (silent(worker))
                found.workers.push_back(id);
        }
        for (auto& [id, client] : clients_) {
            if (!client.same_process && silent(client))
                found.clients.push_back(id);
        }
        return found;
    }

    Map<WorkerPeer>& workers() noexcept { return workers_; }
    Map<ClientPeer>& clients() noexcept { return clients_; }
    const Map<ClientPeer>& clients() const noexcept { return clients_; }

private:
    Map<WorkerPeer> workers_;
    Map<ClientPeer> clients_;
};

}  // namespace dtask::detail
