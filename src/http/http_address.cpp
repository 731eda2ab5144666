// The HTTP endpoint's address: parsed, and checked for loopback.

#include "http/http_address.hpp"

#include <charconv>

#include <arpa/inet.h>

#include <dtask/error.hpp>

namespace dtask::detail {

HttpAddress parse_http_address(std::string_view text) {
    const auto bad = [&](const std::string& why) {
        return Error("dtask: HTTP address '" + std::string(text.substr(0, 200)) + "': " + why +
                     " (give PORT or HOST:PORT, e.g. 8787 or 127.0.0.1:8787)");
    };
    HttpAddress address;
    std::string_view port = text;
    address.host = "127.0.0.1";
    if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
        std::string_view host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        if (host.empty())
            throw bad("the host is empty");
        address.host = std::string(host);
    }
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535)
        throw bad("the port is not a number from 0 to 65535");
    address.port = static_cast<std::uint16_t>(value);
    return address;
}

bool is_loopback(std::string_view host) noexcept {
    if (host == "localhost")
        return true;
    const std::string text(host);
    in_addr v4{};
    if (inet_pton(AF_INET, text.c_str(), &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    return inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace dtask::detail
