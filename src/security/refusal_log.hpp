#pragma once
// Which refused handshakes the broker logs: the first from each address, then none from it
// for a minute, so that a peer retrying with a wrong token (or a flood of them) cannot fill
// the log. The table is bounded; addresses past the bound are counted, and the count is
// logged with the next line that is.

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

namespace dtask::detail {

class RefusalLog {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds quiet{60};
    static constexpr std::size_t max_addresses = 1024;

    /// Whether to log a refusal of `address` at `now`.
    bool should_log(const std::string& address, Clock::time_point now) {
        if (auto it = last_.find(address); it != last_.end()) {
            if (now - it->second < quiet)
                return not_logged();
            it->second = now;
            return true;
        }
        if (last_.size() >= max_addresses)
            std::erase_if(last_, [&](const auto& entry) { return now - entry.second >= quiet; });
        if (last_.size() >= max_addresses)
            return not_logged();
        last_.emplace(address, now);
        return true;
    }
    /// Refusals not logged since the last one that was; resets the count.
    std::size_t take_unlogged() noexcept { return std::exchange(unlogged_, 0); }

private:
    bool not_logged() noexcept {
        ++unlogged_;
        return false;
    }

    std::unordered_map<std::string, Clock::time_point> last_;
    std::size_t unlogged_ = 0;
};

}  // namespace dtask::detail
