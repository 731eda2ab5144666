#include "client/client_core.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <sys/eventfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "wire/batch.hpp"
#include "wire/batch_sizer.hpp"
#include "wire/deadline.hpp"
#include "client/index_set.hpp"
#include "wire/lazy_clock.hpp"
#include "log.hpp"
#include "wire/protocol.hpp"
#include "wire/socket_poll.hpp"
#include "thread_name.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t default_window = 65536;
constexpr std::size_t default_window_bytes = 32 << 20;
/// Batches of one job in flight at most: enough to keep the credit windows of several
/// workers full when batches are single subtasks (a window may reach 256), without
/// flooding the broker.
constexpr std::size_t max_batches_in_flight = 1024;
/// How long the I/O thread runs split or reduce before it looks at its socket again, so
/// that heartbeats and other jobs are not starved by one busy job.
constexpr auto time_slice = std::chrono::milliseconds(20);

/// A batch sent and not yet wholly back.
struct SentBatch {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t left = 0;  // results still to come
    std::size_t bytes = 0;
    Clock::time_point sent_at;
};

/// Results that came back ahead of their turn (subtask order): one run of a batch.
struct ParkedRun {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    zmq::message_t frame;  // the whole result message
};

/// A job on the I/O thread: how far split has got, and what has come back.
struct ActiveJob {
    explicit ActiveJob(std::shared_ptr<RunState> state)
        : run(std::move(state)), sizer(run->run_options().batch_size) {}

    std::shared_ptr<RunState> run;
    BatchSizer sizer;
    std::uint64_t emitted = 0;  // subtasks split off and sent
    std::uint64_t folded = 0;   // partials folded into the result
    bool exhausted = false;     // split has no more
    std::size_t window = default_window;
    std::size_t window_bytes = default_window_bytes;
    std::size_t bytes_in_flight = 0;   // subtask payloads sent, not back
    std::deque<SentBatch> sent;        // in index order; the front is still out
    std::size_t batches_out = 0;       // of those, not wholly back
    SlidingIndexSet arrived;           // indices whose result came back
    std::deque<ParkedRun> parked;      // by first index, ahead of their turn
    std::uint64_t next_to_fold = 0;    // in subtask order
    std::vector<std::string> notices;  // from the broker, for the error
    Clock::time_point deadline = Clock::time_point::max();  // RunOptions::deadline
};

std::uint64_t milliseconds_of(std::chrono::milliseconds duration) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, duration.count()));
}

}  // namespace

class ClientCore::Loop {
public:
    explicit Loop(ClientCore& core)
        : core_(core),
          socket_(core.context_, zmq::socket_type::dealer),
          interval_(core.options_.heartbeat_interval),
          liveness_(core.options_.heartbeat_liveness) {
        tune(socket_);
        retry_interrupted([&] { socket_.connect(core_.options_.endpoint); });
        poller_.watch(socket_);
        say_hello();
    }

    /// The I/O thread's loop, until the client stops.
    void run() {
        next_heartbeat_ = Clock::now() + interval_;
        while (!stopped_)
            turn();
        say_goodbye();
    }

    /// Runs one job on the calling thread until it ends, with no other job on this loop:
    /// its messages and the user's thread need no hand-off through the I/O thread.
    void drive(std::shared_ptr<RunState> run) {
        // Not known to be drained: the loop may come from another thread, whose sends the
        // count of this one does not see.
        poller_.watch(socket_);
        clock_.fresh();
        slice_end_ = now() + time_slice;
        next_heartbeat_ = now() + interval_;
        const RunState& state = *run;
        start(std::move(run));
        while (!state.finished() && !stopped_)
            turn(true);
        // The broker forgets the job now: this loop may idle for long before it sends again.
        tell_finished();
    }

    /// Whether the broker refused this connection: it is of no use for another job.
    bool refused() const noexcept { return !refusal_.empty(); }

    void say_goodbye() {
        tell_finished();
        std::array bye{header(Command::bye)};
        send(socket_, {}, bye);
    }

