#pragma once
// Connections a listen endpoint failed to accept: what the log says of them. Out of
// descriptors, ZeroMQ retries the accept as fast as it can, so the log gets one line per
// `quiet` at most, saying that the broker is at its limit and which limit, and counting the
// failures in between.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "log.hpp"

namespace dtask::detail {

class AcceptFailures {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds quiet{30};

    /// The line to log for an accept that failed with `error` (an errno) at `now`, while
    /// the process may hold `descriptor_limit` descriptors; nullopt to log nothing.
    std::optional<std::string> on_failure(std::uint32_t error, std::uint64_t descriptor_limit,
                                          Clock::time_point now) {
        auto suffix = repeats_.admit(now);
        if (!suffix)
            return std::nullopt;
        const int code = static_cast<int>(error);
        std::string line;
        if (code == EMFILE)
            line = "cannot accept a connection: at the limit of " +
                   std::to_string(descriptor_limit) +
                   " open descriptors (EMFILE); new peers wait until others leave: raise the "
                   "hard limit (ulimit -Hn, systemd LimitNOFILE=)";
        else if (code == ENFILE)
            line =
                "cannot accept a connection: the system's table of open files is full "
                "(ENFILE, fs.file-max); new peers wait until others leave";
        else if (code == ENOBUFS || code == ENOMEM)
            line = "cannot accept a connection: out of memory for sockets (" +
                   std::string(std::strerror(code)) + ")";
        else
            line = "cannot accept a connection: " + std::string(std::strerror(code));
        return line + *suffix;
    }

private:
    RepeatedWarning repeats_{quiet};
};

}  // namespace dtask::detail
