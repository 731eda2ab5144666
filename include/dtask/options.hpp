#pragma once
/// \file
/// The options of a job's definition (JobOptions) and of one run of it (RunOptions), and what
/// split and on_progress are told (SplitHint, Progress).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace dtask {

/// What split is told about the cluster, so that it can choose a good number of pieces. A
/// hint only: split may return any number of pieces, and a generator split may ignore it.
struct SplitHint {
    /// Workers when the job was submitted (at least 1): for a Cluster, the local workers it
    /// starts or the workers connected, whichever is more; for a Client, the workers its
    /// broker last reported. Remote workers that join later are not counted.
    std::size_t workers = 1;
    /// Pieces to aim for: RunOptions::subtasks if set, else 4 per worker. Small pieces cost
    /// little: consecutive ones travel to a worker in one batch (docs/performance.md).
    std::size_t subtasks = 4;
};

/// How far a job has got: what JobHandle::progress() returns and RunOptions::on_progress
/// receives. A copy, taken at one moment: it does not change afterwards.
struct Progress {
    /// Subtasks folded into the result so far.
    std::uint64_t done = 0;
    /// Subtasks in the job once total_known; before that (a split that is a generator), those
    /// split off so far.
    std::uint64_t total = 0;
    /// Known once split has produced its last piece, or from the start for a sized range.
    bool total_known = false;
    /// Time since the job was submitted.
    std::chrono::milliseconds elapsed{0};
    /// Subtasks folded per second, on average since the job was submitted.
    double rate = 0;
    /// The time left at that rate: set once the total is known and a subtask is done, empty
    /// before.
    std::optional<std::chrono::milliseconds> eta;
    /// The job has ended: the last report (done == total if it succeeded).
    bool ended = false;
};

/// In which order partial results are folded into the result (JobOptions::order).
enum class ReduceOrder {
    /// In subtask order: the same result on every run and on any number of workers, even
    /// for a non-commutative reduce (string concatenation, a floating-point sum).
    subtask_order,
    /// As results arrive: less buffering, for reduces that are commutative and associative
    /// (a sum of integers, a count per word). The result may differ from run to run otherwise.
    arrival_order,
};

/// Part of a job's definition, the last argument of the Job constructor: true of every run of
/// the job. Designated initializers name what differs from the defaults, e.g.
/// `dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}`.
struct JobOptions {
    /// In which order reduce receives the partial results. Default: subtask order.
    ReduceOrder order = ReduceOrder::subtask_order;
    /// Part of the job's signature, which a worker's definition must match for the worker to
    /// get the job's subtasks. Bump it when the meaning of the job's data changes without its
    /// types changing, so that workers built from the old source are left out instead of
    /// misreading the new data. Default 0.
    std::uint32_t revision = 0;
};

/// Options of one run of a job: the last argument of run() and submit(). Every field has a
/// default; name only those you change, e.g. `dtask::RunOptions{.priority = 4}`. Durations
/// are std::chrono durations (`std::chrono::seconds(5)` converts).
struct RunOptions {
    /// How many pieces split should aim for (SplitHint::subtasks); 0 (the default): 4 per
    /// worker.
    std::size_t subtasks = 0;
    /// How many subtasks may be split off but not yet folded; bounds the memory of a job in
    /// the host and the broker, whatever the number of subtasks split yields. 0: the default
    /// (65536).
    std::size_t window = 0;
    /// The same bound in bytes of subtask payloads in flight (at least one subtask is always
    /// sent). 0: the default (32 MiB).
    std::size_t window_bytes = 0;
    /// The bound in bytes of partial results in the host: those waiting to be folded (behind
    /// a slow subtask in subtask order, or behind a slow reduce) and those the subtasks out
    /// will bring back, foretold from the largest so far. No more subtasks are split off while
    /// it is reached (at least one is always out). 0: the default (256 MiB).
    std::size_t reduce_bytes = 0;
    /// Subtasks per message (docs/performance.md). 0: automatic, sized from the measured
    /// cost of map and of a message, so that a batch runs for a few milliseconds (2 to 20)
    /// and the tail of the job is cut into small batches. 1 turns batching off; n > 1 sends n at a
    /// time (fewer at the tail; at most 4096).
    std::size_t batch_size = 0;
    /// The job's share of the workers when jobs compete: the broker serves jobs in turn, and a
    /// job of priority p takes p × 64 subtasks per turn. 1 to 1000 (others are clamped to
    /// that range); default 1.
    unsigned priority = 1;
    /// How long the job waits for a worker that serves it (one with the same definition of
    /// the job) before failing with TimeoutError (reason no_worker). Default 60 s.
    std::chrono::milliseconds worker_wait{std::chrono::seconds(60)};

