#pragma once
// Jobs the tests run, declared here and defined once in jobs.cpp: every program that links
// jobs.cpp, started again as a worker, has every one of them registered. Defined in one file,
// their map and reduce are compiled once, not once per test file.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <map>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <dtask/dtask.hpp>

#include "attempt_markers.hpp"

namespace test_jobs {

/// Σ x² for x in 1..n, one subtask per number: many tiny subtasks from a lazy range.
extern const dtask::Job<std::uint64_t> squares;

inline std::uint64_t serial_squares(std::uint64_t n) {
    std::uint64_t total = 0;
    for (std::uint64_t x = 1; x <= n; ++x)
        total += x * x;
    return total;
}

/// The text every subtask and partial result of `marked` carries: a test looks for it in
/// the bytes that crossed the network.
inline constexpr const char* marker = "dtask-plaintext-marker";

/// "marker-0;marker-1;...": subtasks and results that carry `marker` in clear.
extern const dtask::Job<std::string> marked;

/// Spins for about `units` × 1000 iterations: work of uneven length, so results come back
/// out of order on two workers.
inline std::uint64_t spin(std::uint64_t units) {
    volatile std::uint64_t sink = 0;
    for (std::uint64_t i = 0; i < units * 1000; ++i)
        sink = sink + i;
    return sink;
}

/// "0,1,2,...": string concatenation is not commutative, so only folding in subtask order
/// gives this string.
inline std::string concat_map(const std::uint64_t& i) {
    spin((i * 7919) % 97);
    return std::to_string(i) + ",";
}
inline std::vector<std::uint64_t> concat_split(const std::uint64_t& n, dtask::SplitHint) {
    std::vector<std::uint64_t> pieces(n);
    std::iota(pieces.begin(), pieces.end(), 0);
    return pieces;
}
inline std::string concat_reduce(std::string text, std::string part) {
    text += part;
    return text;
}

extern const dtask::Job<std::string> concat_ordered;
extern const dtask::Job<std::string> concat_unordered;

inline std::string expected_concat(std::uint64_t n) {
    std::string text;
    for (std::uint64_t i = 0; i < n; ++i)
        text += std::to_string(i) + ",";
    return text;
}

/// Throws std::invalid_argument on subtask 7.
extern const dtask::Job<std::uint64_t> throws_on_seven;

/// Which processes ran the subtasks.
extern const dtask::Job<std::set<std::int64_t>> worker_pids;

/// Job-wide data: a factor and a large table. Its loads are counted in each worker process,
/// so a test can see that it arrives once per job, not once per subtask.
inline std::atomic<std::uint64_t> scale_loads{0};
struct Scale {
    std::uint64_t factor = 1;
    std::vector<std::uint64_t> table;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(factor, table);
        if constexpr (Archive::is_loading::value)
            ++scale_loads;
    }
};
struct Scaled {
    std::uint64_t value = 0;
    std::uint64_t loads_in_this_worker = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value, loads_in_this_worker);
    }
};
struct ScaledTotal {
    std::uint64_t sum = 0;
    std::uint64_t most_loads = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(sum, most_loads);
    }
};
extern const dtask::Job<ScaledTotal> scaled;

/// A generator split that checks the window: it is never more than `window` pieces ahead of
/// what reduce has folded. Split and reduce both run on the host's I/O thread.
inline std::atomic<std::uint64_t> generated{0};
inline std::atomic<std::uint64_t> folded{0};
inline std::atomic<std::uint64_t> most_ahead{0};
extern const dtask::Job<std::uint64_t> windowed;

/// Each subtask takes about `units` of spinning: long enough to cancel a job mid-way.
extern const dtask::Job<std::uint64_t> slow;

/// How many subtasks each process ran; a worker started with DTASK_TEST_SLOW=1 in its
/// environment takes 400 times longer over each.
extern const dtask::Job<std::map<std::int64_t, std::uint64_t>> counted_by_worker;

/// Kills its own worker process on subtask 3: a poison pill.
extern const dtask::Job<std::uint64_t> kills_worker_on_three;

/// A split that takes about 4 ms per piece: longer, in all, than the heartbeat liveness.
extern const dtask::Job<std::uint64_t> slow_split;

/// Set by a test before it runs `signals_first_piece`; the job's split sets it when it
/// makes its first piece, which happens on the thread that drives the job.
inline std::promise<void>* first_piece_made = nullptr;

/// Σ x for x in 0..n-1, telling first_piece_made (if set) when split makes its first piece.
extern const dtask::Job<std::uint64_t> signals_first_piece;

/// `count` subtasks of `units` of spinning each; the result counts them.
struct Busy {
    std::uint64_t count = 0;
    std::uint64_t units = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, units);
    }
};
extern const dtask::Job<std::uint64_t> busy;

/// What goes wrong with one subtask, for the fault tests: its first `bad_attempts` attempts
/// misbehave (`how`), later ones succeed.
struct Trouble {
    enum How : std::uint8_t { hang, sleep, transient, segfault, exit };
    std::string directory;  // where attempts are counted
    std::uint64_t index = 0;
    How how = hang;
    unsigned bad_attempts = 1;
    std::uint64_t sleep_ms = 0;  // for `sleep`
    template <class Archive>
    void serialize(Archive& archive) {
        archive(directory, index, how, bad_attempts, sleep_ms);
    }
};

