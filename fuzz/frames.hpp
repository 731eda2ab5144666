#pragma once
// How a fuzz input becomes a message's frames, and back (for the seed corpus): a byte with
// the number of frames, then each frame but the last as a 32-bit little-endian length (cut
// to what is left) and its bytes; the last frame is the rest.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace dtask::fuzz {

inline std::vector<zmq::message_t> split_frames(const std::uint8_t* data, std::size_t size) {
    std::vector<zmq::message_t> frames;
    if (size == 0)
        return frames;
    const std::size_t count = 1 + data[0] % 8;
    std::size_t at = 1;
    for (std::size_t i = 0; i + 1 < count; ++i) {
        std::uint32_t length = 0;
        for (int b = 0; b < 4; ++b)
            length |= at + b < size ? std::uint32_t{data[at + b]} << (8 * b) : 0;
        at = std::min(size, at + 4);
        const std::size_t take = std::min<std::size_t>(length, size - at);
        frames.emplace_back(data + at, take);
        at += take;
    }
    frames.emplace_back(data + at, size - at);
    return frames;
}

inline std::string join_frames(const std::vector<std::string>& frames) {
    std::string out(1, static_cast<char>(frames.size() - 1));  // count is 1 + byte % 8
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (i + 1 < frames.size()) {
            const auto length = static_cast<std::uint32_t>(frames[i].size());
            for (int b = 0; b < 4; ++b)
                out += static_cast<char>((length >> (8 * b)) & 0xff);
        }
        out += frames[i];
    }
    return out;
}

inline std::string as_string(const zmq::message_t& frame) {
    return std::string(static_cast<const char*>(frame.data()), frame.size());
}

}  // namespace dtask::fuzz
