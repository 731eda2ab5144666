#pragma once
// The monitoring token: a read-only credential for the broker's HTTP endpoint when it listens
// beyond loopback (docs/observability.md). It reads the status and the metrics, nothing else:
// it cannot join, submit or see a job's data. Sent as "Authorization: Bearer TOKEN".
//   DTASK-MONITOR-<64 hex>

#include <string>
#include <string_view>

namespace dtask::detail {

/// Its file in a broker's keys directory.
inline constexpr const char* monitor_token_file = "monitor.token";

/// A new token from the system's random source (256 bits). Throws Error if there is none.
std::string new_monitor_token();
/// Whether `text` has a monitoring token's form.
bool is_monitor_token(std::string_view text) noexcept;
/// Compares in a time that depends on the lengths alone, not on where they differ.
bool same_secret(std::string_view a, std::string_view b) noexcept;

}  // namespace dtask::detail
