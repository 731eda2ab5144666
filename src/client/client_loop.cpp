#include "client/client_loop.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include <dtask/error.hpp>
#include <dtask/shared.hpp>

#include "client/mailbox.hpp"
#include "client/repro_writer.hpp"
#include "client/user_code.hpp"
#include "log.hpp"
#include "wire/batch.hpp"
#include "wire/deadline.hpp"
#include "wire/failure.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

/// How long the loop runs split or reduce before it looks at its socket again, so that
/// heartbeats and other jobs are not starved by one busy job.
constexpr auto time_slice = std::chrono::milliseconds(20);

/// Batches one split request to a strand may make at most: batches of one (batching off, or
/// a job's first) cost one hand-off per many.
constexpr std::size_t max_batches_per_request = 64;

/// The least RunOptions::progress_interval: a report costs a call, not a turn of the loop.
constexpr auto min_progress_interval = std::chrono::milliseconds(10);

std::chrono::milliseconds progress_interval(const RunOptions& options) {
    return std::max(options.progress_interval, min_progress_interval);
}

/// A RunOptions duration as the broker takes it: saturated to the protocol's bound.
std::uint64_t milliseconds_of(std::chrono::milliseconds duration) {
    return std::min(static_cast<std::uint64_t>(std::max<std::int64_t>(0, duration.count())),
                    protocol::max_duration_ms);
}

/// How the broker runs a job, from its RunOptions.
JobSettings settings_of(const RunOptions& options) {
    JobSettings settings;
    settings.worker_wait_ms = milliseconds_of(options.worker_wait);
    settings.priority = std::clamp(options.priority, 1u, protocol::max_priority);
    settings.max_attempts = std::clamp(options.max_attempts, 1u, protocol::max_job_attempts);
    settings.subtask_timeout_ms = milliseconds_of(options.subtask_timeout);
    settings.backup_tasks = options.backup_tasks;
    settings.retry_transient = options.retry_transient;
    return settings;
}

}  // namespace

ClientLoop::ClientLoop(ClientCore& core)
    : core_(core), connection_(core.context_, core.options_, *this) {}

void ClientLoop::run() {
    inline_ = false;
    connection_.reset_heartbeat(Clock::now());
    while (!stopped_)
        turn();
    connection_.say_goodbye();
}

void ClientLoop::drive(std::shared_ptr<RunState> run) {
    // Not known to be empty: the loop may come from another thread, whose sends the count
    // of this one does not see.
    connection_.watch_again();
    clock_.fresh();
    slice_end_ = now() + time_slice;
    connection_.reset_heartbeat(now());
    const RunState& state = *run;
    start(std::move(run));
    while (!state.finished() && !stopped_)
        turn(true);
    // The broker forgets the job now: this loop may idle for long before it sends again.
    connection_.tell_finished();
}

void ClientLoop::abandon(const std::string& why) {
    fail_all("the client's I/O thread stopped: " + why);
    std::vector<std::shared_ptr<RunState>> left;
    {
        std::lock_guard lock(core_.mailbox_->mutex);
        core_.mailbox_->stopping = true;
        core_.mailbox_->stop_reason = "the client's I/O thread stopped: " + why;
        left.swap(core_.mailbox_->incoming);
    }
    for (auto& run : left)
        run->fail(std::make_exception_ptr(TransportError("job '" + run->job_name() + "': " + why)));
}

/// Waits for the socket, the next timer, and the user threads' requests (`driving`: only
/// for the client to stop), and handles what came.
void ClientLoop::turn(bool driving) {
    const Mailbox& mailbox = *core_.mailbox_;
    // Jobs whose split window is still open but whose time slice ran out
    // continue at once; otherwise sleep until the next heartbeat is due.
    auto wake_at = std::min({connection_.next_heartbeat(), next_deadline_, next_report_});
    if (!inline_)
        wake_at = std::min(wake_at, core_.user_code_->stuck_at());
    const auto wait = unpumped_.empty()
                          ? std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now()) +
                                std::chrono::milliseconds(1)
                          : std::chrono::milliseconds(0);
    const auto planned = now() + wait;
    const bool requests = connection_.wait(driving ? mailbox.stop_fd : mailbox.wake_fd, wait);
    clock_.fresh();
    connection_.woke(planned, now());
    if (!inline_)
        core_.user_code_->unstick(now());
    slice_end_ = now() + time_slice;
    if (requests) {
        if (driving)
            stop_driving();
        else
            take_requests();
    }
    connection_.receive_burst(clock_, slice_end_);
    post_folds();
    pump_unpumped();
    connection_.heartbeat_if_due(clock_.last());
    fail_overdue();
    report_progress();
}

