#pragma once
// Releases (docs/protocol.md, "Releases"): workers and clients run the dtask release their
// broker runs. A hello carries its sender's release in its one header field, which every
// protocol version from 8 on keeps there, as every version keeps the role in the first byte
// of a hello's body. A peer of another release or protocol version is refused, with a
// reason that names both, in a refuse of its own protocol version: a refuse has the same
// shape in every version, so the peer can read it. This decides; the broker's loop acts.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail::protocol {

/// The first protocol version whose hello carries its sender's release.
inline constexpr std::uint8_t first_version_with_release = 8;

/// "dtask 0.1.0" for a release as a hello carries it (any 64 bits: it is only printed).
inline std::string release_name(std::uint64_t release) {
    return "dtask " + std::to_string(release >> 32) + "." +
           std::to_string((release >> 16) & 0xffff) + "." + std::to_string(release & 0xffff);
}

/// Why a peer is turned away for its release, and the protocol version to say it in.
struct OtherRelease {
    std::uint8_t version = 0;  // the peer's: its refuse is written in it
    std::string reason;
};

/// Whether the message frames[first...] comes from a peer of another release (a hello that
/// names another one) or of another protocol version (any message); nullopt for a message
/// of this release, and for one that is no dtask message at all (parse() names what is
/// wrong). Reads only what every version keeps: the header's first 4 bytes and, in a hello,
/// its first field and the first byte of its body.
inline std::optional<OtherRelease> other_release(const std::vector<zmq::message_t>& frames,
                                                 std::size_t first) {
    if (frames.size() <= first)
        return std::nullopt;
    const zmq::message_t& head = frames[first];
    const auto* bytes = static_cast<const unsigned char*>(head.data());
    if (head.size() < 4 || bytes[0] != magic[0] || bytes[1] != magic[1])
        return std::nullopt;
    const std::uint8_t peer_version = bytes[2];
    const bool hello = bytes[3] == static_cast<unsigned char>(Command::hello);
    if (peer_version == version && !hello)
        return std::nullopt;  // nearly every message: decided by two bytes
    std::optional<std::uint64_t> release;
    if (hello && peer_version >= first_version_with_release && head.size() >= header_size(1)) {
        std::uint64_t value = 0;
        for (int i = 7; i >= 0; --i)
            value = (value << 8) | bytes[4 + i];  // little-endian, as every field
        release = value;
    }
    if (peer_version == version && (head.size() != header_size(1) || release == this_release))
        return std::nullopt;

    std::string role = "peer";
    if (hello && frames.size() > first + 1 && frames[first + 1].size() > 0) {
        const auto byte = *static_cast<const unsigned char*>(frames[first + 1].data());
        if (byte == static_cast<unsigned char>(Role::worker))
            role = "worker";
        else if (byte == static_cast<unsigned char>(Role::client))
            role = "client";
    }
    OtherRelease other{peer_version, "this broker runs " + release_name(this_release)};
    if (peer_version == version) {
        other.reason += "; the " + role + " runs " + release_name(*release);
    } else {
        const std::string protocol_of = " (protocol version ";
        other.reason += protocol_of + std::to_string(version) + "); the " + role + " runs ";
        if (release)
            other.reason += release_name(*release);
        else
            other.reason += peer_version < version ? "an earlier dtask" : "a later dtask";
        other.reason += protocol_of + std::to_string(peer_version) + ")";
    }
    other.reason += ": run workers and clients of the same release as their broker";
    return other;
}

}  // namespace dtask::detail::protocol