    // ---- fault tolerance (docs/reliability.md) ----

    /// How many attempts one subtask gets before its job fails. Only attempts the subtask
    /// itself spoiled count: it killed the worker running it alone (PoisonSubtaskError), it ran
    /// past subtask_timeout (TimeoutError), or it threw a TransientError with retry_transient
    /// (TaskError). Subtasks lost with a worker that died of something else run again freely.
    /// 1 to 1000 (others are clamped to that range); default 3.
    unsigned max_attempts = 3;
    /// How long one subtask may run on a worker; 0 (the default): no limit, unless the broker
    /// sets one (ClusterOptions::max_subtask_time, dtaskd's `--max-subtask-seconds`). A subtask
    /// that runs longer is given to another worker, and the worker it hung restarts itself (a
    /// thread stuck in map cannot be stopped any other way); once it has used up
    /// max_attempts, the job fails with TimeoutError (reason subtask_timeout). Choose it well
    /// above the slowest normal subtask.
    std::chrono::milliseconds subtask_timeout{0};
    /// At the tail of the job, when no subtask is queued and a worker is idle, a subtask that
    /// has run much longer than the job's average gets a backup copy on the idle worker; the
    /// first result is folded, the other dropped. Needs a map without side effects; turn it
    /// off for a map that writes files or sends mail. Default on.
    bool backup_tasks = true;
    /// Rerun a subtask whose map threw a TransientError (up to max_attempts) instead of
    /// failing the job at once, as it does for every other exception. Default off.
    bool retry_transient = false;
    /// The whole job's time limit from submission; 0 (the default): none. When it passes, the
    /// job is cancelled and get() throws TimeoutError (reason deadline).
    std::chrono::milliseconds deadline{0};
    /// A directory where a failed subtask leaves a repro bundle (its bytes, the job-wide data
    /// and the error), for `PROGRAM --dtask-replay FILE` to run its map again in the
    /// foreground, under a debugger or a sanitizer; the error names the file. For a map that
    /// threw (TaskError), killed its workers (PoisonSubtaskError) or timed out (TimeoutError).
    /// Created if missing; files are readable by their owner alone. Empty (the default): the
    /// directory DTASK_REPLAY_DIR names, if set; else no bundle is written. While it is set,
    /// the host keeps a copy of the subtasks out (within RunOptions::window_bytes).
    std::string replay_dir{};

    // ---- progress (docs/observability.md) ----

    /// Called with the job's progress every progress_interval while it runs, never per
    /// subtask, and once more when it ends (Progress::ended), just before get() or wait()
    /// return: done == total when it succeeded. No call begins after that. It runs on the
    /// thread that drives the job (the client's I/O thread, or the caller of Cluster::run), so
    /// it must be quick and must not wait for a job; it may cancel its own. If it throws, the
    /// job fails with an Error that says so, and it is not called again. Empty by default.
    std::function<void(const Progress&)> on_progress{};
    /// The least time between two calls of on_progress, from the end of one to the start of
    /// the next (the last call excepted). Default 200 ms; less than 10 ms counts as 10 ms.
    std::chrono::milliseconds progress_interval{200};

    // ---- checkpoint (docs/reliability.md) ----

    /// A file where the host keeps the job's progress (an SQLite database): which subtasks
    /// are folded and the result so far, written every checkpoint_interval, never per
    /// subtask. Run the same job on the same input with the same file after the host died,
    /// and it resumes: the subtasks folded before are neither split nor run again, and the
    /// result is the one an uninterrupted run gives. A file of another job, input or
    /// definition is refused with an Error; a job that succeeds removes its file. Needs the
    /// input and the result type to be serializable with cereal. Empty (the default): none.
    std::string checkpoint{};
    /// The least time between two writes of the checkpoint. Default 2 s; less than 10 ms
    /// counts as 10 ms.
    std::chrono::milliseconds checkpoint_interval{std::chrono::seconds(2)};
};

}  // namespace dtask