/// Cancels the jobs past their RunOptions::deadline, with a TimeoutError. Costs nothing
/// until the earliest deadline is due.
void ClientLoop::fail_overdue() {
    const auto now = clock_.last();
    if (now < next_deadline_)
        return;
    next_deadline_ = Clock::time_point::max();
    std::vector<std::uint64_t> overdue;
    for (const auto& [id, job] : jobs_) {
        if (now >= job.deadline)
            overdue.push_back(id);
        else
            next_deadline_ = std::min(next_deadline_, job.deadline);
    }
    for (std::uint64_t id : overdue) {
        const ActiveJob& job = jobs_.at(id);
        fail(id, deadline_error(job.run->job_name(), job.run->run_options().deadline,
                                job.run->progress()));
    }
}

/// Calls the progress callbacks due by this turn's clock (never late, as it reads no later
/// than the time). Costs nothing until the earliest is due.
void ClientLoop::report_progress() {
    if (now() < next_report_)
        return;
    next_report_ = Clock::time_point::max();
    std::vector<std::uint64_t> due;
    for (const auto& [id, job] : jobs_) {
        if (now() >= job.next_report)
            due.push_back(id);
        else
            next_report_ = std::min(next_report_, job.next_report);
    }
    for (std::uint64_t id : due) {
        auto it = jobs_.find(id);
        if (it == jobs_.end() || !report(id, it->second, false))
            continue;
        // From the end of this call: the next starts at least an interval later.
        it->second.next_report =
            deadline_after(clock_.fresh(), progress_interval(it->second.run->run_options()));
        next_report_ = std::min(next_report_, it->second.next_report);
    }
}

bool ClientLoop::report(std::uint64_t id, ActiveJob& job, bool last) {
    if (job.next_report == Clock::time_point::max())
        return true;  // no callback, or it threw before
    if (last)
        job.next_report = Clock::time_point::max();
    std::exception_ptr thrown = job.run->report_progress(last);
    if (!thrown)
        return true;
    job.next_report = Clock::time_point::max();
    std::string what = "an exception that is not a std::exception";
    try {
        std::rethrow_exception(thrown);
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    // Made before the job fails: the temporary Error, whose message the one in the job
    // shares, is gone before the user's thread can read it.
    auto error = std::make_exception_ptr(
        Error("job '" + job.run->job_name() +
              "': its progress callback (RunOptions::on_progress) threw: " + what +
              "; the job was cancelled"));
    fail(id, std::move(error));
    return false;
}

void ClientLoop::end_report(ActiveJob& job) {
    if (job.next_report == Clock::time_point::max())
        return;
    job.next_report = Clock::time_point::max();
    (void)job.run->report_progress(true);
}

/// The client stops while drive() runs: its job fails as the I/O thread's do.
void ClientLoop::stop_driving() {
    stop_jobs(core_.mailbox_->reason_to_stop());
}

/// The client stops: every job fails with `reason`, and the broker drops them.
void ClientLoop::stop_jobs(const std::string& reason) {
    for (auto& [id, job] : jobs_) {
        job.run->fail(
            std::make_exception_ptr(Error("job '" + job.run->job_name() + "': " + reason)));
        connection_.send_about(Command::cancel, id);
    }
    jobs_.clear();
    stopped_ = true;
}

void ClientLoop::take_requests() {
    Mailbox::Requests requests = core_.mailbox_->take();
    if (requests.stopping)
        stopped_ = true;
    send_unshares(requests.unshared, true);  // shared objects released before these runs
    // Cancels before submits: a job cancelled, then another submitted, must reach the broker
    // in that order, or the broker still counts the first against the client's job limit.
    // A run cancelled before it got here is not among the jobs yet: start() sees it ended.
    for (auto& weak : requests.cancelled) {
        auto run = weak.lock();
        if (!run)
            continue;
        for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
            if (it->second.run == run) {
                drop(it->first, Command::cancel);
                break;
            }
        }
    }
    for (auto& run : requests.incoming) {
        if (stopped_) {
            run->fail(std::make_exception_ptr(
                Error("job '" + run->job_name() + "': " + requests.stop_reason)));
        } else {
            start(std::move(run));
        }
    }
    send_unshares(requests.unshared, false);  // after the submits above, which may use them
    for (UserCodeDone& done : requests.done)
        on_done(done);
    if (stopped_)
        stop_jobs(requests.stop_reason);
}

