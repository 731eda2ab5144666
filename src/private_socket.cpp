// The broker's local socket lives in a directory only its user may enter (mkdtemp: mode 0700),
// named dtask-<pid>-XXXXXX so that one left by a host killed outright can be told from one in
// use: its process is gone and nothing listens on its socket.
#include "private_socket.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <dtask/error.hpp>

namespace dtask::detail {
namespace {

constexpr std::string_view prefix = "dtask-";
constexpr std::string_view socket_name = "broker";
constexpr std::size_t random_suffix = 6;  // mkdtemp's XXXXXX
// sun_path holds the path and its terminating zero.
constexpr std::size_t longest_socket_path = sizeof(sockaddr_un{}.sun_path) - 1;

/// The pid in a name dtask-<pid>-XXXXXX; nullopt for any other name.
std::optional<pid_t> pid_in_name(std::string_view name) {
    if (!name.starts_with(prefix))
        return std::nullopt;
    name.remove_prefix(prefix.size());
    const auto dash = name.find('-');
    if (dash == std::string_view::npos || name.size() - dash - 1 != random_suffix)
        return std::nullopt;
    pid_t pid = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + dash, pid);
    if (error != std::errc{} || end != name.data() + dash || pid <= 0)
        return std::nullopt;
    return pid;
}

/// Whether a host may still use the socket at `path`: its pid says gone only in our pid
/// namespace, so a host in another container sharing the directory counts as long as it
/// listens. Anything but "refused" or "no such file" counts as in use.
bool socket_in_use(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() > longest_socket_path)
        return true;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    const bool refused = connect(fd, reinterpret_cast<const sockaddr*>(&address),
                                 sizeof address) != 0 &&
                         (errno == ECONNREFUSED || errno == ENOENT);
    close(fd);
    return !refused;
}

/// Removes directory `name` of `parent_fd` with the files in it, if it is a directory of
/// this user's and not a symbolic link (O_NOFOLLOW, then fstat of what was opened: no
/// window for a swap between the check and the removal of the files). Whether it is gone.
bool remove_own_directory(int parent_fd, const char* name) {
    const int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat info {};
    DIR* dir = nullptr;
    if (fstat(fd, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != geteuid() ||
        (dir = fdopendir(fd)) == nullptr) {
        close(fd);
        return false;
    }
    std::vector<std::string> entries;
    while (const dirent* entry = readdir(dir)) {
        const std::string_view entry_name = entry->d_name;
        if (entry_name != "." && entry_name != "..")
            entries.emplace_back(entry_name);
    }
    for (const auto& entry : entries)
        unlinkat(dirfd(dir), entry.c_str(), 0);  // a subdirectory stays, and so does this one
    closedir(dir);
    return unlinkat(parent_fd, name, AT_REMOVEDIR) == 0;
}

/// Where the directory may go: $TMPDIR if set, absolute and short enough for the socket
/// path, then /tmp.
std::vector<std::string> parent_candidates() {
    const std::size_t rest = 1 + prefix.size() + std::to_string(getpid()).size() + 1 +
                             random_suffix + 1 + socket_name.size();
    std::vector<std::string> parents;
    if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && tmp[0] == '/') {
        std::string parent = tmp;
        while (parent.size() > 1 && parent.back() == '/')
            parent.pop_back();
        if (parent == "/")
            parent.clear();
        if (parent.size() + rest <= longest_socket_path)
            parents.push_back(parent);
    }
    if (parents.empty() || parents.front() != "/tmp")
        parents.emplace_back("/tmp");
    return parents;
}

}  // namespace

std::size_t remove_stale_socket_directories(const std::string& parent) {
    DIR* dir = opendir(parent.empty() ? "/" : parent.c_str());
    if (dir == nullptr)
        return 0;
    std::vector<std::string> stale;
    while (const dirent* entry = readdir(dir)) {
        if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN)
            continue;
        const auto pid = pid_in_name(entry->d_name);
        if (!pid || *pid == getpid())
            continue;
        // EPERM: alive, another user's. Only ESRCH says gone.
        if (kill(*pid, 0) == 0 || errno != ESRCH)
            continue;
        stale.emplace_back(entry->d_name);
    }
    std::size_t removed = 0;
    for (const auto& name : stale) {
        if (socket_in_use(parent + "/" + name + "/" + std::string(socket_name)))
            continue;
        if (remove_own_directory(dirfd(dir), name.c_str()))
            ++removed;
    }
    closedir(dir);
    return removed;
}

PrivateSocket::PrivateSocket() {
    std::string failures;
    for (const auto& parent : parent_candidates()) {
        remove_stale_socket_directories(parent);
        std::string pattern = parent + "/" + std::string(prefix) + std::to_string(getpid()) +
                              "-" + std::string(random_suffix, 'X');
        if (mkdtemp(pattern.data()) != nullptr) {
            directory_ = pattern;
            endpoint_ = "ipc://" + directory_ + "/" + std::string(socket_name);
            return;
        }
        failures += (failures.empty() ? "" : "; ") + std::string(parent.empty() ? "/" : parent) +
                    ": " + std::strerror(errno);
    }
    throw Error("dtask: cannot create a directory for the Cluster's local socket (" + failures +
                "): set TMPDIR to a directory this user can write to");
}

PrivateSocket::~PrivateSocket() {
    remove_own_directory(AT_FDCWD, directory_.c_str());
}

}  // namespace dtask::detail
