#pragma once
/// \file A run's checkpoint (RunOptions::checkpoint): the file that keeps which subtasks are
/// folded and the accumulator, opened for a run whose identity it must match, and a writer
/// thread that saves a snapshot every interval. The thread that folds only takes a lock and
/// marks an index; the writer serializes the accumulator under that lock, then writes apart.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <dtask/detail/folded_set.hpp>
#include <dtask/export.hpp>

namespace dtask::detail {

class CheckpointStore;  // src/client/checkpoint_store.hpp: the SQLite file

/// A 128-bit hash of `bytes` as 32 hex digits, with their size: how a checkpoint tells
/// inputs apart (not cryptographic: it does not stand against inputs made to collide).
DTASK_EXPORT std::string content_hash(std::string_view bytes);

class DTASK_EXPORT Checkpoint {
public:
    /// Named values: what the run must match (compared), or what it keeps (the split hint).
    using Fields = std::vector<std::pair<std::string, std::string>>;
    /// Serializes the accumulator into its argument; called under the fold lock.
    using Snapshot = std::function<void(std::string&)>;

    /// Opens the checkpoint at `path` for a run of `identity`, or creates it with `identity`
    /// and `kept`. Throws Error naming the file and what differs if it is another run's, is
    /// not a checkpoint, or is in use by another process.
    Checkpoint(std::string path, const Fields& identity, const Fields& kept,
               std::chrono::milliseconds interval);
    /// abandon(), unless the file was removed or abandoned before.
    ~Checkpoint();
    Checkpoint(const Checkpoint&) = delete;
    Checkpoint& operator=(const Checkpoint&) = delete;

    const std::string& path() const noexcept { return path_; }
    /// Whether the file held a run's progress: what was folded, and the accumulator then.
    bool resumed() const noexcept { return resumed_; }
    const FoldedSet& resumed_folded() const noexcept { return resumed_folded_; }
    const std::string& resumed_accumulator() const noexcept { return resumed_accumulator_; }
    /// A kept value as the file has it (as given, for a new file); empty if none.
    std::string kept(const std::string& key) const;
    /// Checks, or records in a new file, a part of the identity known only later (the
    /// job-wide data of a shared object). Throws Error as the constructor does.
    void confirm(const std::string& key, const std::string& value);

    /// Starts the writer, which saves `snapshot` and the folded set every interval.
    void start(Snapshot snapshot);
    /// Folds one result: calls `reduce` under the fold lock (no snapshot is taken meanwhile),
    /// then records subtask `index` (as split made it) as folded. Throws Error if a write
    /// failed (the job then fails rather than run on without its checkpoint). If reduce
    /// throws, the accumulator is lost and nothing more is written. A reduce that ends its
    /// own run (cancels its job) has the checkpoint abandoned when it returns.
    template <class Reduce>
    void fold(std::uint64_t index, Reduce&& reduce) {
        struct Folding {  // ends the fold after the lock is released, also when reduce throws
            Checkpoint& self;
            ~Folding() {
                self.folding_thread_ = std::thread::id{};
                if (self.abandon_after_fold_.exchange(false))
                    self.abandon();
            }
        } folding{*this};
        std::lock_guard lock(mutex_);
        if (!failure_.empty())
            throw_failure();
        folding_thread_ = std::this_thread::get_id();
        try {
            reduce();
        } catch (...) {
            spoiled_ = true;  // the accumulator was moved into reduce
            throw;
        }
        folded_.insert(index);
        ++unsaved_;
    }
    /// The job succeeded: stops the writer and removes the file.
    void remove() noexcept;
    /// The job failed or was cancelled: stops the writer, writes what is unsaved (unless
    /// reduce threw) and closes the file, so that another run may take it at once. Folds
    /// that come after are not written. Called from inside a fold's reduce, it is done when
    /// that reduce returns.
    void abandon() noexcept;

private:
    void write_loop();
    /// Serializes the state (under mutex_) and writes it (not); false if it failed.
    bool save(std::unique_lock<std::mutex>& lock);
    void stop_writer() noexcept;
    [[noreturn]] void throw_failure() const;

    std::string path_;
    std::unique_ptr<CheckpointStore> store_;
    std::mutex store_mutex_;  // the store's one connection: the writer, confirm(), the end
    bool fresh_ = false;
    bool resumed_ = false;
    FoldedSet resumed_folded_;
    std::string resumed_accumulator_;
    Fields kept_;
    std::chrono::milliseconds interval_;

    std::mutex mutex_;                               // the fold lock
    std::atomic<std::thread::id> folding_thread_{};  // the thread in fold(), if any
    std::atomic<bool> abandon_after_fold_{false};    // abandon() came from inside a fold
    std::condition_variable wake_;
    FoldedSet folded_;
    std::uint64_t unsaved_ = 0;  // folded since the last snapshot
    bool spoiled_ = false;
    bool closed_ = false;  // removed or abandoned: nothing more is written
    bool stopping_ = false;
    std::string failure_;  // why a write failed
    Snapshot snapshot_;
    std::mutex writer_mutex_;  // remove() and abandon() may race (a job cancelled as it ends)
    std::thread writer_;
};

}  // namespace dtask::detail
