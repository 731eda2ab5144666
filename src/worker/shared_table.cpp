// The shared table: shared objects held by this worker, and its counts for tests.

#include "worker/shared_table.hpp"

#include <atomic>

#include <dtask/error.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {
namespace {

// This process's counts, read by worker_shared_objects() (map may call it).
std::atomic<std::uint64_t> received{0};
std::atomic<std::size_t> held{0};

}  // namespace

WorkerSharedObjects worker_shared_objects() noexcept {
    return {received.load(std::memory_order_relaxed), held.load(std::memory_order_relaxed)};
}

void SharedTable::add(std::uint64_t id, zmq::message_t bytes) {
    received.fetch_add(1, std::memory_order_relaxed);
    if (objects_.contains(id))
        throw ProtocolError("the broker sent shared object " + std::to_string(id) +
                            ", which this worker holds already");
    if (objects_.size() >= max_objects)
        throw ProtocolError("the broker sent shared object " + std::to_string(id) +
                            " while this worker holds " + std::to_string(max_objects) +
                            " of them, the most it holds");
    objects_[id].bytes = std::move(bytes);
    held.store(objects_.size(), std::memory_order_relaxed);
}

void SharedTable::remove(std::uint64_t id) {
    objects_.erase(id);
    held.store(objects_.size(), std::memory_order_relaxed);
}

std::shared_ptr<const void> SharedTable::decoded(std::uint64_t id, const JobModel& model) {
    auto it = objects_.find(id);
    if (it == objects_.end())
        throw ProtocolError("the broker referred to shared object " + std::to_string(id) +
                            ", which it never sent to this worker (or released)");
    for (const auto& [user, value] : it->second.decoded) {
        if (user == &model)
            return value;
    }
    auto value = model.load_object(protocol::as_bytes(it->second.bytes));
    it->second.decoded.emplace_back(&model, value);
    return value;
}

void SharedTable::clear() {
    objects_.clear();
    held.store(0, std::memory_order_relaxed);
}

}  // namespace dtask::detail
