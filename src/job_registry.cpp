// The job registry: every job of the binary by name, filled during static initialisation
// and closed by dtask::init(), so that host and workers know the same jobs.

#include "job_registry.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include <dtask/error.hpp>

namespace dtask::detail {
namespace {

struct Registry {
    std::mutex mutex;
    std::multimap<std::string, const JobModel*, std::less<>> jobs;
    bool closed = false;        // dtask::init() ran
    unsigned late_allowed = 0;  // LateJobsAllowed alive
};

// Function-local, so that jobs defined in other translation units' static initialisers
// find it constructed whatever the order of initialisation.
Registry& registry() {
    static Registry instance;
    return instance;
}

}  // namespace

void register_job(const JobModel* job) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.closed && r.late_allowed == 0) {
        throw JobDefinitionError(
            "dtask: job '" + job->name() +
            "' was constructed after dtask::init() (inside main() or a function, or as a "
            "function's static): define jobs at namespace scope, e.g. `const dtask::Job<T> " +
            "name{...};` beside main() or `inline const dtask::Job<T> name{...};` in a header, "
            "so that worker processes, which never run main(), know them too");
    }
    r.jobs.emplace(job->name(), job);
}

void close_registry() noexcept {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    r.closed = true;
}

LateJobsAllowed::LateJobsAllowed() noexcept {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    ++r.late_allowed;
}

LateJobsAllowed::~LateJobsAllowed() {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    --r.late_allowed;
}

void unregister_job(const JobModel* job) noexcept {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto [first, last] = r.jobs.equal_range(job->name());
    for (auto it = first; it != last; ++it) {
        if (it->second == job) {
            r.jobs.erase(it);
            return;
        }
    }
}

const JobModel* find_job(std::string_view name) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.jobs.find(name);
    return it == r.jobs.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, std::string>> registered_jobs() {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    std::vector<std::pair<std::string, std::string>> jobs;
    for (const auto& [name, job] : r.jobs)
        jobs.emplace_back(name, job->signature());
    return jobs;
}

void check_registry() {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    for (auto it = r.jobs.begin(); it != r.jobs.end();) {
        const auto count = r.jobs.count(it->first);
        if (count > 1) {
            std::string message = "dtask: " + std::to_string(count) +
                                  " jobs are defined under the name '" + it->first + "' (";
            auto [first, last] = r.jobs.equal_range(it->first);
            for (auto dup = first; dup != last; ++dup) {
                if (dup != first)
                    message += "; ";
                message += dup->second->signature();
            }
            message += "): a worker finds map by the job's name, so each name must be unique";
            throw JobDefinitionError(message);
        }
        it = r.jobs.upper_bound(it->first);
    }
}

}  // namespace dtask::detail
