// 'dtaskd tokens' and 'dtaskd rotate ROLE'.

#include "dtaskd/token_commands.hpp"

#include <chrono>
#include <iostream>

#include "dtaskd/control.hpp"
#include "security/key_store.hpp"

namespace dtask::dtaskd {

using detail::check_private;
using detail::KeysLock;
using detail::KeyStore;
using detail::prepare_keys_directory;

namespace {

/// How long 'rotate' waits for the running dtaskd's answer: it answers in milliseconds
/// unless it is stopped or stuck, and then the user should hear of it.
constexpr std::chrono::seconds answer_wait{10};

}  // namespace

void print_tokens(const std::string& keys_directory) {
    const std::string directory = prepare_keys_directory(keys_directory);
    check_private(directory);
    KeysLock lock(directory);
    KeyStore keys(directory);
    if (lock.holds())
        keys.load_or_create();
    else
        keys.load();  // the running dtaskd made them
    std::cout << "worker token: " << keys.token(detail::TokenRole::worker).text() << "\n"
              << "client token: " << keys.token(detail::TokenRole::client).text() << "\n";
}

void rotate_credential(const std::string& keys_directory, detail::TokenRole role) {
    const std::string directory = prepare_keys_directory(keys_directory);
    check_private(directory);
    KeysLock lock(directory);
    const std::string word = detail::role_word(role);
    std::string token;
    if (lock.holds()) {
        KeyStore keys(directory);
        keys.load_or_create(role);
        token = keys.rotate(role).text();
        std::cerr << "dtaskd: no dtaskd runs with '" << directory << "'; the new " << word
                  << " credential is in force when one starts there\n";
    } else {
        token = ask_dtaskd(directory, rotate_request(role), answer_wait);
        std::cerr << "dtaskd: the running dtaskd took the new " << word
                  << " credential: holders of the old one are refused from now on\n";
    }
    std::cout << word << " token: " << token << "\n";
}

}  // namespace dtask::dtaskd
