#pragma once
// Jobs the tests run. Defined at namespace scope in a header, so that the test binary,
// started again as a worker, has every one of them registered.

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
inline const dtask::Job<std::uint64_t> squares{
    "tests.squares",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i + 1; });
    },
    [](const std::uint64_t& x) { return x * x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

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
inline const dtask::Job<std::string> marked{
    "tests.marked",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(
            n, [](std::uint64_t i) { return std::string(marker) + "-" + std::to_string(i); });
    },
    [](const std::string& piece) { return piece + ";"; },
    [](std::string all, std::string part) {
        all += part;  // in place: `all + part` would copy the whole result each time
        return all;
    }};

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

inline const dtask::Job<std::string> concat_ordered{"tests.concat_ordered", concat_split,
                                                    concat_map, concat_reduce};
inline const dtask::Job<std::string> concat_unordered{
    "tests.concat_unordered", concat_split, concat_map, concat_reduce,
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

inline std::string expected_concat(std::uint64_t n) {
    std::string text;
    for (std::uint64_t i = 0; i < n; ++i)
        text += std::to_string(i) + ",";
    return text;
}

/// Throws std::invalid_argument on subtask 7.
inline const dtask::Job<std::uint64_t> throws_on_seven{
    "tests.throws_on_seven",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) -> std::uint64_t {
        if (x == 7)
            throw std::invalid_argument("bad input 7");
        return x;
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// Which processes ran the subtasks.
inline const dtask::Job<std::set<std::int64_t>> worker_pids{
    "tests.worker_pids",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) {
        spin(x % 5);
        return static_cast<std::int64_t>(getpid());
    },
    [](std::set<std::int64_t> pids, std::int64_t pid) {
        pids.insert(pid);
        return pids;
    }};

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
inline const dtask::Job<ScaledTotal> scaled{
    "tests.scaled",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i + 1; });
    },
    [](const std::uint64_t& x, const Scale& scale) {
        return Scaled{x * scale.factor + scale.table.at(x % scale.table.size()),
                      scale_loads.load()};
    },
    [](ScaledTotal total, Scaled part) {
        total.sum += part.value;
        total.most_loads = std::max(total.most_loads, part.loads_in_this_worker);
        return total;
    }};

/// A generator split that checks the window: it is never more than `window` pieces ahead of
/// what reduce has folded. Split and reduce both run on the host's I/O thread.
inline std::atomic<std::uint64_t> generated{0};
inline std::atomic<std::uint64_t> folded{0};
inline std::atomic<std::uint64_t> most_ahead{0};
inline const dtask::Job<std::uint64_t> windowed{
    "tests.windowed",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return [n, next = std::uint64_t{0}]() mutable -> std::optional<std::uint64_t> {
            if (next == n)
                return std::nullopt;
            const auto ahead = ++generated - folded.load();
            if (ahead > most_ahead)
                most_ahead = ahead;
            return next++;
        };
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) {
        ++folded;
        return total + part;
    }};

/// Each subtask takes about `units` of spinning: long enough to cancel a job mid-way.
inline const dtask::Job<std::uint64_t> slow{
    "tests.slow",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) { return spin(2000) * 0 + x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// How many subtasks each process ran; a worker started with DTASK_TEST_SLOW=1 in its
/// environment takes 400 times longer over each.
inline const dtask::Job<std::map<std::int64_t, std::uint64_t>> counted_by_worker{
    "tests.counted_by_worker",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t&) {
        spin(std::getenv("DTASK_TEST_SLOW") != nullptr ? 20000 : 50);
        return static_cast<std::int64_t>(getpid());
    },
    [](std::map<std::int64_t, std::uint64_t> counts, std::int64_t pid) {
        ++counts[pid];
        return counts;
    }};

/// Kills its own worker process on subtask 3: a poison pill.
inline const dtask::Job<std::uint64_t> kills_worker_on_three{
    "tests.kills_worker_on_three",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) {
        if (x == 3)
            raise(SIGKILL);
        return x;
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// A split that takes about 4 ms per piece: longer, in all, than the heartbeat liveness.
inline const dtask::Job<std::uint64_t> slow_split{
    "tests.slow_split",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) {
            spin(4000);
            return i;
        });
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// Set by a test before it runs `signals_first_piece`; the job's split sets it when it
/// makes its first piece, which happens on the thread that drives the job.
inline std::promise<void>* first_piece_made = nullptr;

/// Σ x for x in 0..n-1, telling first_piece_made (if set) when split makes its first piece.
inline const dtask::Job<std::uint64_t> signals_first_piece{
    "tests.signals_first_piece",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) {
            if (i == 0 && first_piece_made != nullptr)
                first_piece_made->set_value();
            return i;
        });
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// `count` subtasks of `units` of spinning each; the result counts them.
struct Busy {
    std::uint64_t count = 0;
    std::uint64_t units = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(count, units);
    }
};
inline const dtask::Job<std::uint64_t> busy{
    "tests.busy",
    [](const Busy& work, dtask::SplitHint) {
        return dtask::pieces(work.count, [units = work.units](std::uint64_t) { return units; });
    },
    [](const std::uint64_t& units) {
        spin(units);
        return std::uint64_t{1};
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

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

inline const dtask::Job<Tally> troubled{
    "tests.troubled",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    troubled_map,
    [](Tally tally, Counted part) {
        tally.sum += part.value;
        ++tally.count;
        tally.troubled_by_first_attempt = tally.troubled_by_first_attempt || part.first_attempt;
        return tally;
    }};

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
inline const dtask::Job<Tally> chunks{
    "tests.chunks",
    [](const Chunks& spec, dtask::SplitHint) {
        return dtask::pieces(spec.count, [spec](std::uint64_t i) {
            return std::string(spec.chunk_bytes, char('a' + i % 26));
        });
    },
    [](const std::string& chunk, const Chunks& spec) {
        if (chunk.empty() || chunk.size() != spec.chunk_bytes ||
            chunk.find_first_not_of(chunk.front()) != std::string::npos)
            throw std::runtime_error("a chunk arrived damaged");
        return std::string(spec.partial_bytes, chunk.front());
    },
    [](Tally tally, std::string part) {
        for (const char c : part)
            tally.sum += static_cast<unsigned char>(c);
        ++tally.count;
        return tally;
    }};
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
inline const dtask::Job<std::set<std::int64_t>> gated{
    "tests.gated",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& index, const Gate& gate) {
        attempt_number(gate.directory, index);
        const std::string release = gate_release(gate.directory);
        wait_in_map(gate.wait_ms, [&] { return access(release.c_str(), F_OK) == 0; });
        return static_cast<std::int64_t>(getpid());
    },
    add_pid};

/// Subtasks that each wait until two distinct processes have started one: run with batches
/// of one subtask on two workers, a job that both must serve, whatever their speeds. Its
/// result names both only without backup copies (RunOptions::backup_tasks = false): with
/// them, the faster worker may win every subtask the slower one started.
inline const dtask::Job<std::set<std::int64_t>> rendezvous{
    "tests.rendezvous",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t&, const Gate& gate) {
        rendezvous_place(gate.directory);
        const std::string second = gate.directory + "/place-1";
        wait_in_map(gate.wait_ms, [&] { return access(second.c_str(), F_OK) == 0; });
        return static_cast<std::int64_t>(getpid());
    },
    add_pid};

}  // namespace test_jobs