void ClientLoop::send_unshares(const std::vector<Mailbox::Unshare>& unshared,
                               bool before_incoming) {
    for (const auto& unshare : unshared) {
        if (unshare.before_incoming == before_incoming)
            connection_.send_unshare(unshare.id);
    }
}

void ClientLoop::start(std::shared_ptr<RunState> run) {
    if (refused()) {
        run->fail(std::make_exception_ptr(
            TransportError("job '" + run->job_name() + "': " + connection_.refusal())));
        return;
    }
    const SharedObject* object = run->shared_object();
    for (const auto& [what, bytes] :
         {std::pair{"its job-wide data", run->shared().size()},
          std::pair{"its shared data", object ? object->bytes().size() : std::size_t{0}}}) {
        if (auto error = too_large(*run, what, bytes)) {
            run->fail(error);
            return;
        }
    }
    std::weak_ptr<RunState> weak = run;
    const bool live =
        run->set_cancel_hook([mailbox = core_.mailbox_, weak] { mailbox->post_cancel(weak); });
    if (!live)
        return;  // cancelled before it got here
    const std::uint64_t id = next_job_id_++;
    ActiveJob& job = jobs_.try_emplace(id, run).first->second;
    if (!inline_)
        job.strand = std::make_shared<Strand>();
    const RunOptions& options = run->run_options();
    if (options.deadline.count() > 0) {
        job.deadline = deadline_after(Clock::now(), options.deadline);
        next_deadline_ = std::min(next_deadline_, job.deadline);
    }
    if (options.on_progress) {
        job.next_report = deadline_after(Clock::now(), progress_interval(options));
        next_report_ = std::min(next_report_, job.next_report);
    }
    job.replay_dir = replay_directory(options);
    job.keeps_batches = connection_.keeps_batches() || !job.replay_dir.empty();
    connection_.send_submit(id, *run, settings_of(options));
    pump(id, job);
}

/// The broker restarted: registers the running jobs again, in the order of their ids, with
/// their job-wide data and shared objects, and sends again the batches not wholly back.
/// What was folded stays folded; a result that comes back twice is folded once.
void ClientLoop::resume(std::chrono::milliseconds pause) {
    std::vector<std::uint64_t> ids;
    ids.reserve(jobs_.size());
    for (const auto& entry : jobs_)
        ids.push_back(entry.first);
    std::sort(ids.begin(), ids.end());
    std::size_t batches = 0;
    for (const std::uint64_t id : ids) {
        ActiveJob& job = jobs_.at(id);
        connection_.send_submit(id, *job.run, settings_of(job.run->run_options()));
        job.kept.for_each_out([&](zmq::message_t& frame) {
            connection_.resend_batch(frame);
            ++batches;
        });
        if (job.exhausted || job.tail_told)
            connection_.send_about(Command::split_done, id);
    }
    log_warning("client", "the broker at " + core_.options_.endpoint +
                              " is back (it restarted) after " + std::to_string(pause.count()) +
                              " ms: " + std::to_string(ids.size()) +
                              " running job(s) registered again, " + std::to_string(batches) +
                              " batch(es) of subtasks sent again");
}

