#pragma once
// The shared table: the shared objects the broker placed on this worker, by the broker's id,
// each held from its share until its unshare (or a new session) and decoded once per job
// type that uses it. The broker is trusted, but its messages are still bounded here.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include <dtask/detail/job_model.hpp>

namespace dtask::detail {

/// What a worker holds of shared objects: for tests, read in map.
struct WorkerSharedObjects {
    std::uint64_t received = 0;  // share messages received since the process started
    std::size_t held = 0;        // objects in its table now
};
WorkerSharedObjects worker_shared_objects() noexcept;

class SharedTable {
public:
    /// Objects held at most: a broker sends far fewer (its clients release theirs).
    static constexpr std::size_t max_objects = 1 << 16;

    /// Takes object `id`'s bytes. Throws ProtocolError for an id held already or a full table.
    void add(std::uint64_t id, zmq::message_t bytes);
    /// Drops object `id`, if held.
    void remove(std::uint64_t id);
    /// Object `id` decoded by `model`'s load_object, decoded at its first use by that model.
    /// Throws ProtocolError if it is not held, and what decoding throws.
    std::shared_ptr<const void> decoded(std::uint64_t id, const JobModel& model);
    /// A new session: the broker no longer knows what this worker holds.
    void clear();
    std::size_t size() const noexcept { return objects_.size(); }

private:
    struct Entry {
        zmq::message_t bytes;
        std::vector<std::pair<const JobModel*, std::shared_ptr<const void>>> decoded;
    };
    std::unordered_map<std::uint64_t, Entry> objects_;
};

}  // namespace dtask::detail
