#pragma once
// Join tokens: the one string that lets a worker or a client in (docs/security.md). A token
// carries the broker's CurveZMQ public key, which the peer verifies, and the secret key of
// its role's credential, which the broker's gatekeeper admits:
//   DTASK-1-W-<broker public key, 64 hex>-<credential secret key, 64 hex>   (W worker, C client)
// Hex, not Z85: a token goes into shells, environment files and YAML without quoting.

#include <optional>
#include <string>
#include <string_view>

namespace dtask::detail {

/// A CurveZMQ key pair, each key as 40 characters of Z85 (what ZeroMQ's options take).
struct CurveKeys {
    std::string public_key;
    std::string secret_key;
};

/// A fresh key pair from the system's random source. Throws Error if CurveZMQ is missing.
CurveKeys new_curve_keys();
/// The public key that belongs to `secret_key` (Z85). Throws Error if it is not a key.
std::string public_key_of(const std::string& secret_key);

enum class TokenRole : char { worker = 'W', client = 'C' };
const char* role_word(TokenRole role) noexcept;  // "worker", "client"

struct JoinToken {
    TokenRole role = TokenRole::worker;
    std::string broker_public_key;  // Z85
    CurveKeys credential;           // Z85

    std::string text() const;
};

/// A new credential for `role` of the broker whose public key is `broker_public_key`.
JoinToken new_join_token(TokenRole role, const std::string& broker_public_key);
/// Parses a token; throws Error saying what is wrong with it, never quoting the secret.
JoinToken parse_join_token(std::string_view text);

/// The keys a worker or client connects to `endpoint` with, given the `token` text it was
/// handed: none if `insecure` (the broker runs with plain TCP), the token's if there is one,
/// none for an endpoint other than TCP without one (an owner's ipc socket). Throws Error:
/// `missing` for a TCP endpoint without a token, or why the token is malformed.
std::optional<JoinToken> token_for(const std::string& endpoint, const std::string& token,
                                   bool insecure, const std::string& missing);

/// The token a worker or client process was given, from DTASK_TOKEN or the file named by
/// DTASK_TOKEN_FILE (then `file`, if not empty, overrides the variable). Empty if none.
/// Throws Error naming the file if it cannot be read.
std::string token_from_environment(const std::string& file = {});

}  // namespace dtask::detail