    /// say_goodbye() on a connection being dropped: if it fails, closing the socket is all
    /// that is left to do.
    void say_goodbye_if_possible() noexcept {
        try {
            say_goodbye();
        } catch (const std::exception&) {
        }
    }

    /// After an unexpected error on the I/O thread: no job may wait for it any more.
    void abandon(const std::string& why) {
        fail_all<TransportError>("the client's I/O thread stopped: " + why);
        std::vector<std::shared_ptr<RunState>> left;
        {
            std::lock_guard lock(core_.mailbox_->mutex);
            core_.mailbox_->stopping = true;
            core_.mailbox_->stop_reason = "the client's I/O thread stopped: " + why;
            left.swap(core_.mailbox_->incoming);
        }
        for (auto& run : left) {
            run->fail(
                std::make_exception_ptr(TransportError("job '" + run->job_name() + "': " + why)));
        }
    }

private:
    /// Waits for the socket, the next timer, and the user threads' requests (`driving`: only
    /// for the client to stop), and handles what came.
    void turn(bool driving = false) {
        const Mailbox& mailbox = *core_.mailbox_;
        poller_.watch_other(0, driving ? mailbox.stop_fd : mailbox.wake_fd);
        // Jobs whose split still has room in its window but used up its time slice
        // continue at once; otherwise sleep until the next heartbeat is due.
        const auto wake_at = std::min(next_heartbeat_, next_deadline_);
        const auto wait =
            unpumped_.empty()
                ? std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now()) +
                      std::chrono::milliseconds(1)
                : std::chrono::milliseconds(0);
        poller_.wait(wait);
        clock_.fresh();
        slice_end_ = now() + time_slice;
        if (poller_.readable(0)) {
            if (driving)
                stop_driving();
            else
                take_requests();
        }
        poller_.drained(drain());
        pump_unpumped();
        heartbeat_if_due();
        fail_overdue();
    }

    /// Handles the messages the socket holds, up to 256 and within the time slice. True if
    /// it found the socket empty.
    bool drain() {
        for (int burst = 0; burst < 256 && now() < slice_end_; ++burst) {
            if (!receive(socket_, frames_, false))
                return true;
            clock_.next();
            last_heard_ = now();
            on_message(frames_);
        }
        return false;
    }

    /// The time of this turn or message (clock_).
    Clock::time_point now() const noexcept { return clock_.last(); }

    void heartbeat_if_due() {
        const auto now = clock_.last();
        if (now < next_heartbeat_)
            return;
        tell_finished();
        std::array beat{header(Command::heartbeat)};
        send(socket_, {}, beat);
        next_heartbeat_ = now + interval_;
        check_broker(now);
    }

    /// Cancels the jobs past their RunOptions::deadline, with a TimeoutError. Costs nothing
    /// until the earliest deadline is due.
    void fail_overdue() {
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
            const Progress progress = job.run->progress();
            fail(id, std::make_exception_ptr(TimeoutError(
                         TimeoutError::Reason::deadline,
                         "job '" + job.run->job_name() + "' passed its deadline of " +
                         std::to_string(job.run->run_options().deadline.count()) + " ms with " +
                         std::to_string(progress.done) + " of " +
                         (progress.total_known ? std::to_string(progress.total)
                                               : "at least " + std::to_string(progress.total)) +
                         " subtasks done; it was cancelled")));
        }
    }

    void say_hello() {
        awaiting_welcome_ = true;
        Hello hello;
        hello.role = Role::client;
        hello.name = process_name();
        hello.platform = platform();
        hello.same_process = core_.options_.same_process;
        hello.pid = getpid();
        std::array frames{header(Command::hello), encode_body(hello)};
        send(socket_, {}, frames);
        last_heard_ = Clock::now();
    }

    /// The client stops while drive() runs: its job fails as the I/O thread's do.
    void stop_driving() {
        std::string reason;
        {
            std::lock_guard lock(core_.mailbox_->mutex);
            reason = core_.mailbox_->stop_reason;
        }
        stop_jobs(reason);
    }

    /// The client stops: every job fails with `reason`, and the broker drops them.
    void stop_jobs(const std::string& reason) {
        for (auto& [id, job] : jobs_) {
            job.run->fail(
                std::make_exception_ptr(Error("job '" + job.run->job_name() + "': " + reason)));
            std::array frames{header(Command::cancel, {id})};
            send(socket_, {}, frames);
        }
        jobs_.clear();
        stopped_ = true;
    }

    // ---- requests from user threads ----

    void take_requests() {
        std::uint64_t count = 0;
        auto& mailbox = *core_.mailbox_;
        [[maybe_unused]] auto got = read(mailbox.wake_fd, &count, sizeof count);
        std::vector<std::shared_ptr<RunState>> incoming;
        std::vector<std::weak_ptr<RunState>> cancelled;
        std::string stop_reason;
        {
            std::lock_guard lock(mailbox.mutex);
            incoming.swap(mailbox.incoming);
            cancelled.swap(mailbox.cancelled);
            if (mailbox.stopping) {
                stopped_ = true;
                stop_reason = mailbox.stop_reason;
            }
        }
        for (auto& run : incoming) {
            if (stopped_) {
                run->fail(std::make_exception_ptr(
                    Error("job '" + run->job_name() + "': " + stop_reason)));
            } else {
                start(std::move(run));
            }
        }
        for (auto& weak : cancelled) {
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
        if (stopped_)
            stop_jobs(stop_reason);
    }

    void start(std::shared_ptr<RunState> run) {
        if (!refusal_.empty()) {
            run->fail(std::make_exception_ptr(
                TransportError("job '" + run->job_name() + "': " + refusal_)));
            return;
        }
        std::weak_ptr<RunState> weak = run;
        const bool live = run->set_cancel_hook([mailbox = core_.mailbox_, weak] {
            {
                std::lock_guard lock(mailbox->mutex);
                mailbox->cancelled.push_back(weak);
            }
            mailbox->wake();
        });
        if (!live)
            return;  // cancelled before it got here
        const std::uint64_t id = next_job_id_++;
        ActiveJob& job = jobs_.try_emplace(id, run).first->second;
        const RunOptions& options = run->run_options();
        if (options.window != 0)
            job.window = options.window;
        if (options.window_bytes != 0)
            job.window_bytes = options.window_bytes;
        if (options.deadline.count() > 0) {
            job.deadline = deadline_after(Clock::now(), options.deadline);
            next_deadline_ = std::min(next_deadline_, job.deadline);
        }
        JobSettings settings;
        settings.worker_wait_ms = milliseconds_of(options.worker_wait);
        settings.priority = std::clamp(options.priority, 1u, 1000u);
        settings.max_attempts = std::clamp(options.max_attempts, 1u, 1000u);
        settings.subtask_timeout_ms = milliseconds_of(options.subtask_timeout);
        settings.backup_tasks = options.backup_tasks;
        settings.retry_transient = options.retry_transient;
        std::array frames{header(Command::submit, {id}), text_frame(run->job_name()),
                          text_frame(run->signature()),
                          zmq::message_t(run->shared().data(), run->shared().size()),
                          encode_body(settings)};
        tell_finished();
        send(socket_, {}, frames);
        pump(id, job);
    }

    /// Splits off and sends batches of subtasks while the window has room (in count and in
    /// bytes, but at least one batch) and the time slice lasts.
    void pump(std::uint64_t id, ActiveJob& job) {
        const std::size_t workers = std::max<std::size_t>(core_.workers(), 1);
        while (!job.exhausted && job.emitted - job.folded < job.window &&
               job.batches_out < max_batches_in_flight &&
               (job.bytes_in_flight < job.window_bytes || job.batches_out == 0)) {
            if (now() >= slice_end_) {
                unpumped_.insert(id);
                return;
            }
            const Progress progress = job.run->progress();
            const auto remaining =
                progress.total_known ? std::optional(progress.total - job.emitted) : std::nullopt;
            const std::size_t room = job.window - (job.emitted - job.folded);
            const std::size_t want = std::min(room, job.sizer.next(remaining, workers));
            // Kept from batch to batch: a small batch is copied into its message, and the
            // buffer's memory serves the next one.
            std::string& bytes = batch_buffer_;
            bytes.assign(task_header_room, '\0');  // send_batch writes the header
            BatchWriter writer(bytes);
            std::uint64_t count = 0;
            try {
                while (count < want && bytes.size() < BatchSizer::max_batch_bytes) {
                    // A slow split must not hold up the loop: a batch closes early when
                    // the time slice is over.
                    if (count % 16 == 15 && clock_.fresh() >= slice_end_)
                        break;
                    writer.begin();
                    if (!job.run->next_subtask(writer.out())) {
                        writer.abandon();
                        job.exhausted = true;
                        break;
                    }
                    writer.end();
                    ++count;
                }
            } catch (...) {
                fail(id, std::current_exception());
                return;
            }
            // A batch of one with batching off is cheap to make: the clock need not be read
            // for each. A job's first batches are of one too, and each may take long.
            if (count > 1 || !job.sizer.measured())
                clock_.fresh();
            else
                clock_.next();
            if (count > 0)
                send_batch(id, job, count, bytes);
            if (job.exhausted) {
                job.run->declare_total(job.emitted);
                // The job's tail begins: from now on the broker may send backup copies.
                std::array done{header(Command::split_done, {id})};
                send(socket_, {}, done);
            }
        }
        if (job.exhausted && job.folded == job.emitted)
            finish(id, job);
    }

    void send_batch(std::uint64_t id, ActiveJob& job, std::uint64_t count, std::string& bytes) {
        const std::uint64_t first = job.emitted;
        job.emitted += count;
        job.bytes_in_flight += bytes.size();
        job.sent.push_back(SentBatch{first, count, count, bytes.size(), now()});
        ++job.batches_out;
        job.run->count_emitted(count);
        const std::size_t start =
            write_batch_header(std::as_writable_bytes(std::span(bytes).first(task_header_room)),
                               Command::task, id, {first, count});
        std::array frames{payload_frame(std::move(bytes), start)};
        send(socket_, {}, frames);
    }

    void pump_unpumped() {
        std::vector<std::uint64_t> ids(unpumped_.begin(), unpumped_.end());
        unpumped_.clear();
        for (std::uint64_t id : ids) {
            if (auto it = jobs_.find(id); it != jobs_.end())
                pump(id, it->second);
        }
    }

    void finish(std::uint64_t id, ActiveJob& job) {
        try {
            job.run->finish();
        } catch (...) {
            job.run->fail(std::current_exception());
        }
        // Nothing of the job is left to run: the broker may hear of its end with the next
        // submit or heartbeat instead of being woken for it between two short jobs.
        jobs_.erase(id);
        finished_.push_back(id);
    }

    /// The `end` of the jobs finished since the last call.
    void tell_finished() {
        for (const std::uint64_t id : finished_) {
            std::array frames{header(Command::end, {id})};
            send(socket_, {}, frames);
        }
        finished_.clear();
    }

    void fail(std::uint64_t id, std::exception_ptr error) {
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            return;
        it->second.run->fail(std::move(error));
        drop(id, Command::cancel);
    }

    /// Forgets a job here and at the broker.
    void drop(std::uint64_t id, Command how) {
        jobs_.erase(id);
        std::array frames{header(how, {id})};
        send(socket_, {}, frames);
    }

    // ---- messages from the broker ----

    void on_message(std::vector<zmq::message_t>& frames) {
        Inbound message;
        try {
            message = parse(frames, 0);
        } catch (const ProtocolError& e) {
            log_warning("client",
                        std::string("ignoring a malformed message from the broker: ") + e.what());
            return;
        }
        switch (message.command) {
            case Command::welcome:
                welcomed_ = true;
                awaiting_welcome_ = false;
                if (message.fields[0] > 0)
                    interval_ = std::chrono::milliseconds(message.fields[0]);
                if (message.fields[1] > 0)
                    liveness_ = static_cast<unsigned>(message.fields[1]);
                return;
            case Command::heartbeat:
                return;
            case Command::status: {
                std::lock_guard lock(core_.workers_mutex_);
                core_.workers_ = message.fields[0];
                core_.workers_changed_.notify_all();
                return;
            }
            case Command::result:
                return on_result(message);
            case Command::failure:
                return on_failure(message);
            case Command::notice:
                return on_notice(message);
            case Command::refuse:
                return on_refused(std::string(as_text(message.body[0])));
            case Command::reconnect:
                // Answers to what we sent before our last hello are stale: the broker
                // handles messages in order, so the welcome to that hello is on its way.
                if (awaiting_welcome_)
                    return;
                return on_broker_lost("the broker no longer knew this client (it restarted?)");
            default:
                log_warning("client", "ignoring a " + std::string(command_name(message.command)) +
                                          " message, which a broker does not send to clients");
        }
    }

    void on_result(Inbound& message) {
        const std::uint64_t id = message.fields[0];
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            return;  // cancelled or failed: late results are ignored
        ActiveJob& job = it->second;
        const std::uint64_t first = message.fields[1];
        const std::uint64_t count = message.fields[2];
        try {
            check_range(job, first, count);
            const bool in_order = job.run->job_options().order == ReduceOrder::subtask_order;
            std::uint64_t fresh = 0;
            if (in_order) {
                for (std::uint64_t i = first; i < first + count; ++i)
                    fresh += job.arrived.insert(i) ? 1 : 0;
            } else {
                fresh = fold_arrived(job, first, count, message.batch);
            }
            if (fresh == 0)
                return;  // duplicates only: another copy came back first
            // Bounded so that a worker's absurd report is not read as a negative time.
            const auto map_ns = std::min<std::uint64_t>(message.fields[3],
                                                        std::numeric_limits<std::int64_t>::max());
            settle(job, first, count, fresh,
                   std::chrono::nanoseconds(static_cast<std::int64_t>(map_ns)));
            if (in_order)
                fold_in_order(job, first, count, message.batch, *message.frame);
        } catch (...) {
            fail(id, std::current_exception());
            return;
        }
        if (job.run->finished()) {  // cancelled from another thread meanwhile
            drop(id, Command::cancel);
            return;
        }
        pump(id, job);
    }

    void check_range(const ActiveJob& job, std::uint64_t first, std::uint64_t count) const {
        if (count == 0 || first > job.emitted || count > job.emitted - first)
            throw ProtocolError("results for subtasks " + std::to_string(first) + " to " +
                                std::to_string(first + count) + " of job '" + job.run->job_name() +
                                "', which has sent only " + std::to_string(job.emitted));
    }

    /// `fresh` results of a run came back for the first time: gives the window back the
    /// bytes of batches now wholly back, and the batch sizer its figures.
    void settle(ActiveJob& job, std::uint64_t first, std::uint64_t count, std::uint64_t fresh,
                std::chrono::nanoseconds map_time) {
        std::optional<std::chrono::nanoseconds> round_trip;
        if (auto batch = batch_holding(job.sent, first); batch != job.sent.end()) {
            batch->left -= std::min(batch->left, fresh);
            if (batch->left == 0) {
                job.bytes_in_flight -= batch->bytes;
                --job.batches_out;
                // The sizer keeps the least round trip: a time read some messages ago
                // would make it too short for good, so read it now unless batching is off.
                if (first == batch->first && count == batch->count)
                    round_trip = (job.run->run_options().batch_size == 1 ? now() : clock_.fresh()) -
                                 batch->sent_at;
            }
        }
        while (!job.sent.empty() && job.sent.front().left == 0)
            job.sent.pop_front();
        job.sizer.observe(count, map_time, round_trip);
    }

    /// The batch holding subtask `index` (runs never cross batches), or sent.end(). Batches
    /// are in index order and mostly of one size: the guess from the first one's size is
    /// nearly always right, which spares a binary search of the deque per result.
    static std::deque<SentBatch>::iterator batch_holding(std::deque<SentBatch>& sent,
                                                         std::uint64_t index) {
        if (sent.empty() || index < sent.front().first)
            return sent.end();
        const std::uint64_t guess =
            (index - sent.front().first) / std::max<std::uint64_t>(sent.front().count, 1);
        if (guess < sent.size()) {
            const auto batch = sent.begin() + static_cast<std::ptrdiff_t>(guess);
            if (batch->first <= index && index < batch->first + batch->count)
                return batch;
        }
        auto after = std::upper_bound(
            sent.begin(), sent.end(), index,
            [](std::uint64_t wanted, const SentBatch& batch) { return wanted < batch.first; });
        return std::prev(after);
    }

    /// Arrival order: folds each result of the run that had not arrived before; returns how
    /// many it folded.
    std::uint64_t fold_arrived(ActiveJob& job, std::uint64_t first, std::uint64_t count,
                               std::span<const std::byte> results) {
        BatchReader reader(results);
        std::span<const std::byte> partial;
        std::uint64_t fresh = 0;
        for (std::uint64_t index = first;
             index < first + count && reader.next(partial, "result batch"); ++index) {
            if (!job.arrived.insert(index))
                continue;
            fold(job, partial, index);
            ++fresh;
        }
        return fresh;
    }

    /// Subtask order: folds the run now if its turn has come, else parks its frame.
    /// `results` is the frame's batch, which parse() found: a parked frame moves, and its
    /// batch is found again when its turn comes.
    void fold_in_order(ActiveJob& job, std::uint64_t first, std::uint64_t count,
                       std::span<const std::byte> results, zmq::message_t& frame) {
        if (first <= job.next_to_fold) {
            fold_run(job, first, count, results);
            fold_parked(job);
            return;
        }
        // Runs mostly come back in index order: a sorted deque, searched from its end, takes
        // them with no allocation per run, where a map allocated a node.
        auto& parked = job.parked;
        auto at = parked.end();
        if (!parked.empty() && parked.back().first >= first) {
            at = std::lower_bound(
                parked.begin(), parked.end(), first,
                [](const ParkedRun& run, std::uint64_t index) { return run.first < index; });
        }
        if (at == parked.end() || at->first != first) {
            parked.insert(at, ParkedRun{first, count, std::move(frame)});
        } else if (at->count < count) {
            // A second copy is kept only if the first came back cut shorter (a retried
            // subtask in it).
            at->count = count;
            at->frame = std::move(frame);
        }
    }

    /// Subtask order: folds the run's results from next_to_fold on.
    void fold_run(ActiveJob& job, std::uint64_t first, std::uint64_t count,
                  std::span<const std::byte> results) {
        BatchReader reader(results);
        std::span<const std::byte> partial;
        for (std::uint64_t index = first;
             index < first + count && reader.next(partial, "result batch"); ++index) {
            if (index == job.next_to_fold) {
                fold(job, partial, index);
                ++job.next_to_fold;
            }
        }
    }

    void fold_parked(ActiveJob& job) {
        while (!job.parked.empty() && job.parked.front().first <= job.next_to_fold) {
            const ParkedRun run = std::move(job.parked.front());
            job.parked.pop_front();
            fold_run(job, run.first, run.count, read_batch_frame(run.frame).batch);
        }
    }

    void fold(ActiveJob& job, std::span<const std::byte> partial, std::uint64_t index) {
        job.run->fold(partial, index);
        ++job.folded;
        job.run->count_done();
    }

    void on_failure(Inbound& message) {
        const std::uint64_t id = message.fields[0];
        const std::uint64_t index = message.fields[1];
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            return;
        const std::string& name = it->second.run->job_name();
        std::exception_ptr error;
        try {
            auto failure = decode_body<Failure>(message.body[0], "a failure report");
            switch (failure.kind) {
                case FailureKind::timeout:
                    error = std::make_exception_ptr(
                        TimeoutError(TimeoutError::Reason::subtask_timeout, failure.message));
                    break;
                case FailureKind::exception:
                case FailureKind::transient:
                    error = std::make_exception_ptr(TaskError(
                        name, index, failure.worker, failure.exception_type, failure.message));
                    break;
                case FailureKind::worker_lost:
                    error = std::make_exception_ptr(PoisonSubtaskError(failure.message));
                    break;
                case FailureKind::no_worker: {
                    std::string text = failure.message;
                    for (const auto& notice : it->second.notices)
                        text += "; " + notice;
                    error = std::make_exception_ptr(
                        TimeoutError(TimeoutError::Reason::no_worker, text));
                    break;
                }
                case FailureKind::definition:
                    error = std::make_exception_ptr(JobDefinitionError(failure.message));
                    break;
                case FailureKind::protocol:
                    error = std::make_exception_ptr(ProtocolError(failure.message));
                    break;
                case FailureKind::shutdown:
                    error = std::make_exception_ptr(BrokerShutdownError(failure.message));
                    break;
                default:
                    error = std::make_exception_ptr(Error(failure.message));
                    break;
            }
        } catch (const ProtocolError& e) {
            error = std::make_exception_ptr(ProtocolError(
                "job '" + name +
                "' failed, and the broker's report of why was unreadable: " + e.what()));
        }
        it->second.run->fail(std::move(error));  // no copy left on this thread
        drop(id, Command::end);
    }

    void on_notice(Inbound& message) {
        const std::string text(as_text(message.body[0]));
        log_warning("client", text);
        if (auto it = jobs_.find(message.fields[0]); it != jobs_.end())
            it->second.notices.push_back(text);
    }

    /// A refusal is final: this client's jobs fail with its reason from now on.
    void on_refused(const std::string& reason) {
        refusal_ = "the broker at " + core_.options_.endpoint + " refused this client: " + reason;
        fail_all<TransportError>(refusal_);
    }

    void on_broker_lost(const std::string& why) {
        fail_all<TransportError>(why);
        if (refusal_.empty())
            say_hello();
    }

    void check_broker(Clock::time_point now) {
        if (core_.options_.same_process || !refusal_.empty() ||
            now - last_heard_ <= interval_ * liveness_)
            return;
        // Messages may be waiting that this thread was too busy to read: then the broker
        // is not silent.
        if (poller_.unread(socket_))
            return;
        const auto silent = std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_).count());
        if (welcomed_) {
            on_broker_lost("lost contact with the broker at " + core_.options_.endpoint +
                           ": silent for " + silent + " ms");
        } else {
            on_broker_lost("no answer from a broker at " + core_.options_.endpoint + " for " +
                           silent + " ms: is it running, and is the endpoint right?");
        }
        last_heard_ = now;  // the next verdict after another full silence
    }

    template <class ErrorType>
    void fail_all(const std::string& why) {
        for (auto& [id, job] : jobs_) {
            job.run->fail(
                std::make_exception_ptr(ErrorType("job '" + job.run->job_name() + "': " + why)));
        }
        jobs_.clear();
    }

    ClientCore& core_;
    zmq::socket_t socket_;
    std::vector<zmq::message_t> frames_;  // of the message being handled
    std::string batch_buffer_;            // the batch being built
    std::chrono::milliseconds interval_;
    unsigned liveness_;
    Clock::time_point last_heard_;
    Clock::time_point next_heartbeat_;
    Clock::time_point slice_end_;
    // Read once per turn, then every few messages received or one-subtask batches sent: a
    // clock read costs about as much as the rest of the work for an empty subtask.
    LazyClock clock_;
    SocketPoll<1> poller_{{-1}};  // the socket, and the mailbox's wake or stop descriptor
    // No job's deadline is before this; a job that ended may leave it early, which costs
    // one needless look in fail_overdue.
    Clock::time_point next_deadline_ = Clock::time_point::max();
    bool welcomed_ = false;                       // ever
    bool awaiting_welcome_ = false;               // to the last hello
    std::string refusal_;                         // set once the broker refused us
    std::unordered_set<std::uint64_t> unpumped_;  // jobs that ran out of time slice, not window
    std::unordered_map<std::uint64_t, ActiveJob> jobs_;
    std::vector<std::uint64_t> finished_;  // jobs done whose end the broker has yet to hear
    std::uint64_t next_job_id_ = 1;
    bool stopped_ = false;
};

