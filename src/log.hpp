#pragma once
// Messages for a person: warnings that are not errors of any one call (a worker refused, a
// worker lost), and what happens (a worker joined, a job ended), at a level
// (dtask/log.hpp), to the host's handler or to stderr with a "dtask" prefix. A warning that
// may repeat fast (a peer's flood, a failing accept) goes through a RepeatedWarning, so
// that it cannot fill the log.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <dtask/log.hpp>

namespace dtask::detail {

/// Whether a message of `level` would be written: test it before building a costly one.
bool log_enabled(LogLevel level) noexcept;
/// Writes `text` from `component` ("broker", "worker"...), about `subject` if not empty (a
/// worker's name), if `level` is at or above the threshold.
void log(LogLevel level, std::string_view component, std::string_view subject,
         std::string_view text);
inline void log_warning(std::string_view component, std::string_view text) {
    log(LogLevel::warn, component, {}, text);
}
inline void log_warning(std::string_view component, std::string_view subject,
                        std::string_view text) {
    log(LogLevel::warn, component, subject, text);
}
inline void log_info(std::string_view component, std::string_view text) {
    log(LogLevel::info, component, {}, text);
}
/// The threshold of a program (dtaskd: info) when DTASK_LOG does not set one.
void set_default_log_level(LogLevel level) noexcept;

/// Which repeats of one kind of warning are written: the first, then at most one per
/// `quiet`; the ones skipped are counted, and told with the next one written.
class RepeatedWarning {
public:
    using Clock = std::chrono::steady_clock;

    explicit RepeatedWarning(Clock::duration quiet) noexcept : quiet_(quiet) {}

    /// Whether to write a warning of this kind at `now`: nullopt to skip it, else what to
    /// append to it (" (and N more like it)" after skipped ones, or nothing).
    std::optional<std::string> admit(Clock::time_point now) {
        if (written_ && now - last_ < quiet_) {
            ++skipped_;
            return std::nullopt;
        }
        written_ = true;
        last_ = now;
        const std::size_t skipped = skipped_;
        skipped_ = 0;
        if (skipped == 0)
            return std::string();
        return " (and " + std::to_string(skipped) + " more like it since the last one logged)";
    }
    /// Warnings skipped since the last one written.
    std::size_t skipped() const noexcept { return skipped_; }

private:
    Clock::duration quiet_;
    Clock::time_point last_{};
    bool written_ = false;
    std::size_t skipped_ = 0;
};

}  // namespace dtask::detail
