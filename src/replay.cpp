// Replay of a failed subtask (replay.hpp): the bundle is read whole (up to
// max_repro_bundle_bytes), decoded as untrusted input, matched with this binary's definition
// of its job by name and signature, and its subtask run by the job's own map.

#include "replay.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "job_registry.hpp"
#include "repro_bundle.hpp"
#include "wire/failure.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {
namespace {

/// Characters of a partial's value replay prints at most.
constexpr std::size_t max_printed = 4096;

/// The file's bytes; throws Error saying why it cannot be read.
std::string read_bundle_file(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error("cannot open it: " + std::string(std::strerror(errno)));
    struct stat info {};
    std::string bytes;
    std::string problem;
    if (fstat(fd, &info) != 0) {
        problem = std::strerror(errno);
    } else if (!S_ISREG(info.st_mode)) {
        problem = "not a regular file";
    } else if (static_cast<std::uint64_t>(info.st_size) > max_repro_bundle_bytes) {
        problem = "it is " + std::to_string(info.st_size) + " bytes, more than the " +
                  std::to_string(max_repro_bundle_bytes) + " a repro bundle may be";
    } else {
        bytes.resize(static_cast<std::size_t>(info.st_size));
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                problem = std::strerror(errno);
                break;
            }
            if (n == 0) {
                problem = "it shrank while being read";
                break;
            }
            done += static_cast<std::size_t>(n);
        }
    }
    close(fd);
    if (!problem.empty())
        throw Error("cannot read it: " + problem);
    return bytes;
}

/// The names of the jobs this binary defines, for an error, a bounded list.
std::string defined_jobs() {
    std::string list;
    std::size_t shown = 0;
    const auto jobs = registered_jobs();
    for (const auto& [name, signature] : jobs) {
        if (shown == 10) {
            list += ", and " + std::to_string(jobs.size() - shown) + " more";
            break;
        }
        list += (shown++ == 0 ? "'" : ", '") + name + "'";
    }
    return list.empty() ? "none" : list;
}

int unusable(const std::string& path, const std::string& why) {
    std::fprintf(stderr, "dtask replay: %s: %s\n", path.c_str(), why.c_str());
    return replay_unusable;
}

}  // namespace

std::string print_bounded(void (*print)(std::ostream& out, const void* value), const void* value) {
    std::ostringstream out;
    print(out, value);
    std::string text = std::move(out).str();
    if (text.size() > max_printed) {
        const std::size_t cut = text.size() - max_printed;
        text.resize(max_printed);
        text += "... (" + std::to_string(cut) + " more characters)";
    }
    return text;
}

std::optional<std::string> replay_argument(int argc, char** argv) {
    constexpr std::string_view flag = "--dtask-replay";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == flag)
            return i + 1 < argc ? std::string(argv[i + 1]) : std::string();
        if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=')
            return std::string(arg.substr(flag.size() + 1));
    }
    return std::nullopt;
}

int replay(const std::string& path) {
    if (path.empty())
        return unusable("--dtask-replay",
                        "needs the repro bundle's file, e.g. "
                        "--dtask-replay /tmp/replays/JOB.subtask-7.dtask-replay");
    ReproBundle bundle;
    try {
        const std::string bytes = read_bundle_file(path);
        bundle = decode_bundle(std::as_bytes(std::span(bytes)));
    } catch (const Error& e) {
        return unusable(path, e.what());
    }
    const JobModel* job = find_job(bundle.job);
    if (job == nullptr)
        return unusable(path, "a bundle of job '" + bundle.job +
                                  "', which this program does not define (it defines " +
                                  defined_jobs() + "): replay it with the program that ran it");
    if (job->signature() != bundle.signature)
        return unusable(path, "a bundle of job '" + bundle.job +
                                  "' as another build defined it (the bundle: " + bundle.signature +
                                  "; this program: " + job->signature() +
                                  "): replay it with the build that ran it");

    std::printf("dtask replay: job '%s', subtask %llu, from %s\n", bundle.job.c_str(),
                static_cast<unsigned long long>(bundle.subtask), path.c_str());
    std::printf("recorded: %s on worker %s: %s%s%s\n", failure_name(bundle.failure),
                bundle.worker.c_str(), bundle.exception_type.c_str(),
                bundle.exception_type.empty() ? "" : ": ", bundle.error.c_str());
    std::fflush(stdout);

    std::shared_ptr<const void> placed;
    std::shared_ptr<const void> shared;
    try {
        if (job->takes_placed())
            placed = job->load_object(std::as_bytes(std::span(bundle.placed)));
    } catch (const std::exception& e) {
        return unusable(path, std::string("its placed data does not decode: ") + e.what());
    }
    try {
        shared = job->load_shared(std::as_bytes(std::span(bundle.shared)));
    } catch (const std::exception& e) {
        return unusable(path, std::string("its job-wide data does not decode: ") + e.what());
    }
    std::string partial;
    try {
        job->run_map(placed.get(), shared.get(), std::as_bytes(std::span(bundle.subtask_bytes)),
                     bundle.subtask, partial);
    } catch (...) {
        protocol::Failure failure;
        describe_current_exception(failure);
        std::fprintf(stderr, "dtask replay: map threw %s: %s\n", failure.exception_type.c_str(),
                     failure.message.c_str());
        return replay_threw;
    }
    std::string described;
    try {
        described = job->describe_partial(std::as_bytes(std::span(partial)));
    } catch (const std::exception& e) {
        described = std::string("a partial that does not decode: ") + e.what();
    }
    std::printf("map returned %s\n", described.c_str());
    return replay_returned;
}

}  // namespace dtask::detail
