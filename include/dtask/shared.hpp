#pragma once
/// \file
/// dtask::Shared<D>: data placed on the workers once (Cluster::share, Client::share) and used
/// as the job-wide data of any number of later jobs, as Dask's scatter or Ray's put.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <dtask/error.hpp>

namespace dtask {

namespace detail {

/// The client's record of a shared object: its id, its serialized bytes (sent to the broker
/// with the first job that uses it) and how its release reaches the client's I/O thread.
/// Runs that use it hold it too, so that its bytes outlive a release while they need them.
class SharedObject {
public:
    using Release = std::function<void(std::uint64_t)>;

    SharedObject(const void* owner, std::uint64_t id, std::string bytes, Release release)
        : owner_(owner), id_(id), bytes_(std::move(bytes)), release_(std::move(release)) {}
    SharedObject(const SharedObject&) = delete;
    SharedObject& operator=(const SharedObject&) = delete;

    std::uint64_t id() const noexcept { return id_; }
    const std::string& bytes() const noexcept { return bytes_; }
    /// The Cluster or Client whose share() made it.
    const void* owner() const noexcept { return owner_; }
    bool released() const noexcept { return released_.load(std::memory_order_acquire); }
    /// Tells the client to free it at the broker and on the workers; once only.
    void release() noexcept {
        if (released_.exchange(true, std::memory_order_acq_rel))
            return;
        try {
            release_(id_);
        } catch (...) {
            // Only a client that stopped fails to take it; its broker forgets it anyway.
        }
    }

private:
    const void* owner_;
    std::uint64_t id_;
    std::string bytes_;
    Release release_;
    std::atomic<bool> released_{false};
};

}  // namespace detail

/// A handle to data of type D placed on the workers. A job whose map takes a `const D&` as
/// its second parameter gets it beside each subtask, as job-wide data given by value; a map
/// of three parameters gets it as its second, beside the job's own job-wide data. Each
/// worker receives it once, before the first job that uses it. Copies share one object; it
/// is freed at the broker and on the workers when the last copy is destroyed or release()
/// is called (a job still running keeps it there until it ends). Use it only with the
/// Cluster or Client whose share() made it: submit() and run() throw Error for another's, a
/// released or an empty handle. Example: examples/kmeans.cpp.
template <class D>
class Shared {
public:
    /// An empty handle (valid() is false), to assign a share()'s result to.
    Shared() = default;

    /// Frees it at the broker and on the workers now, for every copy of this handle; jobs
    /// already submitted with it keep it until they end. Returns at once; a second call does
    /// nothing.
    void release() noexcept {
        if (holder_)
            holder_->object->release();
    }
    /// Whether it is still there to use (not released, not default-constructed).
    bool valid() const noexcept { return holder_ && !holder_->object->released(); }
    /// Bytes of its serialized form: what the broker and each worker hold (docs/architecture.md).
    std::size_t size() const noexcept { return holder_ ? holder_->object->bytes().size() : 0; }

    /// \cond internal
    /// For Cluster and Client: the object, checked to be usable by `owner`.
    std::shared_ptr<const detail::SharedObject> object_for(const void* owner) const {
        if (!holder_)
            throw Error(
                "dtask: a job was given an empty dtask::Shared handle; get one from "
                "share()");
        if (holder_->object->released())
            throw Error("dtask: a job was given shared data that was released (shared object " +
                        std::to_string(holder_->object->id()) + "): share it again");
        if (holder_->object->owner() != owner)
            throw Error(
                "dtask: a job was given shared data placed by another Cluster or "
                "Client: share it with the one that runs the job");
        return holder_->object;
    }

    /// For Cluster and Client.
    explicit Shared(std::shared_ptr<detail::SharedObject> object)
        : holder_(std::make_shared<Holder>(std::move(object))) {}
    /// \endcond

private:
    /// Releases the object when the last copy of the handle goes; runs hold the object alone.
    struct Holder {
        explicit Holder(std::shared_ptr<detail::SharedObject> shared) : object(std::move(shared)) {}
        ~Holder() { object->release(); }
        Holder(const Holder&) = delete;
        Holder& operator=(const Holder&) = delete;
        std::shared_ptr<detail::SharedObject> object;
    };
    std::shared_ptr<Holder> holder_;
};

}  // namespace dtask
