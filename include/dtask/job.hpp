#pragma once
/// \file
/// dtask::Job<T>: a map-reduce job with a stable name, defined once at namespace scope so that
/// the same binary started as a worker finds its map by that name.

#include <memory>
#include <string>
#include <utility>

#include <dtask/detail/job_machinery.hpp>
#include <dtask/options.hpp>

namespace dtask {

/// A map-reduce job whose result is a T.
///
/// - split(const Input&, SplitHint) -> the subtasks: any range of Subtask (a vector, a lazy
///   view, dtask::pieces()) or a generator callable returning std::optional<Subtask> (nullopt
///   at the end). split itself is called on the thread that submits; the pieces are pulled
///   lazily, only as the window of subtasks in flight allows, in the host on the job's strand
///   (one thread at a time; with Cluster::run, the calling thread). The range may refer to
///   split's input, which the run keeps until it ends, but not to split's local variables
///   (capture those by value); what the input points to must outlive the job.
/// - map(const Subtask&) -> Partial, or map(const Subtask&, const Shared&) -> Partial with
///   job-wide data sent to each worker once per job (or placed once for many jobs with
///   share()), or map(const Subtask&, const Placed&, const Shared&) -> Partial with both:
///   data placed with share() that stays on the workers, and each job's own job-wide data
///   (Submitter::submit(job, input, placed, data)). Runs on a worker process, found there by
///   the job's name, so it must not capture anything. Many workers run it at once, each on one
///   subtask at a time. An exception it throws fails the job with a TaskError.
/// - reduce(T accumulator, Partial) -> T folds partial results into the result, which starts
///   as T{}; in subtask order unless JobOptions::order says otherwise. It runs in the host on
///   the job's strand, one call at a time, and takes the accumulator by value: add to it in
///   place and return it, never build a new one (that copies the whole result at each fold).
///
/// Subtask, Partial, Placed and Shared cross processes: they must be serializable with cereal
/// (dtask/serialization.hpp) and default-constructible. Input and T never leave the host.
/// Mistakes the compiler can see (a capturing map, an unserializable type, a reduce of the
/// wrong signature) are compile errors that say so. An exception thrown by split, its pieces
/// or reduce fails the job and is rethrown by get() as it is.
///
/// Define jobs at namespace scope (e.g. `inline const dtask::Job<T> name{...};`): a worker
/// process only knows the jobs constructed before dtask::init() runs. A Job constructed after
/// init (in main(), in a function, or as a function's static, which is constructed at its
/// first call) throws JobDefinitionError at once.
template <class T>
class Job {
public:
    /// Defines the job `name`, unique in the program: a worker finds map by it, and init(),
    /// Cluster and Client throw JobDefinitionError if two jobs share it. Throws
    /// JobDefinitionError at once if init() has already run.
    template <class Split, class Map, class Reduce>
    Job(std::string name, Split split, Map map, Reduce reduce, JobOptions options = {}) {
        using Model = detail::JobModelImpl<T, Split, Map, Reduce>;
        // Only when every check passed, so that a failed check is the only error shown.
        if constexpr (detail::check_job_definition<T, Split, Map, Reduce>()) {
            model_ = std::make_unique<Model>(std::move(name), std::move(split),
                                             static_cast<typename Model::MapPointer>(map),
                                             std::move(reduce), options);
            detail::register_job(model_.get());
        }
    }

    ~Job() { detail::unregister_job(model_.get()); }
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    /// The name the job was defined with.
    const std::string& name() const noexcept { return model_->name(); }
    /// The job's types as text (subtask, partial, job-wide data, with their sizes) and its
    /// JobOptions::revision: a worker gets the job's subtasks only if its signature is the
    /// same, and error messages about a mismatch quote it.
    const std::string& signature() const noexcept { return model_->signature(); }

    /// \cond internal
    /// For Cluster and Client: the type-erased definition.
    const detail::JobModelFor<T>& model() const noexcept { return *model_; }
    /// \endcond

private:
    std::unique_ptr<detail::JobModelFor<T>> model_;
};

}  // namespace dtask
