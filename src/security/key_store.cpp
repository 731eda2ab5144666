// A broker's keys directory: owner-only files, checked like ssh checks its keys, replaced whole.

#include "security/key_store.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "security/monitor_token.hpp"

namespace dtask::detail {
namespace {

constexpr const char* broker_key_file = "broker.key";

std::string mode_text(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

[[noreturn]] void fail_system(const std::string& what, const std::string& path) {
    throw Error("dtask: cannot " + what + " '" + path + "': " + std::strerror(errno));
}

/// Refuses `path` (stat in `info`) unless we own it and group and others have no access.
void check_entry(const std::string& path, const struct stat& info, bool directory) {
    if (S_ISLNK(info.st_mode))
        throw Error("dtask: '" + path +
                    "' is a symbolic link; the keys directory holds only "
                    "files of its own (remove it)");
    if (info.st_uid != geteuid())
        throw Error("dtask: '" + path + "' belongs to uid " + std::to_string(info.st_uid) +
                    ", not to this user (uid " + std::to_string(geteuid()) +
                    "): only keys of this user are used");
    if ((info.st_mode & 077) != 0)
        throw Error("dtask: UNPROTECTED KEYS: '" + path + "' has mode " + mode_text(info.st_mode) +
                    ": group or others can reach it, so these keys will not be used. "
                    "Fix it with: chmod " +
                    (directory ? "700" : "600") + " '" + path + "'");
}

/// The first line of `path`, whitespace trimmed; nullopt if it does not exist. A key file
/// is one short line: more than 4 KiB is not read.
std::optional<std::string> read_line_of(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::nullopt;
        fail_system("read", path);
    }
    std::string text(4096, '\0');
    std::size_t size = 0;
    while (size < text.size()) {
        const ssize_t n = read(fd, text.data() + size, text.size() - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int saved = errno;
            close(fd);
            errno = saved;
            fail_system("read", path);
        }
        if (n == 0)
            break;
        size += static_cast<std::size_t>(n);
    }
    close(fd);
    text.resize(size);
    text = text.substr(0, text.find('\n'));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.pop_back();
    return text;
}

/// Writes `text` to DIR/NAME in one piece: a new 0600 file beside it, flushed to disk, then
/// renamed over it, so that a reader sees the old file or the new one, never a part.
void write_private_file(const std::string& directory, const std::string& name,
                        const std::string& text) {
    const std::string path = directory + "/" + name;
    const std::string temporary = path + ".new";
    // Only the lock's holder writes here: a leftover .new is from one that died writing.
    if (unlink(temporary.c_str()) != 0 && errno != ENOENT)
        fail_system("remove", temporary);
    const int fd =
        open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        fail_system("create", temporary);
    const std::string content = text + "\n";
    std::size_t written = 0;
    bool ok = fchmod(fd, 0600) == 0;  // 0600 whatever the umask
    while (ok && written < content.size()) {
        const ssize_t n = write(fd, content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        written += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && fsync(fd) == 0;
    const int saved = errno;
    close(fd);
    if (!ok) {
        unlink(temporary.c_str());
        errno = saved;
        fail_system("write", temporary);
    }
    if (rename(temporary.c_str(), path.c_str()) != 0)
        fail_system("rename to", path);
    // The rename itself lasts once the directory is on disk too.
    if (const int dir = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
        fsync(dir);
        close(dir);
    }
}

const char* token_file(TokenRole role) {
    return role == TokenRole::worker ? "worker.token" : "client.token";
}

}  // namespace

std::optional<std::string> default_keys_directory() {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0')
        return std::nullopt;
    return std::string(home) + "/.config/dtaskd";
}

std::string prepare_keys_directory(const std::string& directory) {
    if (directory.empty())
        throw Error("dtask: the keys directory must not be empty");
    // mkdir -p, each new directory owner-only from its creation on.
    for (std::size_t slash = directory.find('/', 1);; slash = directory.find('/', slash + 1)) {
        const std::string part = directory.substr(0, slash);
        if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
            fail_system("create the keys directory", part);
        if (slash == std::string::npos)
            break;
    }
    char* absolute = realpath(directory.c_str(), nullptr);
    if (absolute == nullptr)
        fail_system("find", directory);
    std::string path = absolute;
    std::free(absolute);
    struct stat info {};
    if (stat(path.c_str(), &info) != 0)
        fail_system("read", path);
    if (!S_ISDIR(info.st_mode))
        throw Error("dtask: the keys directory '" + path + "' is not a directory");
    return path;
}

void check_private(const std::string& directory) {
    struct stat info {};
    if (stat(directory.c_str(), &info) != 0)
        fail_system("read", directory);
    check_entry(directory, info, true);
    DIR* dir = opendir(directory.c_str());
    if (dir == nullptr)
        fail_system("list", directory);
    try {
        while (const dirent* entry = readdir(dir)) {
            const std::string name = entry->d_name;
            if (name == "." || name == "..")
                continue;
            const std::string path = directory + "/" + name;
            if (fstatat(dirfd(dir), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0)
                fail_system("read", path);
            check_entry(path, info, S_ISDIR(info.st_mode));
        }
    } catch (...) {
        closedir(dir);
        throw;
    }
    closedir(dir);
}

KeysLock::KeysLock(const std::string& directory) {
    const std::string path = directory + "/lock";
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0)
        fail_system("open", path);
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int saved = errno;
        close(fd_);
        fd_ = -1;
        if (saved != EWOULDBLOCK) {
            errno = saved;
            fail_system("lock", path);
        }
    }
}

KeysLock::~KeysLock() {
    if (fd_ >= 0)
        close(fd_);  // the lock goes with the descriptor
}

void KeyStore::load_or_create(std::optional<TokenRole> replacing) {
    read_all(true, replacing);
}

void KeyStore::load() {
    read_all(false, std::nullopt);
}

void KeyStore::read_all(bool create, std::optional<TokenRole> replacing) {
    const std::string key_path = directory_ + "/" + broker_key_file;
    auto missing = [&](const std::string& path) {
        return Error("dtask: '" + path +
                     "' is missing (another broker holds the keys directory "
                     "but has not written it)");
    };
    if (auto secret = read_line_of(key_path)) {
        try {
            broker_public_ = public_key_of(*secret);
        } catch (const Error&) {
            throw Error("dtask: '" + key_path +
                        "' holds no CurveZMQ secret key (40 characters "
                        "of Z85); remove it and the token files to make new keys");
        }
        broker_secret_ = *secret;
    } else if (create) {
        const auto keys = new_curve_keys();
        write_private_file(directory_, broker_key_file, keys.secret_key);
        broker_secret_ = keys.secret_key;
        broker_public_ = keys.public_key;
    } else {
        throw missing(key_path);
    }
    for (const TokenRole role : {TokenRole::worker, TokenRole::client}) {
        if (replacing == role)
            continue;
        JoinToken& token = role == TokenRole::worker ? worker_ : client_;
        const std::string path = token_path(role);
        const auto text = read_line_of(path);
        if (!text) {
            if (!create)
                throw missing(path);
            token = new_join_token(role, broker_public_);
            write_private_file(directory_, token_file(role), token.text());
            continue;
        }
        const std::string fix =
            std::string("; 'dtaskd rotate ") + role_word(role) + "' makes a new one";
        try {
            token = parse_join_token(*text);
        } catch (const Error& e) {
            throw Error("dtask: '" + path + "': " + e.what() + fix);
        }
        if (token.role != role)
            throw Error("dtask: '" + path + "' holds a " + role_word(token.role) +
                        " token, not a " + role_word(role) + " token" + fix);
        if (token.broker_public_key != broker_public_)
            throw Error("dtask: '" + path + "' is a token of another broker key than '" + key_path +
                        "'" + fix);
    }
    // The read-only monitoring credential of the HTTP endpoint (monitor_token.hpp).
    const std::string monitor_path = directory_ + "/" + monitor_token_file;
    if (auto text = read_line_of(monitor_path); text && is_monitor_token(*text)) {
        monitor_ = *text;
    } else if (create) {
        monitor_ = new_monitor_token();
        write_private_file(directory_, monitor_token_file, monitor_);
    } else if (text) {
        throw Error("dtask: '" + monitor_path +
                    "' holds no monitoring token; remove it to make "
                    "a new one");
    }
}

const JoinToken& KeyStore::rotate(TokenRole role) {
    JoinToken& token = role == TokenRole::worker ? worker_ : client_;
    JoinToken fresh = new_join_token(role, broker_public_);
    write_private_file(directory_, token_file(role), fresh.text());
    token = std::move(fresh);
    return token;
}

const JoinToken& KeyStore::token(TokenRole role) const {
    return role == TokenRole::worker ? worker_ : client_;
}

Credentials KeyStore::credentials() const {
    return {worker_.credential.public_key, client_.credential.public_key};
}

std::string KeyStore::monitor_token_path() const {
    return directory_ + "/" + monitor_token_file;
}

std::string KeyStore::token_path(TokenRole role) const {
    return directory_ + "/" + token_file(role);
}

BrokerKeys::BrokerKeys(const std::string& directory) : store_(prepare_keys_directory(directory)) {
    check_private(store_.directory());
    lock_ = std::make_unique<KeysLock>(store_.directory());
    if (!lock_->holds())
        throw Error("dtask: another broker (a dtaskd or a Cluster) runs with the keys directory '" +
                    store_.directory() + "' (it holds " + store_.directory() +
                    "/lock); give this one a keys directory of its own");
    check_private(store_.directory());  // the lock file too
    store_.load_or_create();
}

}  // namespace dtask::detail
