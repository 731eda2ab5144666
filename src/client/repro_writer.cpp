// Writing repro bundles (repro_writer.hpp): a safe name, a temporary file made with
// O_EXCL and mode 0600, every byte written and synced, then renamed over the final name.

#include "client/repro_writer.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <fcntl.h>
#include <unistd.h>

#include <dtask/error.hpp>
#include <dtask/shared.hpp>

#include "job_registry.hpp"
#include "log.hpp"
#include "random_hex.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {
namespace {

constexpr std::size_t max_name_characters = 64;

bool safe_character(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/// The files written by this process, per job: the bound of max_bundles_per_job.
struct Written {
    std::mutex mutex;
    std::map<std::string, std::set<std::string>, std::less<>> files;
};
Written& written() {
    static Written instance;
    return instance;
}

std::string system_error(const std::string& what, int error) {
    return what + ": " + std::strerror(error);
}

/// Writes all of `bytes` to `path`, a new file of mode 0600, and syncs it; throws Error.
void write_new_file(const std::string& path, const std::string& bytes) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        throw Error(system_error("cannot create " + path, errno));
    std::size_t done = 0;
    int error = 0;
    while (done < bytes.size()) {
        const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            error = errno;
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error != 0) {
        unlink(path.c_str());
        throw Error(system_error("cannot write " + path, error));
    }
}

}  // namespace

std::string replay_directory(const RunOptions& options) {
    if (!options.replay_dir.empty())
        return options.replay_dir;
    const char* variable = std::getenv("DTASK_REPLAY_DIR");
    return variable != nullptr ? std::string(variable) : std::string();
}

std::string bundle_file_name(std::string_view job, std::uint64_t index) {
    std::string name;
    bool changed = job.size() > max_name_characters || job.empty();
    for (const char c : job.substr(0, max_name_characters)) {
        const bool safe = safe_character(c) && !(name.empty() && c == '.');
        name.push_back(safe ? c : '_');
        changed = changed || !safe;
    }
    if (changed) {
        std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
        for (const char c : job) {
            hash ^= static_cast<unsigned char>(c);
            hash *= 0x100000001b3ULL;
        }
        static constexpr char hex[] = "0123456789abcdef";
        name += '-';
        for (int shift = 60; shift >= 32; shift -= 4)
            name += hex[(hash >> shift) & 0xf];
    }
    return name + ".subtask-" + std::to_string(index) + ".dtask-replay";
}

std::string write_bundle(const std::string& directory, const ReproBundle& bundle) {
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::path folder = fs::absolute(directory, error);
    if (error)
        throw Error("cannot use the replay directory '" + directory + "': " + error.message());
    fs::create_directories(folder, error);
    if (error)
        throw Error("cannot create the replay directory " + folder.string() + ": " +
                    error.message());
    const std::string name = bundle_file_name(bundle.job, bundle.subtask);
    const std::string path = (folder / name).string();
    auto& files = written();
    bool reserved = false;  // the name counts from now on, unless writing it fails
    {
        std::lock_guard lock(files.mutex);
        auto& of_job = files.files[bundle.job];
        if (of_job.size() >= max_bundles_per_job && !of_job.contains(name))
            throw Error("this process has written " + std::to_string(max_bundles_per_job) +
                        " repro bundles of job '" + bundle.job + "' already, the most it writes");
        reserved = of_job.insert(name).second;
    }
    try {
        const std::string temporary =
            (folder / ("." + name + ".tmp-" + random_hex(6, "a repro bundle's file name")))
                .string();
        write_new_file(temporary, encode_bundle(bundle));
        if (rename(temporary.c_str(), path.c_str()) != 0) {
            const int rename_error = errno;
            unlink(temporary.c_str());
            throw Error(system_error("cannot rename " + temporary + " to " + path, rename_error));
        }
    } catch (...) {
        if (reserved) {
            std::lock_guard lock(files.mutex);
            files.files[bundle.job].erase(name);
        }
        throw;
    }
    return path;
}

std::string write_failure_bundle(const std::string& directory, const RunState& run,
                                 const KeptBatches& kept, std::uint64_t index,
                                 const zmq::message_t& report) {
    using protocol::FailureKind;
    ReproBundle bundle;
    try {
        const auto failure = protocol::decode_body<protocol::Failure>(report, "a failure report");
        switch (failure.kind) {
            case FailureKind::exception:
            case FailureKind::transient:
                bundle.failure = ReproFailure::exception;
                bundle.exception_type = failure.exception_type;
                break;
            case FailureKind::worker_lost:
                bundle.failure = ReproFailure::crash;
                break;
            case FailureKind::timeout:
                bundle.failure = ReproFailure::timeout;
                break;
            default:
                return {};  // not the subtask's own failure
        }
        bundle.worker = failure.worker;
        bundle.error = failure.message;
    } catch (const ProtocolError&) {
        return {};  // the job fails with a ProtocolError saying so
    }
    const std::string about =
        "job '" + run.job_name() + "': no repro bundle of subtask " + std::to_string(index) + ": ";
    auto subtask = kept.subtask(index);
    if (!subtask) {
        log_warning("client", about + "its bytes are not at hand");
        return {};
    }
    bundle.job = run.job_name();
    bundle.signature = run.signature();
    bundle.subtask = index;
    bundle.subtask_bytes = std::move(*subtask);
    const JobModel* model = find_job(run.job_name());
    if (run.shared_object() != nullptr && model != nullptr && model->takes_placed()) {
        bundle.placed = run.shared_object()->bytes();
        bundle.shared = run.shared();
    } else {
        bundle.shared =
            run.shared_object() != nullptr ? run.shared_object()->bytes() : run.shared();
    }
    try {
        return write_bundle(directory, bundle);
    } catch (const std::exception& e) {
        log_warning("client", about + e.what());
        return {};
    }
}

}  // namespace dtask::detail
