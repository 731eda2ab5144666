#include "wire/outbox.hpp"

#include <algorithm>

#include "wire/protocol.hpp"

namespace dtask::detail {

void Outbox::add(std::string_view to, std::span<zmq::message_t> frames) {
    const bool routed = !to.empty();
    if (routed)
        frames_.emplace_back(to.data(), to.size());
    for (auto& frame : frames)
        frames_.push_back(std::move(frame));
    sizes_.push_back(static_cast<std::uint32_t>(frames.size() + (routed ? 1 : 0)));
}

void Outbox::flush(zmq::socket_t& socket) {
    std::size_t first = 0;
    try {
        for (const std::uint32_t size : sizes_) {
            protocol::send(socket, {}, std::span(frames_).subspan(first, size));
            first += size;
        }
    } catch (...) {
        clear();
        throw;
    }
    clear();
}

void Outbox::flush_routed(zmq::socket_t& socket, std::vector<std::string>& full,
                          std::vector<std::string>& gone) {
    std::size_t first = 0;
    try {
        for (const std::uint32_t size : sizes_) {
            const auto message = std::span(frames_).subspan(first, size);
            first += size;
            const auto delivery = protocol::send_routed(socket, message);
            if (delivery == protocol::Delivery::queued)
                continue;
            // The routing id was not taken: it is still in the message's first frame.
            auto& ids = delivery == protocol::Delivery::full ? full : gone;
            const std::string_view to = protocol::as_text(message[0]);
            if (std::find(ids.begin(), ids.end(), to) == ids.end())
                ids.emplace_back(to);
        }
    } catch (...) {
        clear();
        throw;
    }
    clear();
}

void Outbox::clear() noexcept {
    frames_.clear();
    sizes_.clear();
}

}  // namespace dtask::detail
