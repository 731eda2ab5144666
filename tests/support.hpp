#pragma once
// What the tests share: starting and watching real processes (process.hpp; bounded waits on
// pidfds, never sleeps), and waiting for a job with a time limit so that a hang fails
// instead of hanging.

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>
#include <sys/types.h>

#include <dtask/dtask.hpp>

#include "jobs.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

namespace test_support {

/// Whether this build runs under AddressSanitizer or ThreadSanitizer.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

/// Directory of the example binaries (set by CMake).
std::string examples_directory();
/// Directory of the helper binaries built for the tests.
std::string helpers_directory();

/// Pids of the live (or zombie) children of this process.
std::vector<pid_t> children_of_this_process();
/// Waits until a process that is not our child has ended; false on timeout.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout);
/// The whole content of a file.
std::string read_file(const std::string& path);
/// How `process` ended within `timeout`: "exit status N", "killed by signal N", or "still
/// running" (it is left running then).
std::string ending_within(Process& process, std::chrono::milliseconds timeout);
/// Reports the test as skipped, with the reason: ctest matches the line and counts the test
/// as not run (never as passed), and scripts/test.sh lists it. The test returns right after.
void skip_test(const std::string& reason);

/// Appends `:value` to environment variable `name` (sets it if unset) for this scope, so
/// that processes started meanwhile see it. Only while no other thread reads the environment.
class ScopedEnvAppend {
public:
    ScopedEnvAppend(std::string name, const std::string& value);
    ~ScopedEnvAppend();
    ScopedEnvAppend(const ScopedEnvAppend&) = delete;
    ScopedEnvAppend& operator=(const ScopedEnvAppend&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

/// Checks `condition` every few milliseconds until it holds or `timeout` passes; whether it
/// held. For state no event announces (a broker noticing a silence), never as a delay.
template <class Condition>
bool wait_until(Condition condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

/// Waits at most `timeout` for the job, failing the test instead of hanging.
template <class T>
T get_within(dtask::JobHandle<T>& handle, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    REQUIRE_MESSAGE(handle.wait_for(timeout), "job '" << handle.job_name()
                                                      << "' did not end within " << timeout.count()
                                                      << " s");
    return handle.get();
}

/// The error `handle` ended with, checked to be an ErrorType; fails the test if the job
/// succeeded, failed otherwise, or did not end within `timeout`.
template <class ErrorType, class T>
ErrorType error_of(dtask::JobHandle<T>& handle,
                   std::chrono::seconds timeout = std::chrono::seconds(120)) {
    REQUIRE_MESSAGE(handle.wait_for(timeout), "job '" << handle.job_name() << "' did not end");
    try {
        handle.get();
    } catch (const ErrorType& e) {
        return e;
    } catch (const std::exception& e) {
        FAIL("job '" << handle.job_name() << "' failed with another error: " << e.what());
    }
    FAIL("job '" << handle.job_name() << "' should have failed");
    throw std::logic_error("unreachable: FAIL throws");
}

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

template <class T, class Input>
T run_within(dtask::Submitter& cluster, const dtask::Job<T>& job, Input input,
             dtask::RunOptions options = {}) {
    auto handle = cluster.submit(job, std::move(input), options);
    return get_within(handle);
}

template <class T, class Input, class Shared>
requires(!std::is_same_v<Shared, dtask::RunOptions>) T
    run_within(dtask::Submitter& cluster, const dtask::Job<T>& job, Input input,
               const Shared& shared, dtask::RunOptions options = {}) {
    auto handle = cluster.submit(job, std::move(input), shared, options);
    return get_within(handle);
}

/// The processes that ran a rendezvous of 6 one-subtask batches: with two workers, both of
/// them, however fast either is, since each subtask waits until two processes have started
/// one. Without backup copies, whose results could win over a slow worker's own.
inline std::set<std::int64_t> rendezvous_pids(dtask::Submitter& cluster) {
    TempDir meeting;
    return run_within(cluster, test_jobs::rendezvous, std::uint64_t{6},
                      test_jobs::Gate{meeting.path(), 30'000},
                      dtask::RunOptions{.batch_size = 1, .backup_tasks = false});
}

/// Options of a small local cluster for tests: two workers.
dtask::ClusterOptions small_cluster(int local_workers = 2);

/// Options of a small local cluster that also listens on 127.0.0.1 with a free port, for
/// workers started by hand and clients.
inline dtask::ClusterOptions listening_cluster(int local_workers = 0) {
    auto options = small_cluster(local_workers);
    options.listen.push_back("tcp://127.0.0.1:*");
    return options;
}

/// The TCP endpoint of a cluster that listens on 127.0.0.1 with a free port.
inline std::string tcp_endpoint(const dtask::Cluster& cluster) {
    for (const auto& endpoint : cluster.endpoints()) {
        if (endpoint.starts_with("tcp://"))
            return endpoint;
    }
    FAIL("the cluster listens on no TCP endpoint");
    return {};
}

/// The environment a worker joins `cluster` over TCP with: its join token, as users give it.
inline std::vector<std::string> worker_environment(const dtask::Cluster& cluster) {
    return {"DTASK_TOKEN=" + cluster.join_token()};
}

}  // namespace test_support
