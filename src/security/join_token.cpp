#include "security/join_token.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <zmq.h>

#include <dtask/error.hpp>

namespace dtask::detail {
namespace {

constexpr std::string_view prefix = "DTASK-1-";
constexpr std::size_t key_bytes = 32;
constexpr std::size_t hex_key = 2 * key_bytes;

std::string hex_of_z85(const std::string& z85) {
    std::array<std::uint8_t, key_bytes> bytes{};
    if (z85.size() != 40 || zmq_z85_decode(bytes.data(), z85.c_str()) == nullptr)
        throw Error("dtask: not a CurveZMQ key");
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (const auto byte : bytes) {
        hex += digits[byte >> 4];
        hex += digits[byte & 15];
    }
    return hex;
}

/// The Z85 form of 64 hex digits; empty if they are not.
std::string z85_of_hex(std::string_view hex) {
    if (hex.size() != hex_key)
        return {};
    std::array<std::uint8_t, key_bytes> bytes{};
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < key_bytes; ++i) {
        const int high = digit(hex[2 * i]);
        const int low = digit(hex[2 * i + 1]);
        if (high < 0 || low < 0)
            return {};
        bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    std::array<char, 41> z85{};
    zmq_z85_encode(z85.data(), bytes.data(), key_bytes);
    return z85.data();
}

}  // namespace

CurveKeys new_curve_keys() {
    std::array<char, 41> public_key{};
    std::array<char, 41> secret_key{};
    if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0)
        throw Error("dtask: this libzmq has no CurveZMQ (zmq_has(\"curve\") is false)");
    return {public_key.data(), secret_key.data()};
}

std::string public_key_of(const std::string& secret_key) {
    std::array<char, 41> public_key{};
    if (secret_key.size() != 40 || zmq_curve_public(public_key.data(), secret_key.c_str()) != 0)
        throw Error("dtask: not a CurveZMQ secret key");
    return public_key.data();
}

const char* role_word(TokenRole role) noexcept {
    return role == TokenRole::worker ? "worker" : "client";
}

std::string JoinToken::text() const {
    return std::string(prefix) + static_cast<char>(role) + "-" + hex_of_z85(broker_public_key) +
           "-" + hex_of_z85(credential.secret_key);
}

JoinToken new_join_token(TokenRole role, const std::string& broker_public_key) {
    return {role, broker_public_key, new_curve_keys()};
}

JoinToken parse_join_token(std::string_view text) {
    // Whitespace around it comes with files and copy-paste.
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    const std::size_t length = prefix.size() + 2 + hex_key + 1 + hex_key;
    if (!text.starts_with(prefix))
        throw Error("dtask: this is not a dtask join token (one starts with 'DTASK-1-')");
    if (text.size() != length || text[prefix.size() + 1] != '-' ||
        text[prefix.size() + 2 + hex_key] != '-')
        throw Error("dtask: the join token is damaged: it has " + std::to_string(text.size()) +
                    " characters, a whole one " + std::to_string(length));
    JoinToken token;
    const char role = text[prefix.size()];
    if (role != 'W' && role != 'C')
        throw Error("dtask: the join token names no role (W for worker, C for client)");
    token.role = static_cast<TokenRole>(role);
    token.broker_public_key = z85_of_hex(text.substr(prefix.size() + 2, hex_key));
    token.credential.secret_key = z85_of_hex(text.substr(prefix.size() + 3 + hex_key));
    if (token.broker_public_key.empty() || token.credential.secret_key.empty())
        throw Error("dtask: the join token is damaged: its keys must be hexadecimal");
    token.credential.public_key = public_key_of(token.credential.secret_key);
    return token;
}

std::optional<JoinToken> token_for(const std::string& endpoint, const std::string& token,
                                   bool insecure, const std::string& missing) {
    if (insecure)
        return std::nullopt;
    if (!token.empty())
        return parse_join_token(token);
    if (endpoint.starts_with("tcp://"))
        throw Error(missing);
    return std::nullopt;
}

std::string token_from_environment(const std::string& file) {
    std::string path = file;
    if (path.empty()) {
        if (const char* token = std::getenv("DTASK_TOKEN"); token != nullptr && *token != '\0')
            return token;
        if (const char* named = std::getenv("DTASK_TOKEN_FILE"); named != nullptr)
            path = named;
    }
    if (path.empty())
        return {};
    std::ifstream in(path);
    // A token is 139 characters: read no more than 1 KiB, whatever the file holds.
    std::string token(1024, '\0');
    in.read(token.data(), static_cast<std::streamsize>(token.size()));
    token.resize(static_cast<std::size_t>(in ? token.size() : in.gcount()));
    token = token.substr(0, token.find('\n'));
    if (token.empty())
        throw Error("dtask: cannot read a join token from '" + path + "'");
    return token;
}

}  // namespace dtask::detail