/// Splits off and sends batches of subtasks while the split window is open: here, while the
/// time slice lasts (drive()), or on the job's strand, one request at a time.
void ClientLoop::pump(std::uint64_t id, ActiveJob& job) {
    const std::size_t workers = std::max<std::size_t>(core_.workers(), 1);
    while (!job.exhausted && !job.splitting && job.window.open(workers)) {
        if (inline_ && now() >= slice_end_) {
            unpumped_.insert(id);
            return;
        }
        const Progress progress = job.run->counts();
        const auto remaining = progress.total_known
                                   ? std::optional(progress.total - job.window.emitted())
                                   : std::nullopt;
        const std::size_t room = job.window.room(workers);
        const std::size_t want = std::min(room, job.sizer.next(remaining, workers));
        if (!inline_) {
            // Results not yet handed to the strand fold first: the subtasks split off and not
            // folded stay within the window also as user code sees them.
            if (job.to_fold.empty())
                split_elsewhere(id, job, want, room, remaining, workers);
            return;
        }
        // Kept from batch to batch: a small batch is copied into its message, and the
        // buffer's memory serves the next one.
        std::uint64_t count = 0;
        bool exhausted = false;
        try {
            count = split_batch(*job.run, want, batch_buffer_, exhausted, slice_end_);
        } catch (...) {
            fail(id, std::current_exception());
            return;
        }
        if (!send_split(id, job, count, batch_buffer_))
            return;  // failed
        if (exhausted)
            end_split(id, job);
    }
    if (!job.exhausted && !job.splitting && !job.tail_told &&
        job.window.held_by_partials(workers)) {
        // Nothing more goes out until a slow subtask's result comes back: the broker may
        // make a backup copy of it, as at the job's tail (a later task ends this).
        job.tail_told = true;
        connection_.send_about(Command::split_done, id);
    }
    if (job.exhausted && !job.splitting && !job.folding && job.window.all_folded())
        finish(id, job);
}

/// Asks the job's strand for up to `room` subtasks in batches of `want`, as many batches as
/// the split window lets out, so that a hand-off carries many batches of one; each cut
/// smaller at the job's tail, as the `remaining` subtasks and the `workers` say.
void ClientLoop::split_elsewhere(std::uint64_t id, ActiveJob& job, std::size_t want,
                                 std::size_t room, std::optional<std::uint64_t> remaining,
                                 std::size_t workers) {
    const std::size_t batches =
        std::min(max_batches_per_request,
                 SplitWindow::max_batches_out -
                     std::min(SplitWindow::max_batches_out, job.window.batches_out()));
    UserCodeWork work;
    work.run = job.run;
    work.job = id;
    work.split.per_batch = want;
    work.split.subtasks = std::min<std::uint64_t>(room, std::max<std::size_t>(batches, 1) * want);
    work.split.bytes = job.window.bytes_room();
    work.split.remaining = remaining;
    work.split.workers = workers;
    job.splitting = true;
    core_.user_code_->post(job.strand, std::move(work), now());
}

/// A batch of `count` subtasks was split off into `bytes`: sends it; after the last one,
/// tells the broker the job's tail has begun.
bool ClientLoop::send_split(std::uint64_t id, ActiveJob& job, std::uint64_t count,
                            std::string& bytes) {
    // A batch of one with batching off is cheap to make: the clock need not be read
    // for each. A job's first batches are of one too, and each may take long.
    if (count > 1 || !job.sizer.measured())
        clock_.fresh();
    else
        clock_.next();
    if (count > 0) {
        if (auto error = too_large(*job.run, count == 1 ? "one subtask" : "a batch of subtasks",
                                   bytes.size())) {
            fail(id, error);
            return false;
        }
        const std::uint64_t first = job.window.on_sent(count, bytes.size(), now());
        job.run->count_emitted(count);
        job.tail_told = false;
        if (job.keeps_batches) {
            const std::size_t records = bytes.size() - protocol::task_header_room;
            auto frame = connection_.send_batch(id, first, count, bytes, true);
            const std::size_t header = frame.size() - records;
            job.kept.keep(first, count, header, std::move(frame));
        } else {
            connection_.send_batch(id, first, count, bytes);
        }
    }
    return true;
}

/// Split has no more: the total is known, and from now on the broker may send backup copies.
void ClientLoop::end_split(std::uint64_t id, ActiveJob& job) {
    job.exhausted = true;
    job.run->declare_total(job.window.emitted());
    connection_.send_about(Command::split_done, id);
}

void ClientLoop::pump_unpumped() {
    std::vector<std::uint64_t> ids(unpumped_.begin(), unpumped_.end());
    unpumped_.clear();
    for (std::uint64_t id : ids) {
        if (auto it = jobs_.find(id); it != jobs_.end())
            pump(id, it->second);
    }
}

void ClientLoop::finish(std::uint64_t id, ActiveJob& job) {
    if (!report(id, job, true))
        return;  // failed instead
    try {
        job.run->finish();
    } catch (...) {
        job.run->fail(std::current_exception());
    }
    // Nothing of the job is left to run: the broker may hear of its end with the next
    // submit or heartbeat instead of being woken for it between two short jobs.
    jobs_.erase(id);
    connection_.note_finished(id);
}

