// Backup copies: which running batch gets a copy, and which copies lose when one finishes.

#include "broker/backups.hpp"

#include "broker/jobs.hpp"
#include "broker/peers.hpp"

namespace dtask::detail {

using Clock = std::chrono::steady_clock;

bool may_back_up(const BrokerJob& job) {
    return job.settings.backup_tasks && job.backups.split_done && job.queue.empty() &&
           job.recovery.quarantine.empty() && job.backups.runs > 0;
}

bool holds_spoiled(const BrokerJob& job, const HeldBatch& batch) {
    const auto& spoiled = job.recovery.spoiled;
    return std::any_of(spoiled.begin(), spoiled.end(), [&](const auto& entry) {
        return entry.first >= batch.first && entry.first < batch.end();
    });
}

bool may_take_backup(const WorkerPeer& idle, Peers& peers, Jobs& jobs) {
    if (idle.recovery.isolated || idle.recovery.reserved)
        return false;
    auto& all = jobs.all();
    if (all.size() <= peers.workers().size())
        return std::any_of(all.begin(), all.end(),
                           [](const auto& entry) { return may_back_up(entry.second); });
    // A copy is of a batch another worker runs (choose_backup): its oldest.
    return std::any_of(peers.workers().begin(), peers.workers().end(), [&](const auto& entry) {
        if (entry.second.credits.held.empty())
            return false;
        const BrokerJob* job = jobs.find(entry.second.credits.held.front().job);
        return job != nullptr && may_back_up(*job);
    });
}

Backup choose_backup(WorkerPeer& idle, Peers& peers, Jobs& jobs, Clock::time_point now) {
    auto& all = jobs.all();
    Backup chosen;
    Clock::duration longest{};
    for (auto& [id, other] : peers.workers()) {
        if (id == idle.id || other.credits.held.empty() || other.recovery.isolated)
            continue;
        // A worker runs its batches in the order they were sent: the oldest is the one
        // running, since its previous batch finished (or since it was sent, if later).
        const HeldBatch& running = other.credits.held.front();
        auto job = all.find(running.job);
        if (job == all.end())
            continue;
        BrokerJob& candidate = job->second;
        if (!may_back_up(candidate) || candidate.backups.copies.contains(running.first) ||
            holds_spoiled(candidate, running) || !serves(idle.serving, candidate))
            continue;
        const auto age = now - std::max(running.sent, other.credits.last_result_at);
        const auto expected = candidate.backups.run_time /
                              static_cast<Clock::rep>(candidate.backups.runs) *
                              static_cast<Clock::rep>(running.count);
        if (age < backup_min_age || age < 2 * expected || age <= longest)
            continue;
        chosen = {&other, &candidate};
        longest = age;
    }
    return chosen;
}

void record_copy(const Backup& backup, const WorkerPeer& idle) {
    const HeldBatch& running = backup.holder->credits.held.front();
    backup.job->backups.copies[running.first] = Copies{running.count, {backup.holder->id, idle.id}};
}

std::vector<std::string> settle_copies(JobBackups& job, std::uint64_t first, std::uint64_t count,
                                       const std::string& winner) {
    auto it = job.copies.find(first);
    if (it == job.copies.end() || !it->second.of(count, winner))
        return {};  // no copies, or of another batch that starts at the same index
    auto holders = std::move(it->second.holders);
    job.copies.erase(it);
    std::erase(holders, winner);
    return holders;
}

bool other_copy_runs(JobBackups& job, const HeldBatch& batch, const std::string& holder) {
    auto it = job.copies.find(batch.first);
    if (it == job.copies.end() || !it->second.of(batch.count, holder))
        return false;  // no copies, or of another batch that starts at the same index
    std::erase(it->second.holders, holder);
    const bool others = !it->second.holders.empty();
    if (it->second.holders.size() <= 1)
        job.copies.erase(it);  // one copy left: an ordinary batch again
    return others;
}

}  // namespace dtask::detail
