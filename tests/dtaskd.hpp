#pragma once
// A dtaskd started by a test, as a user runs it: on a free loopback port, with a keys
// directory of its own (or a given one), its output read line by line, and its join tokens
// for the workers and clients the test starts (in DTASK_TOKEN, as users give them).

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <dtask/dtask.hpp>

#include "support.hpp"

namespace test_support {

/// What a short dtaskd command (tokens, rotate, --help) wrote and how it ended.
struct CommandResult {
    int status = -1;     // exit status; -1 if it did not exit normally
    std::string output;  // stdout and stderr
};

/// Everything a process writes to its pipe until it closes it (bounded).
inline std::string all_output(Process& process,
                              std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (auto line = process.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
               deadline - std::chrono::steady_clock::now())))
        text += *line + "\n";
    return text;
}

/// Runs dtaskd with `args` to its end (at most 60 s).
inline CommandResult run_dtaskd(const std::vector<std::string>& args,
                                const std::vector<std::string>& environment = {}) {
    Process process(DTASK_TEST_DTASKD, args, "|&", environment);
    CommandResult result;
    result.output = all_output(process, std::chrono::seconds(60));
    const auto status = process.wait_exit(std::chrono::seconds(10));
    REQUIRE_MESSAGE(status.has_value(), "dtaskd did not exit; it said:\n" << result.output);
    result.status = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return result;
}

/// The token on the line "ROLE token: TOKEN" of `output`; empty if there is none.
inline std::string token_in(const std::string& output, const std::string& role) {
    const std::string label = role + " token: ";
    const auto at = output.find(label);
    if (at == std::string::npos)
        return {};
    const auto start = at + label.size();
    return output.substr(start, output.find('\n', start) - start);
}

class Dtaskd {
public:
    /// Starts dtaskd with `args`, listening on `listen`, with keys in `keys` (empty: a fresh
    /// temporary directory), and waits until it listens. With --insecure-tcp among `args`,
    /// without keys. A `wrapper` command (prlimit ...) runs dtaskd if given.
    explicit Dtaskd(std::vector<std::string> args = {},
                    const std::string& listen = "tcp://127.0.0.1:*", std::string keys = {},
                    const std::vector<std::string>& environment = {},
                    std::vector<std::string> wrapper = {}) {
        secure_ = std::find(args.begin(), args.end(), "--insecure-tcp") == args.end();
        if (secure_ && keys.empty()) {
            own_keys_.emplace("dtaskd-keys");
            keys = own_keys_->path();
        }
        keys_ = keys;
        // 3 s of silence before a peer is dropped, unless the test chooses: at dtaskd's 1.25 s,
        // a healthy client whose threads waited for a core (TSan, a loaded machine) was once
        // taken for dead in a test about something else.
        const auto has = [&](const char* option) {
            return std::find(args.begin(), args.end(), option) != args.end();
        };
        if (!has("--liveness") && !has("--heartbeat"))
            args.insert(args.end(), {"--liveness", "12"});
        args.insert(args.begin(), {"--listen", listen});
        if (secure_)
            args.insert(args.end(), {"--keys", keys_});
        std::string program = DTASK_TEST_DTASKD;
        if (!wrapper.empty()) {
            args.insert(args.begin(), program);
            args.insert(args.begin(), wrapper.begin() + 1, wrapper.end());
            program = wrapper.front();
        }
        process_ = std::make_unique<Process>(program, args, "|&", environment);
        const std::string prefix = "dtaskd: listening on ";
        while (endpoint_.empty()) {
            const auto line = process_->read_line(std::chrono::seconds(30));
            REQUIRE_MESSAGE(line.has_value(), "dtaskd did not start; it said:\n" << before_);
            if (line->starts_with(prefix))
                endpoint_ = line->substr(prefix.size());
            else
                before_ += *line + "\n";
        }
        if (secure_) {
            const auto line = process_->read_line(std::chrono::seconds(30));
            REQUIRE_MESSAGE(line.has_value(), "dtaskd did not say where its tokens are");
            REQUIRE_MESSAGE(line->starts_with("dtaskd: join tokens in " + keys_ + "/worker.token"),
                            *line);
        }
    }

    const std::string& endpoint() const { return endpoint_; }
    Process& process() { return *process_; }
    /// What dtaskd wrote before its first 'listening on' line (warnings).
    const std::string& before_listening() const { return before_; }
    const std::string& keys() const { return keys_; }

    /// What dtaskd wrote, up to the first line that holds the text looked for.
    struct Transcript {
        bool found = false;
        std::string text;
    };
    /// Reads dtaskd's output until a line holds `text`, waiting at most `timeout` for each.
    Transcript read_until(const std::string& text, std::chrono::milliseconds timeout) {
        Transcript out;
        while (const auto line = process_->read_line(timeout)) {
            out.text += *line + "\n";
            if (line->find(text) != std::string::npos) {
                out.found = true;
                break;
            }
        }
        return out;
    }

    /// The current join token of "worker" or "client", from its file as a user would read it.
    std::string token(const std::string& role) const {
        std::string text = read_file(keys_ + "/" + role + ".token");
        while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
            text.pop_back();
        return text;
    }
    std::vector<std::string> worker_environment() const {
        return {"DTASK_TOKEN=" + token("worker")};
    }
    std::vector<std::string> client_environment() const {
        return {"DTASK_TOKEN=" + token("client")};
    }
    dtask::ClientOptions client_options() const {
        dtask::ClientOptions options;
        options.token = token("client");
        return options;
    }
    /// 'dtaskd rotate ROLE' on this dtaskd's keys; the new token.
    std::string rotate(const std::string& role) const {
        const auto result = run_dtaskd({"rotate", role, "--keys", keys_});
        REQUIRE_MESSAGE(result.status == 0, result.output);
        const std::string token = token_in(result.output, role);
        REQUIRE_MESSAGE(!token.empty(), result.output);
        return token;
    }

private:
    std::optional<TempDir> own_keys_;  // declared first: removed after dtaskd has stopped
    std::string keys_;
    bool secure_ = true;
    std::unique_ptr<Process> process_;
    std::string endpoint_;
    std::string before_;
};

}  // namespace test_support
