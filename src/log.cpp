#include "log.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace dtask {

namespace {

/// The threshold: messages of a level at or below it (most important first) are written;
/// `quiet` writes none.
constexpr int quiet = -1;

std::optional<int> parse_level(std::string_view name) {
    if (name == "quiet" || name == "off" || name == "none")
        return quiet;
    for (const LogLevel level :
         {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
        if (name == log_level_name(level))
            return static_cast<int>(level);
    }
    if (name == "warning")
        return static_cast<int>(LogLevel::warn);
    return std::nullopt;
}

void dispatch(LogLevel level, std::string_view component, std::string_view subject,
              std::string_view text);

struct Threshold {
    std::atomic<int> value{static_cast<int>(LogLevel::warn)};
    bool from_environment = false;  // DTASK_LOG set it: a program's default does not
    std::string invalid;            // DTASK_LOG's value if it names no level
    std::atomic<bool> warned{false};
};

Threshold& threshold() {
    static Threshold* const read = [] {
        auto* t = new Threshold;  // never destroyed: threads may log during exit
        if (const char* setting = std::getenv("DTASK_LOG"); setting != nullptr && *setting) {
            if (const auto level = parse_level(setting)) {
                t->value = *level;
                t->from_environment = true;
            } else {
                t->invalid = setting;
            }
        }
        return t;
    }();
    if (!read->invalid.empty() && !read->warned.exchange(true)) {
        dispatch(LogLevel::warn, "log", {},
                 "DTASK_LOG='" + read->invalid +
                     "' names no log level (error, warn, info, debug, or quiet); it is ignored");
    }
    return *read;
}

/// The handler, and the calls to it running, so that replacing it can wait for them.
struct Sink {
    std::mutex mutex;
    std::condition_variable idle;
    std::shared_ptr<const LogHandler> handler;
    std::size_t calls = 0;
    std::mutex call_mutex;    // one call of the handler at a time
    std::mutex stderr_mutex;  // one line at a time
};

Sink& sink() {
    static Sink* const sink = new Sink;  // never destroyed: threads may log during exit
    return *sink;
}

thread_local bool in_handler = false;

void write_stderr(LogLevel level, std::string_view component, std::string_view subject,
                  std::string_view text) {
    std::string line = "dtask ";
    line.append(component);
    if (!subject.empty())
        line.append(" ").append(subject);
    line.append(": ");
    if (level != LogLevel::warn)  // warnings as they always were; others say their level
        line.append(log_level_name(level)).append(": ");
    line.append(text).append("\n");
    Sink& s = sink();
    std::lock_guard lock(s.stderr_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

void dispatch(LogLevel level, std::string_view component, std::string_view subject,
              std::string_view text) {
    Sink& s = sink();
    std::shared_ptr<const LogHandler> handler;
    if (!in_handler) {
        std::lock_guard lock(s.mutex);
        handler = s.handler;
        if (handler)
            ++s.calls;
    }
    if (!handler)
        return write_stderr(level, component, subject, text);
    std::string joined;
    if (!subject.empty()) {
        joined.append(subject).append(": ").append(text);
        text = joined;
    }
    {
        std::lock_guard one_at_a_time(s.call_mutex);
        in_handler = true;
        try {
            (*handler)(level, component, text);
        } catch (...) {
            // A host's handler that throws loses its message, never the thread that logged.
        }
        in_handler = false;
    }
    {
        std::lock_guard lock(s.mutex);
        --s.calls;
    }
    s.idle.notify_all();
}

}  // namespace

std::string_view log_level_name(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::error:
            return "error";
        case LogLevel::warn:
            return "warn";
        case LogLevel::info:
            return "info";
        case LogLevel::debug:
            return "debug";
    }
    return "unknown";
}

void set_log_handler(LogHandler handler) {
    Sink& s = sink();
    auto next = handler ? std::make_shared<const LogHandler>(std::move(handler)) : nullptr;
    std::unique_lock lock(s.mutex);
    s.handler = std::move(next);
    if (!in_handler)
        s.idle.wait(lock, [&] { return s.calls == 0; });
}

void set_log_level(LogLevel level) noexcept {
    threshold().value.store(static_cast<int>(level), std::memory_order_relaxed);
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
    return static_cast<int>(level) <= threshold().value.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view component, std::string_view subject,
         std::string_view text) {
    if (log_enabled(level))
        dispatch(level, component, subject, text);
}

void set_default_log_level(LogLevel level) noexcept {
    Threshold& t = threshold();
    if (!t.from_environment)
        t.value.store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace detail

}  // namespace dtask
