// Shared objects: the broker's records of data placed once for many jobs, and their bound.

#include "broker/shared_objects.hpp"

#include <algorithm>

#include <dtask/error.hpp>

namespace dtask::detail {

void SharedObjects::add(const std::string& client, std::uint64_t client_id, zmq::message_t bytes) {
    ClientShares& shares = clients_[client];
    if (shares.ids.contains(client_id))
        throw ProtocolError("shared object " + std::to_string(client_id) + " shared twice");
    std::string refusal;
    if (shares.ids.size() >= max_objects_per_client) {
        refusal = "the client holds " + std::to_string(max_objects_per_client) +
                  " shared objects at the broker, the most it may: release shared data it no "
                  "longer needs";
    } else if (bound_ != 0 && bytes.size() > bound_ - std::min(bound_, shares.bytes)) {
        refusal = "its shared data (" + std::to_string(bytes.size()) +
                  " bytes) would take the client's shared objects at the broker to " +
                  std::to_string(shares.bytes + bytes.size()) + " bytes, over the bound of " +
                  std::to_string(bound_) +
                  " bytes (ClusterOptions::shared_bytes_per_client, dtaskd "
                  "--shared-mib-per-client): release shared data it no longer needs";
    }
    if (!refusal.empty()) {
        if (shares.refused.size() == refusals_kept)
            shares.refused.pop_front();
        shares.refused.emplace_back(client_id, std::move(refusal));
        return;
    }
    const std::uint64_t id = ++last_id_;
    shares.ids.emplace(client_id, id);
    shares.bytes += bytes.size();
    SharedRecord& record = records_[id];
    record.id = id;
    record.client = client;
    record.bytes = std::move(bytes);
}

SharedRecord* SharedObjects::use(const std::string& client, std::uint64_t client_id,
                                 std::string& why) {
    auto shares = clients_.find(client);
    if (shares != clients_.end()) {
        if (auto it = shares->second.ids.find(client_id); it != shares->second.ids.end()) {
            SharedRecord& record = records_.at(it->second);
            ++record.jobs;
            return &record;
        }
        for (const auto& [refused_id, reason] : shares->second.refused) {
            if (refused_id == client_id) {
                why = reason;
                return nullptr;
            }
        }
    }
    why = "the broker holds no shared object " + std::to_string(client_id) +
          " of this client (released, or lost when the client reconnected)";
    return nullptr;
}

bool SharedObjects::done_with(SharedRecord& record) {
    if (record.jobs > 0)
        --record.jobs;
    return record.released && record.jobs == 0;
}

std::optional<std::uint64_t> SharedObjects::release(const std::string& client,
                                                    std::uint64_t client_id) {
    auto shares = clients_.find(client);
    if (shares == clients_.end())
        return std::nullopt;
    auto it = shares->second.ids.find(client_id);
    if (it == shares->second.ids.end()) {
        std::erase_if(shares->second.refused,
                      [&](const auto& refusal) { return refusal.first == client_id; });
        return std::nullopt;  // refused when shared, or never shared
    }
    SharedRecord& record = records_.at(it->second);
    shares->second.ids.erase(it);
    record.released = true;
    if (record.jobs != 0)
        return std::nullopt;  // dropped when its last job ends
    return record.id;
}

std::vector<std::uint64_t> SharedObjects::drop_client(const std::string& client) {
    std::vector<std::uint64_t> dropped;
    auto shares = clients_.find(client);
    if (shares == clients_.end())
        return dropped;
    for (const auto& [client_id, id] : shares->second.ids) {
        SharedRecord& record = records_.at(id);
        record.released = true;
        if (record.jobs == 0)
            dropped.push_back(id);
    }
    clients_.erase(shares);
    return dropped;
}

void SharedObjects::erase(std::uint64_t id) {
    auto it = records_.find(id);
    if (it == records_.end())
        return;
    if (auto shares = clients_.find(it->second.client); shares != clients_.end())
        shares->second.bytes -= std::min(shares->second.bytes, it->second.bytes.size());
    records_.erase(it);
}

std::size_t SharedObjects::bytes_of(const std::string& client) const {
    auto shares = clients_.find(client);
    return shares == clients_.end() ? 0 : shares->second.bytes;
}

}  // namespace dtask::detail
