#pragma once
// The monitoring token: a read-only credential for the broker's HTTP endpoint when it listens
// beyond loopback (docs/observability.md). It reads the status and the metrics, nothing else:
// it cannot join, submit or see a job's data. Sent as "Authorization: Bearer TOKEN".
//   DTASK-MONITOR-<64 hex>

#include <cstddef>
#include <string>
#include <string_view>

namespace dtask::detail {

/// Its file in a broker's keys directory.
inline constexpr const char* monitor_token_file = "monitor.token";
inline constexpr std::string_view monitor_token_prefix = "DTASK-MONITOR-";
/// Bytes of randomness in a token (hex digits: twice as many).
inline constexpr std::size_t monitor_token_secret_bytes = 32;

/// A new token from the system's random source (256 bits). Throws Error if there is none.
std::string new_monitor_token();

// The two checks are inline: dtask_http (the endpoint) uses them too, and a shared libdtask
// exports none of its internals.

/// Whether `text` has a monitoring token's form.
inline bool is_monitor_token(std::string_view text) noexcept {
    constexpr std::size_t length = monitor_token_prefix.size() + 2 * monitor_token_secret_bytes;
    if (!text.starts_with(monitor_token_prefix) || text.size() != length)
        return false;
    for (const char c : text.substr(monitor_token_prefix.size()))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

/// Compares in a time that depends on the lengths alone, not on where they differ.
inline bool same_secret(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    unsigned char differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        differ |= static_cast<unsigned char>(a[i] ^ b[i]);
    return differ == 0;
}

}  // namespace dtask::detail
