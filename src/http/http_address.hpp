#pragma once
// The HTTP endpoint's address: "PORT" or "HOST:PORT" (HOST 127.0.0.1 if not given; PORT 0
// for a free one), and whether it is loopback, which alone needs no credential.

#include <cstdint>
#include <string>
#include <string_view>

namespace dtask::detail {

/// The address `dtaskd status` reads and `dtaskd --http` is documented with.
inline constexpr const char* default_http_address = "127.0.0.1:8787";

struct HttpAddress {
    std::string host;  // an IPv4 or IPv6 address or a name; IPv6 without brackets
    std::uint16_t port = 0;
};

/// Parses `text`; throws Error saying what is wrong with it.
HttpAddress parse_http_address(std::string_view text);
/// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(std::string_view host) noexcept;

}  // namespace dtask::detail
