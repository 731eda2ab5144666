// The monitoring token: made from the system's random source.

#include "security/monitor_token.hpp"

#include "random_hex.hpp"

namespace dtask::detail {

std::string new_monitor_token() {
    return std::string(monitor_token_prefix) +
           random_hex(monitor_token_secret_bytes, "a monitoring token");
}

}  // namespace dtask::detail
