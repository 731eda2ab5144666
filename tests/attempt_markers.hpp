#pragma once
// Attempts at a subtask counted in marker files, so that a map in any worker process (or a
// process restarted by exec) can tell the how-many-th attempt it is making.

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace test_jobs {

/// The marker file of the attempt-th attempt at subtask `index`.
inline std::string attempt_marker(const std::string& directory, std::uint64_t index,
                                  unsigned attempt) {
    return directory + "/attempt-" + std::to_string(index) + "-" + std::to_string(attempt);
}

/// Records an attempt at subtask `index` and returns its number: 1 for the first.
inline unsigned attempt_number(const std::string& directory, std::uint64_t index) {
    for (unsigned attempt = 1;; ++attempt) {
        const std::string marker = attempt_marker(directory, index, attempt);
        const int fd = open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) {
            close(fd);
            return attempt;
        }
        if (errno != EEXIST)
            throw std::runtime_error("cannot create " + marker);
    }
}

/// Attempts made at subtask `index` so far (the markers attempt_number left).
inline unsigned attempts_made(const std::string& directory, std::uint64_t index) {
    unsigned made = 0;
    while (access(attempt_marker(directory, index, made + 1).c_str(), F_OK) == 0)
        ++made;
    return made;
}

}  // namespace test_jobs
