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

/// A fresh directory /tmp/STEM-XXXXXX, removed with the files in it when this goes out of
/// scope (it must hold no subdirectories).
class TempDir {
public:
    explicit TempDir(const std::string& stem = "dtask-test") {
        std::string pattern = "/tmp/" + stem + "-XXXXXX";
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
