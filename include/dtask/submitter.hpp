#pragma once
/// \file
/// run(), submit() and share(), shared by Cluster and Client: one code path for submitting
/// jobs.

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <dtask/job.hpp>
#include <dtask/job_handle.hpp>
#include <dtask/options.hpp>
#include <dtask/shared.hpp>

namespace dtask {

namespace detail {

template <class D>
inline constexpr bool is_shared_handle_v = false;
template <class D>
inline constexpr bool is_shared_handle_v<Shared<D>> = true;

}  // namespace detail

/// What Cluster and Client have in common: running jobs (run, submit) and placing data on the
/// workers (share). Code that takes a `dtask::Submitter&` works with both. Every member may
/// be called from several threads at once.
///
/// The input is taken by value and moved into the run, which keeps it until the job ends.
/// Its type must be exactly the one split takes (a job whose split takes a `std::uint64_t`
/// refuses an `int` such as `1000000`: write `std::uint64_t{1000000}`), and job-wide data's
/// exactly map's last parameter (placed data's its second, for a map of three parameters);
/// otherwise submit() and run() throw JobDefinitionError.
/// split is called on the calling thread, before submit() returns: what it throws, submit()
/// and run() throw.
class Submitter {
public:
    /// Starts `job` on `input` and returns at once with the job's handle; the job's errors
    /// come from the handle's get().
    template <class T, class Input>
    JobHandle<T> submit(const Job<T>& job, Input input, RunOptions options = {}) {
        const NoShared none;
        auto run = make_run(job, input, none, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// Starts `job` on `input`, with job-wide data that every worker receives once and map
    /// receives beside each subtask. `shared` is serialized once, now; for data used by many
    /// jobs, share() it instead.
    template <class T, class Input, class Data>
    requires(!std::is_same_v<std::remove_cvref_t<Data>, RunOptions>) JobHandle<T> submit(
        const Job<T>& job, Input input, const Data& shared, RunOptions options = {}) {
        auto run = make_run(job, input, shared, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// Runs `job` on `input`, blocks until it ends, and returns its result; throws what the
    /// job failed with (error.hpp). On a Cluster the calling thread does the job's host-side
    /// work itself (split's pieces, reduce, on_progress); on a Client the client's threads do
    /// it while this one waits.
    template <class T, class Input>
    T run(const Job<T>& job, Input input, RunOptions options = {}) {
        const NoShared none;
        auto state = make_run(job, input, none, options);
        run_to_end(state);
        return JobHandle<T>(std::move(state)).get();
    }

    /// run() with job-wide data, as submit() takes it.
    template <class T, class Input, class Data>
    requires(!std::is_same_v<std::remove_cvref_t<Data>, RunOptions>) T
        run(const Job<T>& job, Input input, const Data& shared, RunOptions options = {}) {
        auto state = make_run(job, input, shared, options);
        run_to_end(state);
        return JobHandle<T>(std::move(state)).get();
    }

    /// Places `value` on the workers for any number of later jobs (dtask::Shared). It is
    /// serialized now and goes to the broker with the first job that uses it, and to each
    /// worker once, before the first such job the worker runs. The broker keeps at most
    /// ClusterOptions::shared_bytes_per_client of a client's shared data: a job past it fails.
    /// D must be serializable (a compile error says so otherwise).
    template <class D>
    Shared<D> share(const D& value) {
        static_assert(detail::is_serializable_v<D>,
                      "dtask::share: the shared data type must be serializable with cereal: give "
                      "it a `template <class Archive> void serialize(Archive& a)` member");
        std::string bytes;
        detail::save_to(bytes, value);
        return Shared<D>(make_shared_object(std::move(bytes)));
    }

    /// Starts `job` on `input` with shared data placed by share(): the job's map receives it
    /// beside each subtask, as job-wide data, and no worker that holds it is sent it again.
    template <class T, class Input, class D>
    JobHandle<T> submit(const Job<T>& job, Input input, const Shared<D>& shared,
                        RunOptions options = {}) {
        auto run = make_shared_run(job, input, shared, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// run() with shared data placed by share(). Unlike the other run()s, on a Cluster too
    /// the client's threads do the host-side work while this one waits.
    template <class T, class Input, class D>
    T run(const Job<T>& job, Input input, const Shared<D>& shared, RunOptions options = {}) {
        auto state = make_shared_run(job, input, shared, options);
        // On the client's own connection, which the broker knows the shared objects of.
        enqueue(state);
        state->wait();
        return JobHandle<T>(std::move(state)).get();
    }

    /// Starts `job` on `input` with both kinds of data, for a map that takes three parameters,
    /// map(const Subtask&, const P& placed, const D& data): `placed`, placed by share(), stays
    /// on the workers across jobs; `data` is this job's own, serialized now and sent with it
    /// (as k-means sends each iteration's centroids beside the points placed once).
    template <class T, class Input, class P, class D>
    requires(!std::is_same_v<std::remove_cvref_t<D>, RunOptions>) JobHandle<T> submit(
        const Job<T>& job, Input input, const Shared<P>& placed, const D& data,
        RunOptions options = {}) {
        static_assert(!detail::is_shared_handle_v<D>,
                      "dtask::Submitter: a job takes one placed dtask::Shared; its job-wide "
                      "data is given by value: submit(job, input, placed, data)");
        auto run = make_placed_run(job, input, placed, data, options);
        enqueue(run);
        return JobHandle<T>(std::move(run));
    }

    /// run() with placed data and job-wide data, as submit() takes them; the client's threads
    /// do the host-side work, as with any shared data.
    template <class T, class Input, class P, class D>
    requires(!std::is_same_v<std::remove_cvref_t<D>, RunOptions>) T
        run(const Job<T>& job, Input input, const Shared<P>& placed, const D& data,
            RunOptions options = {}) {
        static_assert(!detail::is_shared_handle_v<D>,
                      "dtask::Submitter: a job takes one placed dtask::Shared; its job-wide "
                      "data is given by value: submit(job, input, placed, data)");
        auto state = make_placed_run(job, input, placed, data, options);
        enqueue(state);
        state->wait();
        return JobHandle<T>(std::move(state)).get();
    }

    /// \cond internal
    /// The placed data after the job-wide data: refused, with a message that says the order.
    template <class T, class Input, class D, class P>
    requires(!detail::is_shared_handle_v<D>) JobHandle<T> submit(const Job<T>&, Input, const D&,
                                                                 const Shared<P>&,
                                                                 RunOptions = {}) {
        static_assert(detail::is_shared_handle_v<D>,
                      "dtask::Submitter: the placed data (a dtask::Shared from share()) comes "
                      "before the job-wide data: submit(job, input, placed, data)");
        std::abort();
    }
    template <class T, class Input, class D, class P>
    requires(!detail::is_shared_handle_v<D>) T
        run(const Job<T>&, Input, const D&, const Shared<P>&, RunOptions = {}) {
        static_assert(detail::is_shared_handle_v<D>,
                      "dtask::Submitter: the placed data (a dtask::Shared from share()) comes "
                      "before the job-wide data: submit(job, input, placed, data)");
        std::abort();
    }
    /// \endcond

    /// Workers connected to the broker now.
    virtual std::size_t workers() const = 0;

    /// \cond internal
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
    /// A shared object of serialized `bytes`, released through this submitter's client.
    virtual std::shared_ptr<detail::SharedObject> make_shared_object(std::string bytes) = 0;

private:
    SplitHint hint_for(const RunOptions& options) const {
        SplitHint hint;
        hint.workers = planned_workers();
        hint.subtasks = options.subtasks != 0 ? options.subtasks : 4 * hint.workers;
        return hint;
    }

    template <class T, class Input, class Data>
    auto make_run(const Job<T>& job, Input& input, const Data& shared, RunOptions options) {
        return job.model().start(typeid(Input), &input, typeid(NoShared), typeid(Data), &shared,
                                 hint_for(options), options);
    }

    /// A run whose job-wide data is a shared object: checked as data of type D would be, and
    /// not serialized again.
    template <class T, class Input, class D>
    auto make_shared_run(const Job<T>& job, Input& input, const Shared<D>& shared,
                         RunOptions options) {
        return make_placed_run(job, input, shared, NoShared{}, options);
    }

    /// A run with a shared object (placed data of type P, or the job-wide data of a map of
    /// two parameters) and job-wide data of its own (NoShared for none).
    template <class T, class Input, class P, class D>
    auto make_placed_run(const Job<T>& job, Input& input, const Shared<P>& placed, const D& data,
                         RunOptions options) {
        auto object = placed.object_for(this);
        auto run = job.model().start(typeid(Input), &input, typeid(P), typeid(D), &data,
                                     hint_for(options), options);
        run->confirm_shared(object->bytes());
        run->use_shared_object(std::move(object));
        return run;
    }
    /// \endcond
};

}  // namespace dtask
