#pragma once
// Messages for a person: warnings that are not errors of any one call (a worker refused, a
// worker lost), written to stderr with a "dtask" prefix. DTASK_LOG=quiet silences them.

#include <string_view>

namespace dtask::detail {

void log_warning(std::string_view who, std::string_view message);

}  // namespace dtask::detail