ClientCore::Mailbox::Mailbox() {
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0 || stop_fd < 0)
        throw Error("dtask: cannot create the client's wake-up events (eventfd)");
}

ClientCore::Mailbox::~Mailbox() {
    close(wake_fd);
    close(stop_fd);
}

void ClientCore::Mailbox::signal(int event_fd) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(event_fd, &one, sizeof one);
}

ClientCore::ClientCore(zmq::context_t& context, ClientOptions options)
    : options_(std::move(options)), context_(context), mailbox_(std::make_shared<Mailbox>()) {
    // Connect here, so that a bad endpoint is an error of the constructor; from then on
    // only the I/O thread uses the socket.
    try {
        loop_ = std::make_unique<Loop>(*this);
    } catch (const zmq::error_t& e) {
        throw TransportError("dtask: cannot connect to the broker at '" + options_.endpoint +
                             "': " + e.what());
    }
    thread_ = std::thread([this] {
        name_this_thread("dtask-client");
        try {
            loop_->run();
        } catch (const std::exception& e) {
            log_warning("client",
                        std::string("I/O thread stopped by an unexpected error: ") + e.what());
            loop_->abandon(e.what());
        }
    });
}

ClientCore::~ClientCore() {
    stop("the cluster or client was destroyed while it ran");
    loop_.reset();
}

