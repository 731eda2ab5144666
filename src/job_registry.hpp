#pragma once
// The job registry: every job of the binary by name (register_job, in the public
// dtask/detail/job_model.hpp, fills it), closed by dtask::init().

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dtask/detail/job_model.hpp>

namespace dtask::detail {

/// Called by dtask::init(): jobs constructed from now on are refused.
void close_registry() noexcept;
/// For tests of the registry itself: while one lives, jobs may be constructed after init.
struct LateJobsAllowed {
    LateJobsAllowed() noexcept;
    ~LateJobsAllowed();
    LateJobsAllowed(const LateJobsAllowed&) = delete;
    LateJobsAllowed& operator=(const LateJobsAllowed&) = delete;
};
const JobModel* find_job(std::string_view name);
/// (name, signature) of every registered job.
std::vector<std::pair<std::string, std::string>> registered_jobs();
/// Throws JobDefinitionError if two jobs share a name. Registration happens during static
/// initialisation, where throwing would end the program without a word, so the error waits
/// for dtask::init() and the first Cluster.
void check_registry();

}  // namespace dtask::detail
