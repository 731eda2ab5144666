#pragma once
// A field in KiB of /proc/PID/status (VmRSS, VmHWM, ...), for the scenarios that measure a
// process's memory.

#include <cstdlib>
#include <fstream>
#include <string>

namespace perf {

/// Field `field` ("VmRSS", "VmHWM") of /proc/`pid`/status in KiB ("self" for this process);
/// 0 if the process is gone or has no such field.
inline long status_kib(const std::string& pid, const std::string& field) {
    std::ifstream status("/proc/" + pid + "/status");
    const std::string key = field + ":";
    for (std::string line; std::getline(status, line);) {
        if (line.rfind(key, 0) == 0)
            return std::atol(line.c_str() + key.size());
    }
    return 0;
}

}  // namespace perf
