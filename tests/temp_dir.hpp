#pragma once
// A scratch directory for a test or a measurement, removed with its files afterwards.

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include <dirent.h>
#include <unistd.h>

namespace test_support {

/// The directory for temporary files: $TMPDIR (tests/run_checked.sh gives each test its own,
/// removed after it whatever happened), else /tmp.
inline std::string temp_directory() {
    const char* tmp = std::getenv("TMPDIR");
    return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

/// A fresh directory $TMPDIR/STEM-XXXXXX, removed with the files in it when this goes out of
/// scope (it must hold no subdirectories).
class TempDir {
public:
    explicit TempDir(const std::string& stem = "dtask-test") {
        std::string pattern = temp_directory() + "/" + stem + "-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
        path_ = pattern;
    }
    ~TempDir() {
        if (DIR* dir = opendir(path_.c_str())) {
            while (dirent* entry = readdir(dir)) {
                const std::string name = entry->d_name;
                if (name != "." && name != "..")
                    unlink((path_ + "/" + name).c_str());
            }
            closedir(dir);
        }
        rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

}  // namespace test_support
