#pragma once
// A progress bar for the examples: a job's done/total, rate and time left, redrawn in place
// on stderr (with \r) at most five times a second while stderr is a terminal, and nothing at
// all otherwise, so that piped or redirected output is the same as without it.
//
//   ProgressBar bar("sum_squares");
//   total = cluster.run(job, input, bar.attach(run_options));
//   bar.finish();  // ends the line, if one was drawn

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include <unistd.h>

#include <dtask/dtask.hpp>

class ProgressBar {
public:
    using Clock = std::chrono::steady_clock;

    explicit ProgressBar(std::string label)
        : label_(std::move(label)), on_terminal_(isatty(STDERR_FILENO) == 1) {}
    ~ProgressBar() { finish(); }
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    /// `options` with the bar as their progress callback, or unchanged off a terminal.
    dtask::RunOptions attach(dtask::RunOptions options) {
        if (on_terminal_) {
            options.progress_interval = redraw_interval;
            options.on_progress = [this](const dtask::Progress& progress) { show(progress); };
        }
        return options;
    }

    /// Draws steps the program counts itself (iterations): `done` of `total` since the bar was
    /// made, at most five times a second but for the last.
    void step(std::uint64_t done, std::uint64_t total) {
        dtask::Progress progress;
        progress.done = done;
        progress.total = total;
        progress.total_known = true;
        progress.ended = done >= total;
        const auto elapsed = Clock::now() - start_;
        progress.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
        const double seconds = std::chrono::duration<double>(elapsed).count();
        progress.rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        if (done > 0 && progress.rate > 0)
            progress.eta = std::chrono::milliseconds(static_cast<std::int64_t>(
                static_cast<double>(total - std::min(done, total)) / progress.rate * 1000));
        bool due = progress.ended;
        {
            std::lock_guard lock(mutex_);
            due = due || Clock::now() - last_drawn_ >= redraw_interval;
        }
        if (due)
            show(progress);
    }

    /// Draws `progress` over the line drawn before.
    void show(const dtask::Progress& progress) {
        if (!on_terminal_)
            return;
        std::string line = "\r" + label_ + " ";
        if (progress.total_known && progress.total > 0) {
            const double fraction =
                static_cast<double>(std::min(progress.done, progress.total)) / progress.total;
            const auto filled = static_cast<std::size_t>(fraction * bar_width);
            line += "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "] ";
            line += std::to_string(static_cast<int>(fraction * 100)) + "% ";
            line += std::to_string(progress.done) + "/" + std::to_string(progress.total);
        } else {
            line += std::to_string(progress.done) + " done";  // a generator: no total yet
        }
        line += "  " + figure(progress.rate) + "/s";
        if (progress.eta && !progress.ended)
            line += "  ETA " + duration(*progress.eta);
        else
            line += "  " + duration(progress.elapsed);
        std::lock_guard lock(mutex_);
        // Spaces over what a longer line before left.
        const std::size_t length = line.size();
        line.append(width_ > length ? width_ - length : 0, ' ');
        width_ = length;
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
        drawn_ = true;
        last_drawn_ = Clock::now();
    }

    /// Ends the bar's line, if one was drawn, so that what follows starts on its own.
    void finish() {
        std::lock_guard lock(mutex_);
        if (drawn_)
            std::fputc('\n', stderr);
        drawn_ = false;
        width_ = 0;
    }

private:
    static constexpr auto redraw_interval = std::chrono::milliseconds(200);
    static constexpr std::size_t bar_width = 30;

    /// 1234567 as "1.23M".
    static std::string figure(double value) {
        const char* suffix = "";
        for (const char* next : {"k", "M", "G"}) {
            if (value < 1000)
                break;
            value /= 1000;
            suffix = next;
        }
        char text[32];
        std::snprintf(text, sizeof text, value < 10 && *suffix ? "%.2f%s" : "%.0f%s", value,
                      suffix);
        return text;
    }
    /// 83 s as "1m23s".
    static std::string duration(std::chrono::milliseconds time) {
        const auto seconds = time.count() / 1000;
        if (seconds < 60) {
            char text[32];
            std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(time.count()) / 1000);
            return text;
        }
        return std::to_string(seconds / 60) + "m" + std::to_string(seconds % 60) + "s";
    }

    std::string label_;
    bool on_terminal_;
    Clock::time_point start_ = Clock::now();
    Clock::time_point last_drawn_{};
    std::mutex mutex_;
    bool drawn_ = false;
    std::size_t width_ = 0;
};
