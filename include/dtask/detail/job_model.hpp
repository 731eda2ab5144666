#pragma once
/// \file The type-erased side of a job definition: what a worker needs to run map by the
/// job's name, and how a job enters the registry that finds it there.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include <dtask/export.hpp>

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

    /// Whether map takes placed data (a shared object) beside its job-wide data: three
    /// parameters. Otherwise a shared object, if any, stands for the job-wide data.
    virtual bool takes_placed() const noexcept = 0;
    /// Decodes the job-wide data once per job on a worker.
    virtual std::shared_ptr<const void> load_shared(std::span<const std::byte> bytes) const = 0;
    /// Decodes a shared object as this job uses it: its placed data if takes_placed(), else
    /// its job-wide data.
    virtual std::shared_ptr<const void> load_object(std::span<const std::byte> bytes) const = 0;
    /// Runs map on one serialized subtask and appends the serialized partial to `out`.
    /// `placed` is null unless takes_placed().
    virtual void run_map(const void* placed, const void* shared, std::span<const std::byte> subtask,
                         std::uint64_t index, std::string& out) const = 0;
    /// A serialized partial, for a person (replay): its type and size, and its value if the
    /// type can be written to a std::ostream.
    virtual std::string describe_partial(std::span<const std::byte> partial) const = 0;

private:
    std::string name_;
    std::string signature_;
};

/// `print(out, value)` into a string, cut after a few thousand characters: a partial's value
/// as replay shows it.
DTASK_EXPORT std::string print_bounded(void (*print)(std::ostream& out, const void* value),
                                       const void* value);

/// Every job defined in this binary registers itself here when constructed, and leaves when
/// destroyed: the registry is libdtask's (src/job_registry.hpp), these two are what Job<T>
/// calls. Registering throws JobDefinitionError once dtask::init() has run: a job constructed
/// later, in main() or a function, is unknown to worker processes, which never run main().
DTASK_EXPORT void register_job(const JobModel* job);
DTASK_EXPORT void unregister_job(const JobModel* job) noexcept;

}  // namespace dtask::detail
