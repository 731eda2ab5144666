#pragma once
// Secrets and ids from the system's random source, as lowercase hex.

#include <cstddef>
#include <string>

namespace dtask::detail {

/// `bytes` random bytes from getrandom(), as 2 × `bytes` hex digits. Throws Error naming
/// `what` if the system has no random source.
std::string random_hex(std::size_t bytes, const char* what);

}  // namespace dtask::detail
