#pragma once
/// \file dtask::Job<T>: a map-reduce job with a stable name, defined once at namespace scope
/// so that the same binary started as a worker finds its map by that name.

#include <memory>
#include <string>
#include <utility>

#include <dtask/detail/job_machinery.hpp>
#include <dtask/options.hpp>

namespace dtask {

/// A map-reduce job whose result is a T.
///
/// - split(const Input&, SplitHint) -> the subtasks: any range of Subtask (a vector, a lazy
///   view) or a generator callable returning std::optional<Subtask> (nullopt at the end).
///   Pieces are pulled lazily, only as the window of subtasks in flight allows.
/// - map(const Subtask&) -> Partial, or map(const Subtask&, const Shared&) -> Partial with
///   job-wide data sent to each worker once per job. Runs on a worker process, found there by
///   the job's name, so it must not capture anything.
/// - reduce(T accumulator, Partial) -> T folds partial results into the result, which starts
///   as T{}; in subtask order unless JobOptions::order says otherwise.
///
/// Define jobs at namespace scope (e.g. `inline const dtask::Job<T> name{...};`): a worker
/// process only knows the jobs constructed before dtask::init() runs. A Job constructed after
/// init (in main(), in a function, or as a function's static, which is constructed at its
/// first call) throws JobDefinitionError at once.
template <class T>
class Job {
public:
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

    const std::string& name() const noexcept { return model_->name(); }
    const std::string& signature() const noexcept { return model_->signature(); }

    /// For Cluster and Client: the type-erased definition.
    const detail::JobModelFor<T>& model() const noexcept { return *model_; }

private:
    std::unique_ptr<detail::JobModelFor<T>> model_;
};

}  // namespace dtask
