#include <cstring>
#include <exception>
#include <system_error>

#include <dtask/detail/checkpoint.hpp>
#include <dtask/error.hpp>

#include "client/checkpoint_store.hpp"
#include "client/save_schedule.hpp"
#include "log.hpp"
#include "thread_name.hpp"

namespace dtask::detail {

namespace {

std::uint64_t rotate(std::uint64_t x, int bits) {
    return (x << bits) | (x >> (64 - bits));
}

std::uint64_t finalize(std::uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

std::string content_hash(std::string_view bytes) {
    // Two lanes of 64 bits, each a multiply-rotate over 8-byte words, mixed at the end.
    std::uint64_t a = 0x9e3779b97f4a7c15ULL;
    std::uint64_t b = 0xc2b2ae3d27d4eb4fULL ^ bytes.size();
    std::size_t at = 0;
    auto absorb = [&](std::uint64_t word) {
        a = rotate(a ^ (word * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
        b = rotate(b ^ (word * 0x52dce729da3ed7d1ULL), 27) * 0x9e3779b97f4a7c15ULL + a;
    };
    for (; at + 8 <= bytes.size(); at += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, bytes.data() + at, 8);
        absorb(word);
    }
    std::uint64_t tail = 0;
    if (at < bytes.size())
        std::memcpy(&tail, bytes.data() + at, bytes.size() - at);
    absorb(tail ^ (std::uint64_t{bytes.size() - at} << 56));
    a = finalize(a ^ bytes.size());
    b = finalize(b ^ a);
    char hex[33];
    static constexpr char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) {
        hex[i] = digits[(a >> (60 - 4 * i)) & 0xf];
        hex[16 + i] = digits[(b >> (60 - 4 * i)) & 0xf];
    }
    return std::string(hex, 32) + " (" + std::to_string(bytes.size()) + " bytes)";
}

Checkpoint::Checkpoint(std::string path, const Fields& identity, const Fields& kept,
                       std::chrono::milliseconds interval)
    : path_(std::move(path)),
      store_(std::make_unique<CheckpointStore>(path_)),
      kept_(kept),
      interval_(interval) {
    const auto stored = store_->identity();
    fresh_ = stored.empty();
    if (fresh_) {
        Fields fields = identity;
        fields.insert(fields.end(), kept.begin(), kept.end());
        // A progress row without an identity (a run that died while making the file) is
        // not trusted: dropped in the same transaction.
        store_->add_identity(fields, true);
        return;
    }
    for (const auto& [key, value] : identity)
        confirm(key, value);
    for (auto& [key, value] : kept_) {
        if (auto it = stored.find(key); it != stored.end())
            value = it->second;
    }
    if (auto progress = store_->progress()) {
        try {
            resumed_folded_ = FoldedSet::decode(progress->folded);
        } catch (const Error& e) {
            throw Error("checkpoint '" + path_ + "' is damaged: " + e.what());
        }
        if (resumed_folded_.count() != progress->folded_count)
            throw Error("checkpoint '" + path_ + "' is damaged: its folded count " +
                        std::to_string(progress->folded_count) +
                        " is not that of its folded set (" +
                        std::to_string(resumed_folded_.count()) + ")");
        resumed_accumulator_ = std::move(progress->accumulator);
        resumed_ = true;
        folded_ = resumed_folded_;
    }
}

Checkpoint::~Checkpoint() {
    abandon();
}

void Checkpoint::abandon() noexcept {
    if (folding_thread_.load() == std::this_thread::get_id()) {
        // A reduce that cancelled its own job: this thread holds the fold lock, which the
        // writer may be waiting for. fold() comes back here once the lock is released.
        abandon_after_fold_ = true;
        return;
    }
    stop_writer();
    {
        // Under the fold lock: a remove() that comes meanwhile waits for the snapshot.
        std::unique_lock lock(mutex_);
        const bool write = !closed_ && !spoiled_ && snapshot_ && failure_.empty() &&
                           SaveSchedule::due_at_end(unsaved_);
        closed_ = true;
        if (write && !save(lock))
            log_warning("client", "checkpoint '" + path_ + "': " + failure_);
    }
    std::lock_guard store_lock(store_mutex_);
    store_.reset();
}

std::string Checkpoint::kept(const std::string& key) const {
    for (const auto& [name, value] : kept_) {
        if (name == key)
            return value;
    }
    return {};
}

void Checkpoint::confirm(const std::string& key, const std::string& value) {
    std::lock_guard lock(store_mutex_);
    if (fresh_) {
        store_->add_identity({{key, value}});
        return;
    }
    const auto stored = store_->identity();
    const auto it = stored.find(key);
    if (it != stored.end() && it->second == value)
        return;
    throw Error("checkpoint '" + path_ + "' is of another run and was left as it is: its " + key +
                (it == stored.end() ? " is not recorded" : " is '" + it->second + "'") +
                ", this run's is '" + value +
                "'; remove the file, or name another, to start this run afresh");
}

void Checkpoint::start(Snapshot snapshot) {
    snapshot_ = std::move(snapshot);
    try {
        writer_ = std::thread([this] { write_loop(); });
    } catch (const std::system_error& e) {
        throw Error("checkpoint '" + path_ + "': no thread could be started to write it (" +
                    e.what() + "): raise the limit on threads (ulimit -u)");
    }
}

void Checkpoint::write_loop() {
    name_this_thread("dtask-checkpoint");
    SaveSchedule schedule(interval_, SaveSchedule::Clock::now());
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (wake_.wait_until(lock, schedule.next_look(), [&] { return stopping_; }))
            break;
        const auto now = SaveSchedule::Clock::now();
        const bool due = schedule.due(now, unsaved_) && !spoiled_;
        schedule.looked(now);
        if (due && !save(lock))
            return;  // the next fold throws failure_
    }
}

bool Checkpoint::save(std::unique_lock<std::mutex>& lock) {
    CheckpointStore::Progress progress;
    try {
        snapshot_(progress.accumulator);
    } catch (const std::exception& e) {
        failure_ = std::string("the result so far could not be serialized: ") + e.what();
        return false;
    }
    progress.folded = folded_.encode();
    progress.folded_count = folded_.count();
    unsaved_ = 0;
    lock.unlock();  // folds go on while the file is written
    std::string failed;
    try {
        std::lock_guard store_lock(store_mutex_);
        if (store_)
            store_->save(progress);
    } catch (const std::exception& e) {
        failed = e.what();
    }
    lock.lock();
    if (failed.empty())
        return true;
    failure_ = failed;
    return false;
}

void Checkpoint::stop_writer() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    std::lock_guard lock(writer_mutex_);
    if (writer_.joinable())
        writer_.join();
}

void Checkpoint::remove() noexcept {
    stop_writer();
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    std::lock_guard lock(store_mutex_);
    if (!store_)
        return;
    try {
        store_->remove();
    } catch (...) {
    }
    store_.reset();
}

void Checkpoint::throw_failure() const {
    throw Error("checkpoint '" + path_ + "' could not be written, so the job stopped: " + failure_);
}

}  // namespace dtask::detail
