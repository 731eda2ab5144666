#pragma once
// The command line of the examples: flags and their values, checked, a wrong one answered
// with a message that names it and exit status 2; and where the jobs run (--workers, --connect).
//
//   CommandLine args("monte_carlo_pi", argc, argv);
//   while (args.next()) {
//       if (args.is("--points"))
//           points = args.number(1);
//       else if (!args.common(where, print_help))  // --help, --version, --workers, --connect
//           args.unknown();
//   }

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <dtask/dtask.hpp>

#include "example_version.hpp"

/// Where an example runs its jobs: a Cluster in this process with local workers, or the
/// broker at `connect` (dtaskd, or a program that listens) whose workers run this binary.
struct WhereToRun {
    int workers = -1;  // local worker processes; -1: one per core
    std::optional<std::string> connect;

    /// Returns `use(submitter)`, with a Client of the broker at `connect` (its token from
    /// DTASK_TOKEN or DTASK_TOKEN_FILE), or else a Cluster whose local workers are all up,
    /// so that timings count each of them from the start.
    template <class Use>
    auto with_submitter(Use&& use) const {
        if (connect) {
            dtask::Client client(*connect);
            return use(client);
        }
        dtask::ClusterOptions options;
        options.local_workers = workers;
        dtask::Cluster cluster(options);
        cluster.wait_for_workers(workers > 0 ? static_cast<std::size_t>(workers)
                                             : std::max(1u, std::thread::hardware_concurrency()),
                                 std::chrono::seconds(30));
        return use(cluster);
    }
};

class CommandLine {
public:
    CommandLine(std::string_view program, int argc, char** argv)
        : program_(program), argc_(argc), argv_(argv) {}

    /// Moves to the next argument; false after the last.
    bool next() { return ++index_ < argc_; }
    std::string_view arg() const { return argv_[index_]; }
    bool is(std::string_view flag) const { return arg() == flag; }
    /// Whether another argument follows that is not a flag (for options that take a list).
    bool more_values() const {
        return index_ + 1 < argc_ && !std::string_view(argv_[index_ + 1]).starts_with("-");
    }

    /// The argument after the current flag: its value.
    std::string_view value() {
        if (index_ + 1 >= argc_)
            fail(std::string(arg()) + " needs a value");
        return argv_[++index_];
    }
    /// The value as a whole number from `least` to `most`.
    std::uint64_t number(std::uint64_t least = 0,
                         std::uint64_t most = std::numeric_limits<std::uint64_t>::max()) {
        const std::string flag(arg());
        const std::string_view text = value();
        std::uint64_t result = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), result);
        if (error != std::errc{} || end != text.data() + text.size())
            fail(flag + " takes a whole number, not '" + std::string(text) + "'");
        if (result < least || result > most)
            fail(flag + " takes a number from " + std::to_string(least) + " to " +
                 std::to_string(most) + ", not " + std::string(text));
        return result;
    }
    /// The value as a real number, like -0.75 or 1e-6.
    double real() {
        const std::string flag(arg());
        const std::string text(value());
        char* end = nullptr;
        const double result = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size())
            fail(flag + " takes a number, not '" + text + "'");
        return result;
    }

    /// --help, --version, --workers and --connect, which every example has: true if the
    /// current argument was one of them. --help and --version print and exit.
    template <class PrintHelp>
    bool common(WhereToRun& where, PrintHelp print_help) {
        if (is("--help") || is("-h")) {
            print_help();
            std::exit(0);
        } else if (is("--version")) {
            print_version(program_);
            std::exit(0);
        } else if (is("--workers")) {
            where.workers = static_cast<int>(number(1, 1024));
        } else if (is("--connect")) {
            where.connect = std::string(value());
        } else {
            return false;
        }
        return true;
    }

    [[noreturn]] void unknown() const { fail("unknown option '" + std::string(arg()) + "'"); }
    /// Says what was wrong and exits with status 2.
    [[noreturn]] void fail(const std::string& what) const {
        std::cerr << program_ << ": " << what << " (see --help)\n";
        std::exit(2);
    }

private:
    std::string_view program_;
    int argc_;
    char** argv_;
    int index_ = 0;
};

/// The lines of --help that every example shares.
inline constexpr const char* common_usage =
    "  --workers W        local worker processes (default: one per core)\n"
    "  --connect ENDPOINT submit to the broker at ENDPOINT (dtaskd) instead of starting\n"
    "                     one, with the client token in DTASK_TOKEN or DTASK_TOKEN_FILE\n"
    "  --help             this text\n"
    "  --version          the dtask release\n";