bool ClientCore::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(workers_mutex_);
    return workers_changed_.wait_for(lock, timeout, [&] { return workers_.load() >= count; });
}

void ClientCore::enqueue(std::shared_ptr<RunState> run) {
    {
        std::lock_guard lock(mailbox_->mutex);
        if (!mailbox_->stopping) {
            mailbox_->incoming.push_back(std::move(run));
            run = nullptr;
        }
    }
    if (run) {
        run->fail(std::make_exception_ptr(
            Error("job '" + run->job_name() + "' was submitted after shutdown")));
        return;
    }
    mailbox_->wake();
}

void ClientCore::run_here(std::shared_ptr<RunState> run) {
    std::unique_ptr<Loop> loop;
    {
        std::lock_guard lock(mailbox_->mutex);
        if (mailbox_->stopping) {
            run->fail(std::make_exception_ptr(
                Error("job '" + run->job_name() + "' was submitted after shutdown")));
            return;
        }
        if (!spare_loops_.empty()) {
            loop = std::move(spare_loops_.back());
            spare_loops_.pop_back();
        }
        ++mailbox_->driving;
    }
    bool reusable = true;
    try {
        if (!loop)
            loop = std::make_unique<Loop>(*this);
        loop->drive(run);
    } catch (const std::exception& e) {
        run->fail(std::make_exception_ptr(TransportError(
            "job '" + run->job_name() + "': its connection to the broker failed: " + e.what())));
        reusable = false;  // the loop goes, and its socket with it
    }
    std::lock_guard lock(mailbox_->mutex);
    if (reusable && !loop->refused() && !mailbox_->stopping) {
        spare_loops_.push_back(std::move(loop));
    } else if (loop) {
        loop->say_goodbye_if_possible();
        loop.reset();  // closes its socket before stop() lets the context go
    }
    --mailbox_->driving;
    mailbox_->drives_ended.notify_all();
}

void ClientCore::stop(const std::string& reason) {
    {
        std::lock_guard lock(mailbox_->mutex);
        if (!mailbox_->stopping) {
            mailbox_->stopping = true;
            mailbox_->stop_reason = reason;
        }
    }
    mailbox_->wake();
    Mailbox::signal(mailbox_->stop_fd);
    if (thread_.joinable())
        thread_.join();
    {
        // The jobs driven by user threads fail too; their sockets must close before the
        // context they belong to does.
        std::unique_lock lock(mailbox_->mutex);
        mailbox_->drives_ended.wait(lock, [&] { return mailbox_->driving == 0; });
    }
    // The I/O thread failed the jobs it had; fail any handed over after its last look.
    std::vector<std::shared_ptr<RunState>> left;
    std::vector<std::unique_ptr<Loop>> spares;
    {
        std::lock_guard lock(mailbox_->mutex);
        left.swap(mailbox_->incoming);
        spares.swap(spare_loops_);
    }
    for (auto& spare : spares)
        spare->say_goodbye_if_possible();
    for (auto& run : left)
        run->fail(std::make_exception_ptr(Error("job '" + run->job_name() + "': " + reason)));
}

}  // namespace dtask::detail
