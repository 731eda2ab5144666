#include "client/user_code.hpp"

#include <algorithm>
#include <mutex>
#include <thread>

#include "client/mailbox.hpp"
#include "thread_name.hpp"
#include "wire/batch.hpp"
#include "wire/batch_sizer.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

std::uint64_t split_batch(RunState& run, std::size_t want, std::string& bytes, bool& exhausted,
                          std::chrono::steady_clock::time_point until) {
    bytes.assign(protocol::task_header_room, '\0');  // the header is written when sent
    BatchWriter writer(bytes);
    std::uint64_t count = 0;
    while (count < want && bytes.size() < BatchSizer::max_batch_bytes) {
        // A slow split must not hold its batches back: one closes early when time is up.
        if (count % 16 == 15 && std::chrono::steady_clock::now() >= until)
            break;
        writer.begin();
        if (!run.next_subtask(writer.out())) {
            writer.abandon();
            exhausted = true;
            break;
        }
        writer.end();
        ++count;
    }
    return count;
}

std::uint64_t fold_runs(RunState& run, const std::vector<FoldRun>& runs) {
    std::uint64_t folded = 0;
    for (const FoldRun& each : runs) {
        FoldOrder::fold(each, [&](std::span<const std::byte> partial, std::uint64_t index) {
            run.fold(partial, index);
            run.count_done();
            ++folded;
        });
    }
    return folded;
}

UserCodeDone perform(UserCodeWork& work) {
    UserCodeDone done;
    done.job = work.job;
    done.split = work.runs.empty();
    if (work.run->finished())
        return done;  // failed or cancelled meanwhile: the I/O thread forgot it
    try {
        if (!done.split) {
            done.folded = fold_runs(*work.run, work.runs);
            return done;
        }
        const SplitRequest& request = work.split;
        const auto until = std::chrono::steady_clock::now() + split_slice;
        std::uint64_t made = 0;
        std::size_t bytes = 0;
        // One batch at least; more while the request allows and the slice lasts.
        do {
            SplitBatch batch;
            const auto left =
                request.remaining
                    ? std::optional(*request.remaining - std::min(*request.remaining, made))
                    : std::nullopt;
            const std::size_t size = BatchSizer::tail_cut(
                static_cast<std::size_t>(std::min(request.per_batch, request.subtasks - made)),
                left, request.workers);
            batch.count = split_batch(*work.run, size, batch.bytes, done.exhausted, until);
            if (batch.count == 0)
                break;
            made += batch.count;
            bytes += batch.bytes.size();
            done.batches.push_back(std::move(batch));
        } while (!done.exhausted && made < request.subtasks && bytes < request.bytes &&
                 std::chrono::steady_clock::now() < until);
    } catch (...) {
        done.error = std::current_exception();
    }
    return done;
}

struct UserCode::Pool {
    explicit Pool(std::shared_ptr<Mailbox> box) : mailbox(std::move(box)) {}

    std::shared_ptr<Mailbox> mailbox;
    mutable std::mutex mutex;
    std::condition_variable ready_or_stop;
    std::condition_variable all_exited;
    // Strands with work and no thread, and since when.
    std::deque<std::pair<std::shared_ptr<Strand>, Clock::time_point>> ready;
    std::size_t threads = 0;  // started, not exited
    std::size_t waiting = 0;  // of those, waiting for a ready strand
    bool stopping = false;
};

std::size_t UserCode::default_max_threads() {
    return std::max<std::size_t>(16, std::size_t{4} * std::thread::hardware_concurrency());
}

UserCode::UserCode(std::shared_ptr<Mailbox> mailbox, std::size_t max_threads)
    : pool_(std::make_shared<Pool>(std::move(mailbox))),
      max_threads_(std::max<std::size_t>(1, max_threads)) {}

UserCode::~UserCode() {
    std::unique_lock lock(pool_->mutex);
    pool_->stopping = true;
    pool_->ready.clear();
    pool_->ready_or_stop.notify_all();
    pool_->all_exited.wait(lock, [&] { return pool_->threads == 0; });
}

void UserCode::post(const std::shared_ptr<Strand>& strand, UserCodeWork work,
                    Clock::time_point now) {
    std::lock_guard lock(pool_->mutex);
    strand->work.push_back(std::move(work));
    if (strand->queued)
        return;  // its thread takes it in turn
    strand->queued = true;
    pool_->ready.emplace_back(strand, now);
    // Each waiting thread takes one ready strand; the others wait for a busy one, or for
    // unstick().
    if (pool_->ready.size() <= pool_->waiting)
        pool_->ready_or_stop.notify_one();
    else if (pool_->threads == 0)
        start_thread();
}

UserCode::Clock::time_point UserCode::stuck_at() const {
    std::lock_guard lock(pool_->mutex);
    // The waiting threads take the first strands.
    if (pool_->ready.size() <= pool_->waiting || pool_->threads >= max_threads_)
        return Clock::time_point::max();
    return pool_->ready[pool_->waiting].second + patience;
}

void UserCode::unstick(Clock::time_point now) {
    std::lock_guard lock(pool_->mutex);
    // The waiting threads take the first strands; the others, in the order they came, get a
    // thread each once they have waited long enough.
    const std::size_t waiting = pool_->waiting;
    for (std::size_t i = waiting; i < pool_->ready.size(); ++i) {
        if (pool_->ready[i].second + patience > now || pool_->threads >= max_threads_)
            break;
        start_thread();
    }
}

void UserCode::start_thread() {
    ++pool_->threads;
    ++pool_->waiting;  // it takes a ready strand first
    try {
        std::thread([pool = pool_] { serve(pool); }).detach();
    } catch (...) {
        // No thread to be had (a limit on threads): the counts stay true, so that the
        // destructor does not wait for it. With a thread left, the strand waits its turn.
        --pool_->threads;
        --pool_->waiting;
        if (pool_->threads == 0)
            throw;
    }
}

std::size_t UserCode::threads() const {
    std::lock_guard lock(pool_->mutex);
    return pool_->threads;
}

/// A thread's life: takes ready strands and runs their work until idle for idle_time.
void UserCode::serve(const std::shared_ptr<Pool>& pool) {
    name_this_thread("dtask-usercode");
    std::unique_lock lock(pool->mutex);
    --pool->waiting;  // counted as waiting from its start
    while (!pool->stopping) {
        if (pool->ready.empty()) {
            ++pool->waiting;
            pool->ready_or_stop.wait_for(lock, idle_time,
                                         [&] { return pool->stopping || !pool->ready.empty(); });
            --pool->waiting;
            if (pool->ready.empty())
                break;  // idle long enough, or stopping
            continue;
        }
        std::shared_ptr<Strand> strand = std::move(pool->ready.front().first);
        pool->ready.pop_front();
        while (!strand->work.empty() && !pool->stopping) {
            UserCodeWork work = std::move(strand->work.front());
            strand->work.pop_front();
            lock.unlock();
            UserCodeDone done = perform(work);
            work = {};  // the partials are freed before the I/O thread hears of it
            pool->mailbox->post_done(std::move(done));
            lock.lock();
        }
        strand->queued = false;
    }
    --pool->threads;
    pool->all_exited.notify_all();
}

}  // namespace dtask::detail
