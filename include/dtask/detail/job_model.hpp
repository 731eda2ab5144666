#pragma once
/// \file The type-erased side of a job definition: what a worker needs to run map by the
/// job's name, and the registry that finds it there.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dtask::detail {

/// What a worker needs to run a job's map, with the types erased.
class JobModel {
public:
    JobModel(std::string name, std::string signature)
        : name_(std::move(name)), signature_(std::move(signature)) {}
    virtual ~JobModel() = default;
    JobModel(const JobModel&) = delete;
    JobModel& operator=(const JobModel&) = delete;

    const std::string& name() const noexcept { return name_; }
    /// The job's types, human-readable: two builds agree on it iff they read each other's bytes.
    const std::string& signature() const noexcept { return signature_; }

    /// Decodes the job-wide data once per job on a worker.
    virtual std::shared_ptr<const void> load_shared(std::span<const std::byte> bytes) const = 0;
    /// Runs map on one serialized subtask and appends the serialized partial to `out`.
    virtual void run_map(const void* shared, std::span<const std::byte> subtask,
                         std::uint64_t index, std::string& out) const = 0;

private:
    std::string name_;
    std::string signature_;
};

/// Every job defined in this binary, by name. Jobs register themselves when constructed;
/// throws JobDefinitionError once dtask::init() has run (close_registry): a job constructed
/// later, in main() or a function, is unknown to worker processes, which never run main().
void register_job(const JobModel* job);
/// Called by dtask::init(): jobs constructed from now on are refused.
void close_registry() noexcept;
/// For tests of the registry itself: while one lives, jobs may be constructed after init.
struct LateJobsAllowed {
    LateJobsAllowed() noexcept;
    ~LateJobsAllowed();
    LateJobsAllowed(const LateJobsAllowed&) = delete;
    LateJobsAllowed& operator=(const LateJobsAllowed&) = delete;
};
void unregister_job(const JobModel* job) noexcept;
const JobModel* find_job(std::string_view name);
/// (name, signature) of every registered job.
std::vector<std::pair<std::string, std::string>> registered_jobs();
/// Throws JobDefinitionError if two jobs share a name. Registration happens during static
/// initialisation, where throwing would end the program without a word, so the error waits
/// for dtask::init() and the first Cluster.
void check_registry();

}  // namespace dtask::detail
