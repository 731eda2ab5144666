#pragma once
// Fair share: jobs with queued batches take turns of priority × turn_quantum subtasks (deficit
// round robin). A batch larger than what is left of a turn is sent, and the excess is taken
// from the job's next turns, so that a job's share is counted in subtasks whatever its
// batches' sizes. A job whose queue empties leaves the rotation, and so does one that no
// connected worker offers (same name and signature): it is parked until a worker that offers
// it joins, so that jobs nobody serves cost the others nothing.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "broker/batches.hpp"
#include "wire/batch_sizer.hpp"

namespace dtask::detail {

/// Subtasks per turn of a job of priority 1 when jobs compete for workers.
constexpr std::int64_t turn_quantum = 64;

/// A job's part of the fair share.
struct Turns {
    unsigned priority = 1;
    std::int64_t left = 0;     // subtasks left of its turn; below 0: owed
    bool in_rotation = false;  // its id is in the rotation
    bool parked = false;       // no connected worker offers it: out of the rotation
};

/// Whose turn it is: the job chosen and the batch taken off the front of its queue.
template <class Job>
struct Turn {
    Job* job = nullptr;
    QueuedBatch batch;
};

class FairShare {
public:
    /// Puts a job with queued batches at the back of the rotation, unless it is in it.
    void join(std::uint64_t job_id, Turns& turns) {
        if (turns.in_rotation || turns.parked)
            return;
        rotation_.push_back(job_id);
        turns.in_rotation = true;
    }

    bool empty() const noexcept { return rotation_.empty(); }

    /// The next batch of the job whose turn it is, among those `serves(job)` accepts, taken
    /// off its queue and charged to its turn; no job if none has one. `find(id)` gives a job
    /// by id, or null for one erased since (its stale id is dropped here). A job's queue
    /// holds a member `queue` of QueuedBatch and `turns`.
    template <class Find, class Serves>
    auto next(Find&& find, Serves&& serves) -> Turn<std::remove_pointer_t<decltype(find(0))>> {
        // Each pass either takes a batch or gives a job in debt a turn's worth of credit, so
        // this ends; the bound is the most passes a largest batch can owe.
        const std::size_t passes = rotation_.size() * (BatchSizer::max_batch / turn_quantum + 2);
        for (std::size_t pass = 0; pass < passes && !rotation_.empty(); ++pass) {
            const std::uint64_t job_id = rotation_.front();
            rotation_.pop_front();
            auto* found = find(job_id);
            if (found == nullptr)
                continue;
            auto& job = *found;
            Turns& turns = job.turns;
            if (job.queue.empty()) {
                turns.in_rotation = false;
                turns.left = 0;
                continue;
            }
            if (!serves(job)) {
                if (offered(job.name, job.signature)) {
                    rotation_.push_back(job_id);  // another worker serves it
                } else {
                    parked_[offer_key(job.name, job.signature)].insert(job_id);
                    turns.in_rotation = false;
                    turns.parked = true;
                    ++parked_count_;
                }
                continue;
            }
            if (turns.left <= 0) {
                turns.left += static_cast<std::int64_t>(turns.priority) * turn_quantum;
                if (turns.left <= 0 && !rotation_.empty()) {
                    rotation_.push_back(job_id);  // still in debt: the others go first
                    continue;
                }
                turns.left = std::max<std::int64_t>(turns.left, 1);
            }
            Turn<std::remove_reference_t<decltype(job)>> turn{&job, job.queue.take_front()};
            turns.left -= static_cast<std::int64_t>(turn.batch.count);
            if (job.queue.empty()) {
                turns.in_rotation = false;
                turns.left = 0;
            } else if (turns.left > 0) {
                rotation_.push_front(job_id);  // its turn goes on
            } else {
                rotation_.push_back(job_id);
            }
            return turn;
        }
        return {};
    }

    /// A worker joined that offers these jobs (name -> signature): their parked jobs go back
    /// to the rotation. `find(id)` as for next().
    template <class Offers, class Find>
    void worker_joined(const Offers& offers, Find&& find) {
        for (const auto& [name, signature] : offers) {
            ++offered_[name][signature];
            auto parked = parked_.find(offer_key(name, signature));
            if (parked == parked_.end())
                continue;
            for (const std::uint64_t job_id : parked->second) {
                auto* job = find(job_id);
                if (job == nullptr)
                    continue;
                job->turns.parked = false;
                job->turns.in_rotation = true;
                rotation_.push_back(job_id);
            }
            parked_count_ -= parked->second.size();
            parked_.erase(parked);
        }
    }
    /// A worker that offered these jobs left. Their jobs leave the rotation when next() finds
    /// that no worker offers them any more.
    template <class Offers>
    void worker_left(const Offers& offers) {
        for (const auto& [name, signature] : offers) {
            auto by_name = offered_.find(name);
            if (by_name == offered_.end())
                continue;
            auto count = by_name->second.find(signature);
            if (count != by_name->second.end() && --count->second == 0)
                by_name->second.erase(count);
            if (by_name->second.empty())
                offered_.erase(by_name);
        }
    }
    /// Whether a connected worker offers jobs of this name and signature.
    bool offered(const std::string& name, const std::string& signature) const {
        auto by_name = offered_.find(name);
        return by_name != offered_.end() && by_name->second.contains(signature);
    }
    /// A job erased: if parked, it is forgotten here too.
    void forget(std::uint64_t job_id, const std::string& name, const std::string& signature,
                Turns& turns) {
        if (!turns.parked)
            return;
        auto parked = parked_.find(offer_key(name, signature));
        if (parked != parked_.end() && parked->second.erase(job_id) != 0) {
            --parked_count_;
            if (parked->second.empty())
                parked_.erase(parked);
        }
        turns.parked = false;
    }
    /// Jobs in the rotation (stale ids of erased jobs included), and parked.
    std::size_t in_rotation() const noexcept { return rotation_.size(); }
    std::size_t parked() const noexcept { return parked_count_; }

private:
    static std::string offer_key(const std::string& name, const std::string& signature) {
        std::string key;
        key.reserve(name.size() + 1 + signature.size());
        key.append(name).push_back('\0');
        key.append(signature);
        return key;
    }

    std::deque<std::uint64_t> rotation_;  // jobs with queued batches, served in turn
    // Workers connected that offer each job name and signature: name -> signature -> count.
    std::unordered_map<std::string, std::unordered_map<std::string, std::size_t>> offered_;
    // Jobs that no connected worker offers, by offer_key.
    std::unordered_map<std::string, std::unordered_set<std::uint64_t>> parked_;
    std::size_t parked_count_ = 0;
};

}  // namespace dtask::detail
