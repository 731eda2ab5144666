#include <algorithm>
#include <map>
#include <mutex>

#include <dtask/detail/job_model.hpp>
#include <dtask/error.hpp>

namespace dtask::detail {
namespace {

struct Registry {
    std::mutex mutex;
    std::multimap<std::string, const JobModel*, std::less<>> jobs;
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
    r.jobs.emplace(job->name(), job);
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
