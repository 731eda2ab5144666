#include "log.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace dtask::detail {

void log_warning(std::string_view who, std::string_view message) {
    static const bool quiet = [] {
        const char* setting = std::getenv("DTASK_LOG");
        return setting != nullptr && std::strcmp(setting, "quiet") == 0;
    }();
    if (quiet)
        return;
    static std::mutex mutex;
    std::string line = "dtask ";
    line.append(who).append(": ").append(message).append("\n");
    std::lock_guard lock(mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace dtask::detail