/// The error of a job whose `what` of `bytes` is a frame larger than the broker takes
/// (which would close this client's connection), or null.
std::exception_ptr ClientLoop::too_large(const RunState& run, const char* what,
                                         std::size_t bytes) const {
    const std::uint64_t limit = connection_.max_message();
    if (limit == 0 || bytes <= limit)
        return nullptr;
    return std::make_exception_ptr(Error(
        "job '" + run.job_name() + "': " + what + " is " + std::to_string(bytes) +
        " bytes, more than the broker's maximum message size of " + std::to_string(limit) +
        " bytes: send less at once (smaller subtasks, a smaller RunOptions::window_bytes), or "
        "raise the bound (dtaskd --max-message-mib, ClusterOptions::max_message_bytes)"));
}

void ClientLoop::fail(std::uint64_t id, std::exception_ptr error) {
    auto it = jobs_.find(id);
    if (it == jobs_.end())
        return;
    end_report(it->second);
    it->second.run->fail(std::move(error));
    drop(id, Command::cancel);
}

void ClientLoop::drop(std::uint64_t id, Command how) {
    jobs_.erase(id);
    connection_.send_about(how, id);
}

void ClientLoop::fail_all(const std::string& why) {
    for (auto& [id, job] : jobs_) {
        job.run->fail(
            std::make_exception_ptr(TransportError("job '" + job.run->job_name() + "': " + why)));
    }
    jobs_.clear();
}

// ---- messages from the broker ----

void ClientLoop::on_status(std::uint64_t workers) {
    std::lock_guard lock(core_.workers_mutex_);
    core_.workers_ = workers;
    core_.workers_changed_.notify_all();
}

void ClientLoop::on_result(Inbound& message) {
    const std::uint64_t id = message.fields[0];
    auto it = jobs_.find(id);
    if (it == jobs_.end())
        return;  // cancelled or failed: late results are ignored
    ActiveJob& job = it->second;
    const std::uint64_t first = message.fields[1];
    const std::uint64_t count = message.fields[2];
    try {
        check_range(job, first, count);
        const std::size_t taken = job.to_fold.size();
        const std::size_t bytes = message.frame->size();
        const bool in_order = job.order.in_subtask_order();
        const std::uint64_t fresh =
            in_order ? job.order.arrive(first, count)
                     : job.order.take_arrived(first, count, *message.frame, job.to_fold);
        if (fresh == 0)
            return;  // duplicates only: another copy came back first
        job.window.on_partials(count, bytes);
        if (job.keeps_batches)
            job.kept.returned(first, fresh);
        if (connection_.keeps_batches() && connection_.restart().resumed())
            connection_.restart().heard();
        // Bounded so that a worker's absurd report is not read as a negative time.
        const auto map_ns =
            std::min<std::uint64_t>(message.fields[3], std::numeric_limits<std::int64_t>::max());
        settle(job, first, count, fresh,
               std::chrono::nanoseconds(static_cast<std::int64_t>(map_ns)));
        if (in_order)
            job.order.take_in_order(first, count, *message.frame, job.to_fold);
        for (std::size_t i = taken; i < job.to_fold.size(); ++i)
            job.to_fold_bytes += job.to_fold[i].bytes;
    } catch (...) {
        fail(id, std::current_exception());
        return;
    }
    if (job.run->finished()) {  // cancelled from another thread meanwhile
        drop(id, Command::cancel);
        return;
    }
    if (!inline_) {
        // Folded on the job's strand with what else comes in this burst, and before the
        // split that the room it frees allows.
        if (!job.fold_listed) {
            job.fold_listed = true;
            fold_list_.push_back(id);
        }
        hold(job);
        return;
    }
    std::uint64_t folded = 0;
    try {
        folded = fold_runs(*job.run, job.to_fold);
    } catch (...) {
        fail(id, std::current_exception());
        return;
    }
    job.to_fold.clear();  // its memory serves the next result
    job.to_fold_bytes = 0;
    job.window.on_folded(folded);
    if (job.run->finished()) {  // cancelled from another thread meanwhile
        drop(id, Command::cancel);
        return;
    }
    hold(job);
    pump(id, job);
}

