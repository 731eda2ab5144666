#pragma once
// The local broker endpoint that only this user can reach: a Unix socket in a directory of
// its own, mode 0700. (An abstract socket has no permission check: any local user could
// join.) The directory goes with the object; those of hosts killed outright go at the next
// start of any host of the same user.

#include <cstddef>
#include <string>

namespace dtask::detail {

/// A directory $TMPDIR/dtask-<pid>-XXXXXX (/tmp if TMPDIR is unset or too long for a socket
/// path) that only this user may enter, and the endpoint ipc://<directory>/broker in it.
class PrivateSocket {
public:
    /// Removes the stale directories of this user's dead hosts, then creates ours. Throws
    /// Error if no directory can be created.
    PrivateSocket();
    /// Removes the directory and what is in it: only once the socket bound there is closed.
    ~PrivateSocket();
    PrivateSocket(const PrivateSocket&) = delete;
    PrivateSocket& operator=(const PrivateSocket&) = delete;

    const std::string& directory() const noexcept { return directory_; }
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    std::string directory_;
    std::string endpoint_;
};

/// Removes, with the files in them, the directories dtask-<pid>-XXXXXX in `parent` that this
/// user owns, whose process is gone and whose socket no one listens on. Never follows a
/// symbolic link, never touches another user's directory. How many it removed.
std::size_t remove_stale_socket_directories(const std::string& parent);

}  // namespace dtask::detail
