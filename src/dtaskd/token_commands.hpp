#pragma once
// 'dtaskd tokens' and 'dtaskd rotate ROLE': the join tokens of a keys directory, printed or
// replaced. A rotation goes through the dtaskd that holds the directory, if one runs, and is
// in force there when the command returns.

#include <string>

#include "security/join_token.hpp"

namespace dtask::dtaskd {

/// Prints "worker token: ..." and "client token: ...", creating the keys if there are none
/// yet. Throws dtask::Error saying what is wrong.
void print_tokens(const std::string& keys_directory);

/// Replaces `role`'s credential and prints "ROLE token: ..." with the new token. Throws
/// dtask::Error saying what is wrong (then the old credential may still be in force).
void rotate_credential(const std::string& keys_directory, detail::TokenRole role);

}  // namespace dtask::dtaskd
