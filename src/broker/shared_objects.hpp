#pragma once
// Shared objects: data a client placed once (share) for any number of its jobs. The broker
// keeps each one's bytes, within a byte bound per client, until the client releases it
// (unshare) or leaves, and no running job refers to it any more; then the workers that hold
// it are told to drop it. Each worker is sent it once (Serving::shared_held, Dispatch).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <zmq.hpp>

namespace dtask::detail {

struct SharedRecord {
    std::uint64_t id = 0;  // the broker's: unique among all clients, never reused
    std::string client;    // routing id
    zmq::message_t bytes;
    std::size_t jobs = 0;   // jobs that refer to it and have not ended
    bool released = false;  // by its client, or its client left
};

class SharedObjects {
public:
    /// Records a client keeps refused at most: only the submit right after a share asks.
    static constexpr std::size_t refusals_kept = 8;
    /// Objects a client may hold at once: as many as a worker's table takes.
    static constexpr std::size_t max_objects_per_client = std::size_t{1} << 16;

    /// `bound`: bytes kept for one client at most; 0 for no bound.
    explicit SharedObjects(std::size_t bound) : bound_(bound) {}

    /// A client's share of object `client_id`: kept, or refused (past the bound), remembered
    /// with the reason for the submit that refers to it. Throws ProtocolError for an id the
    /// client holds already.
    void add(const std::string& client, std::uint64_t client_id, zmq::message_t bytes);
    /// The object a client's submit refers to, counted as used by one more job; null, with
    /// the reason in `why`, if there is none.
    SharedRecord* use(const std::string& client, std::uint64_t client_id, std::string& why);
    /// A job that used `record` ended: whether the record is to be dropped now.
    bool done_with(SharedRecord& record);
    /// The client released object `client_id`: its broker id, if it is to be dropped now.
    std::optional<std::uint64_t> release(const std::string& client, std::uint64_t client_id);
    /// The client left: the broker ids of its objects to drop now (its jobs were forgotten).
    std::vector<std::uint64_t> drop_client(const std::string& client);
    /// Forgets a record to be dropped; the caller tells the workers that hold it.
    void erase(std::uint64_t id);

    /// Bytes kept for `client`.
    std::size_t bytes_of(const std::string& client) const;
    std::size_t size() const noexcept { return records_.size(); }

private:
    struct ClientShares {
        std::unordered_map<std::uint64_t, std::uint64_t> ids;  // client's id -> broker's id
        std::size_t bytes = 0;
        std::deque<std::pair<std::uint64_t, std::string>> refused;  // newest last
    };

    std::size_t bound_;
    std::unordered_map<std::uint64_t, SharedRecord> records_;  // by broker id; never move
    std::unordered_map<std::string, ClientShares> clients_;
    std::uint64_t last_id_ = 0;
};

}  // namespace dtask::detail