/// The split window hears how many bytes of partials wait to be folded.
void ClientLoop::hold(ActiveJob& job) {
    job.window.set_held(job.order.parked_bytes() + job.to_fold_bytes + job.folding_bytes);
}

/// Hands the results of this burst to their jobs' strands, one fold request per job, then
/// splits what the window allows, on the same strand after the folds.
void ClientLoop::post_folds() {
    for (std::uint64_t id : fold_list_) {
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            continue;
        ActiveJob& job = it->second;
        job.fold_listed = false;
        if (!job.folding)
            fold_elsewhere(id, job);
        hold(job);
        pump(id, job);
    }
    fold_list_.clear();
}

void ClientLoop::fold_elsewhere(std::uint64_t id, ActiveJob& job) {
    if (job.to_fold.empty())
        return;
    UserCodeWork work;
    work.run = job.run;
    work.job = id;
    work.runs = std::move(job.to_fold);
    job.to_fold.clear();  // moved from: empty, and stays valid
    job.folding = true;
    job.folding_bytes = job.to_fold_bytes;
    job.to_fold_bytes = 0;
    core_.user_code_->post(job.strand, std::move(work), now());
}

/// A job's strand did a piece of its split or reduce: the split window hears of it, batches
/// go out, and the job goes on, ends or fails.
void ClientLoop::on_done(UserCodeDone& done) {
    auto it = jobs_.find(done.job);
    if (it == jobs_.end())
        return;  // failed or cancelled meanwhile: what it did is of no use
    const std::uint64_t id = done.job;
    ActiveJob& job = it->second;
    if (done.error) {
        fail(id, done.error);
        return;
    }
    if (done.split) {
        job.splitting = false;
        for (SplitBatch& batch : done.batches) {
            if (!send_split(id, job, batch.count, batch.bytes))
                return;  // failed
        }
        if (done.exhausted)
            end_split(id, job);
    } else {
        job.folding = false;
        job.folding_bytes = 0;
        job.window.on_folded(done.folded);
        fold_elsewhere(id, job);
        hold(job);
    }
    pump(id, job);
}

void ClientLoop::check_range(const ActiveJob& job, std::uint64_t first, std::uint64_t count) const {
    if (!job.window.sent_all_of(first, count))
        throw ProtocolError("results for subtasks " + std::to_string(first) + " to " +
                            std::to_string(first + count) + " of job '" + job.run->job_name() +
                            "', which has sent only " + std::to_string(job.window.emitted()));
}

/// `fresh` results of a run came back for the first time: the split window takes back what
/// they held, and the batch sizer gets its figures.
void ClientLoop::settle(ActiveJob& job, std::uint64_t first, std::uint64_t count,
                        std::uint64_t fresh, std::chrono::nanoseconds map_time) {
    std::optional<std::chrono::nanoseconds> round_trip;
    if (const auto sent_at = job.window.on_returned(first, count, fresh)) {
        // The sizer keeps the least round trip: a time read some messages ago would make
        // it too short for good, so read it now unless batching is off.
        round_trip = (job.run->run_options().batch_size == 1 ? now() : clock_.fresh()) - *sent_at;
    }
    job.sizer.observe(count, map_time, round_trip);
}

void ClientLoop::on_failure(Inbound& message) {
    const std::uint64_t id = message.fields[0];
    auto it = jobs_.find(id);
    if (it == jobs_.end())
        return;
    const ActiveJob& job = it->second;
    if (const SharedObject* object = job.run->shared_object();
        object != nullptr &&
        decode_body<Failure>(message.body[0], "a failure").kind == FailureKind::shared_data)
        connection_.forget_share(object->id());  // refused: not held by the broker
    end_report(it->second);
    const std::uint64_t index = message.fields[1];
    const std::string bundle =
        job.replay_dir.empty()
            ? std::string()
            : write_failure_bundle(job.replay_dir, *job.run, job.kept, index, message.body[0]);
    // No copy of the error is left on this thread.
    job.run->fail(failure_error(message.body[0], job.run->job_name(), index, job.notices, bundle));
    drop(id, Command::end);
}

void ClientLoop::on_notice(Inbound& message) {
    const std::string text(as_text(message.body[0]));
    log_warning("client", text);
    if (auto it = jobs_.find(message.fields[0]); it != jobs_.end())
        it->second.notices.push_back(text);
}

}  // namespace dtask::detail
