#pragma once
/// \file run() and submit(), shared by Cluster and Client: one code path for submitting jobs.

#include <cstddef>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <dtask/job.hpp>
#include <dtask/job_handle.hpp>
#include <dtask/options.hpp>

namespace dtask {

class Submitter {
public:
    /// Starts `job` on `input` and returns at once.
    template <class T, class Input>
    JobHandle<T> submit(const Job<T>& job, Input input, RunOptions options = {}) {
        const NoShared none;
        auto run = make_run(job, input, none, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// Starts `job` on `input`, with job-wide data that every worker receives once and map
    /// receives beside each subtask.
    template <class T, class Input, class Shared>
    requires(!std::is_same_v<std::remove_cvref_t<Shared>, RunOptions>) JobHandle<T> submit(
        const Job<T>& job, Input input, const Shared& shared, RunOptions options = {}) {
        auto run = make_run(job, input, shared, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// Runs `job` on `input` and returns its result; throws what the job failed with.
    template <class T, class Input>
    T run(const Job<T>& job, Input input, RunOptions options = {}) {
        const NoShared none;
        auto state = make_run(job, input, none, options);
        run_to_end(state);
        return JobHandle<T>(std::move(state)).get();
    }

    template <class T, class Input, class Shared>
    requires(!std::is_same_v<std::remove_cvref_t<Shared>, RunOptions>) T
        run(const Job<T>& job, Input input, const Shared& shared, RunOptions options = {}) {
        auto state = make_run(job, input, shared, options);
        run_to_end(state);
        return JobHandle<T>(std::move(state)).get();
    }

    /// Workers connected to the broker now.
    virtual std::size_t workers() const = 0;

protected:
    Submitter() = default;
    ~Submitter() = default;
    Submitter(const Submitter&) = delete;
    Submitter& operator=(const Submitter&) = delete;

    /// Hands a started run to the client's I/O thread.
    virtual void enqueue(std::shared_ptr<detail::RunState> run) = 0;
    /// Returns once the run has ended (its result or error is in it). By default on the
    /// I/O thread; a submitter may run it on the calling thread instead.
    virtual void run_to_end(std::shared_ptr<detail::RunState> run) {
        enqueue(run);
        run->wait();
    }
    /// How many workers split should plan for.
    virtual std::size_t planned_workers() const = 0;

private:
    template <class T, class Input, class Shared>
    auto make_run(const Job<T>& job, Input& input, const Shared& shared, RunOptions options) {
        SplitHint hint;
        hint.workers = planned_workers();
        hint.subtasks = options.subtasks != 0 ? options.subtasks : 4 * hint.workers;
        return job.model().start(typeid(Input), &input, typeid(Shared), &shared, hint, options);
    }
};

}  // namespace dtask
