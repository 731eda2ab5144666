// The monitoring token: made from the system's random source, compared in constant time.

#include "security/monitor_token.hpp"

#include "random_hex.hpp"

namespace dtask::detail {

namespace {
constexpr std::string_view prefix = "DTASK-MONITOR-";
constexpr std::size_t secret_bytes = 32;
}  // namespace

std::string new_monitor_token() {
    return std::string(prefix) + random_hex(secret_bytes, "a monitoring token");
}

bool is_monitor_token(std::string_view text) noexcept {
    if (!text.starts_with(prefix) || text.size() != prefix.size() + 2 * secret_bytes)
        return false;
    for (const char c : text.substr(prefix.size()))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

bool same_secret(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    unsigned char differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        differ |= static_cast<unsigned char>(a[i] ^ b[i]);
    return differ == 0;
}

}  // namespace dtask::detail
