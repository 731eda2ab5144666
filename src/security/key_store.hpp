#pragma once
// A broker's keys directory (dtaskd's, or a Cluster's with ClusterOptions::keys_directory):
// the broker's secret key and the two join tokens, one credential per role, in files only
// their owner can read. Like ssh, it refuses keys that others could
// read or change; files are replaced whole (write, fsync, rename), so that a reader never
// sees half of one. Whoever writes holds DIR/lock (KeysLock): a running dtaskd, or a
// 'dtaskd rotate' while none runs.

#include <memory>
#include <optional>
#include <string>

#include "security/gatekeeper.hpp"
#include "security/join_token.hpp"

namespace dtask::detail {

/// $HOME/.config/dtaskd, or nullopt if HOME is not set.
std::optional<std::string> default_keys_directory();

/// Creates `directory` with its missing parents (mode 0700) if it does not exist, and
/// returns its absolute path. Throws dtask::Error saying what is wrong.
std::string prepare_keys_directory(const std::string& directory);

/// Throws dtask::Error, naming the path, its mode and the chmod that fixes it, unless
/// `directory` and everything in it are ours and closed to group and others.
void check_private(const std::string& directory);

/// An exclusive flock on DIR/lock, held while the object lives.
class KeysLock {
public:
    /// Takes the lock if it is free; holds() says whether it did.
    explicit KeysLock(const std::string& directory);
    ~KeysLock();
    KeysLock(const KeysLock&) = delete;
    KeysLock& operator=(const KeysLock&) = delete;

    bool holds() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

/// The keys of one directory: loaded, created where missing, rotated.
class KeyStore {
public:
    explicit KeyStore(std::string directory) : directory_(std::move(directory)) {}

    /// Loads the keys; missing ones are created (the caller holds the lock). Throws
    /// dtask::Error if a file is damaged or belongs to another broker key. The token of
    /// `replacing`, about to be rotated, is not read: a damaged one can be replaced.
    void load_or_create(std::optional<TokenRole> replacing = std::nullopt);
    /// Loads the keys, creating nothing (another process holds the lock and made them).
    void load();
    /// A new credential for `role`, written to its token file; the old one is gone.
    const JoinToken& rotate(TokenRole role);

    const std::string& directory() const noexcept { return directory_; }
    const std::string& broker_secret_key() const noexcept { return broker_secret_; }
    const JoinToken& token(TokenRole role) const;
    /// The public keys the broker admits: the current credential of each role.
    Credentials credentials() const;
    std::string token_path(TokenRole role) const;
    /// The read-only credential of the HTTP endpoint (empty in a directory made before it).
    const std::string& monitor_token() const noexcept { return monitor_; }
    std::string monitor_token_path() const;

private:
    void read_all(bool create, std::optional<TokenRole> replacing);

    std::string directory_;
    std::string broker_secret_;
    std::string broker_public_;
    JoinToken worker_;
    JoinToken client_;
    std::string monitor_;
};

/// The keys of a broker that runs: the directory made and checked, its lock held for as
/// long as this lives (one broker per directory), the keys loaded or created.
class BrokerKeys {
public:
    /// Throws Error saying what is wrong: the directory's permissions, its lock held by
    /// another broker, a damaged file.
    explicit BrokerKeys(const std::string& directory);

    KeyStore& store() noexcept { return store_; }
    const KeyStore& store() const noexcept { return store_; }

private:
    std::unique_ptr<KeysLock> lock_;
    KeyStore store_;
};

}  // namespace dtask::detail