/// The sum of 0..n-1 and how many subtasks were folded: a subtask folded twice shows.
struct Tally {
    std::uint64_t sum = 0;
    std::uint64_t count = 0;
    bool troubled_by_first_attempt = false;  // the troubled subtask's result came from attempt 1
    template <class Archive>
    void serialize(Archive& archive) {
        archive(sum, count, troubled_by_first_attempt);
    }
};
struct Counted {
    std::uint64_t value = 0;
    bool first_attempt = false;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value, first_attempt);
    }
};

inline Counted troubled_map(const std::uint64_t& x, const Trouble& trouble) {
    spin(200);  // long enough that a worker holds subtasks when a test interferes
    if (x != trouble.index)
        return {x, false};
    const unsigned attempt = attempt_number(trouble.directory, x);
    if (attempt <= trouble.bad_attempts) {
        switch (trouble.how) {
            case Trouble::hang:
                for (;;)
                    pause();
            case Trouble::sleep:
                std::this_thread::sleep_for(std::chrono::milliseconds(trouble.sleep_ms));
                break;
            case Trouble::transient:
                throw dtask::TransientError("resource busy on attempt " + std::to_string(attempt));
            case Trouble::segfault: {
                const rlimit no_core{0, 0};  // a test must not litter core files
                setrlimit(RLIMIT_CORE, &no_core);
                raise(SIGSEGV);
                break;
            }
            case Trouble::exit:
                std::_Exit(42);
        }
    }
    return {x, attempt == 1};
}

extern const dtask::Job<Tally> troubled;

/// `count` subtasks of `chunk_bytes` bytes each, as word_count's chunks of a big file are,
/// whose partial results bring `partial_bytes` bytes back: big messages for the slow-link
/// tests. A chunk that arrives cut short fails the job; the sum of the partials' bytes shows
/// a chunk lost or folded twice.
struct Chunks {
    std::uint64_t count = 0;
    std::uint64_t chunk_bytes = 0;
    std::uint64_t partial_bytes = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, chunk_bytes, partial_bytes);
    }
};
extern const dtask::Job<Tally> chunks;
/// What a chunks job of `spec` adds up to.
inline std::uint64_t chunks_sum(const Chunks& spec) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < spec.count; ++i)
        sum += spec.partial_bytes * static_cast<std::uint64_t>('a' + i % 26);
    return sum;
}

/// 0 + 1 + ... + (n - 1): the sum a troubled job of n subtasks adds up to.
inline std::uint64_t sum_below(std::uint64_t n) {
    return n * (n - 1) / 2;
}

/// Where gated and rendezvous subtasks leave their marks, and how long one waits at most, so
/// that no test can hang on it.
struct Gate {
    std::string directory;
    std::uint64_t wait_ms = 60'000;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(directory, wait_ms);
    }
};

/// The file whose existence releases the subtasks of a gated job.
inline std::string gate_release(const std::string& directory) {
    return directory + "/release";
}

/// This process's place among the processes that ran a rendezvous subtask with `directory`:
/// 0 for the first, 1 for the second... Each claims a place once, by creating its file.
inline unsigned rendezvous_place(const std::string& directory) {
    static std::map<std::string, unsigned> places;  // map runs on one thread of a worker
    if (auto known = places.find(directory); known != places.end())
        return known->second;
    for (unsigned place = 0;; ++place) {
        const std::string claim = directory + "/place-" + std::to_string(place);
        const int fd = open(claim.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) {
            close(fd);
            return places[directory] = place;
        }
        if (errno != EEXIST)
            throw std::runtime_error("cannot create " + claim);
    }
}

/// Polls `done` every few milliseconds for at most `wait_ms`: a map that waits for the test
/// or for another worker, bounded.
template <class Done>
void wait_in_map(std::uint64_t wait_ms, Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!done() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

inline std::set<std::int64_t> add_pid(std::set<std::int64_t> pids, std::int64_t pid) {
    pids.insert(pid);
    return pids;
}

/// Subtasks that note their start (attempt markers, attempt_markers.hpp) and then wait until
/// the test creates gate_release(): a test can act while workers are inside map, and count
/// which subtasks ever started. The result is the set of worker pids that ran them.
extern const dtask::Job<std::set<std::int64_t>> gated;

/// A subtask's number and the process that ran it.
struct FromProcess {
    std::uint64_t value = 0;
    std::int64_t pid = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value, pid);
    }
};
/// The sum of 0..n-1, how many subtasks were folded (one folded twice shows) and the
/// processes whose results were folded.
struct SpreadTally {
    std::uint64_t sum = 0;
    std::uint64_t count = 0;
    std::set<std::int64_t> pids;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(sum, count, pids);
    }
};

/// The file a gated_tally subtask leaves in its gate's directory while it runs in `pid`.
inline std::string running_mark(const std::string& directory, std::int64_t pid) {
    return directory + "/running-" + std::to_string(pid);
}

/// Subtasks 0..n-1 that mark their process as running one (running_mark) and then wait
/// until the test creates gate_release(): a test sees work in flight on every worker before
/// it acts, and checks an exact sum and count afterwards.
extern const dtask::Job<SpreadTally> gated_tally;

/// Subtasks that each wait until two distinct processes have started one: run with batches
/// of one subtask on two workers, a job that both must serve, whatever their speeds. Its
/// result names both only without backup copies (RunOptions::backup_tasks = false): with
/// them, the faster worker may win every subtask the slower one started.
extern const dtask::Job<std::set<std::int64_t>> rendezvous;

}  // namespace test_jobs
