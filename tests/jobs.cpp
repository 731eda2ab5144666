// The jobs of jobs.hpp, compiled once for the test binary and the helpers that run them.

#include "jobs.hpp"

namespace test_jobs {

const dtask::Job<std::uint64_t> squares{
    "tests.squares",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i + 1; });
    },
    [](const std::uint64_t& x) { return x * x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

const dtask::Job<std::string> marked{
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

const dtask::Job<std::string> concat_ordered{"tests.concat_ordered", concat_split, concat_map,
                                             concat_reduce};

const dtask::Job<std::string> concat_unordered{
    "tests.concat_unordered", concat_split, concat_map, concat_reduce,
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

const dtask::Job<std::uint64_t> throws_on_seven{
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

const dtask::Job<std::set<std::int64_t>> worker_pids{
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

const dtask::Job<ScaledTotal> scaled{
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

const dtask::Job<std::uint64_t> windowed{
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

const dtask::Job<std::uint64_t> slow{
    "tests.slow",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) { return spin(2000) * 0 + x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

const dtask::Job<std::map<std::int64_t, std::uint64_t>> counted_by_worker{
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

const dtask::Job<std::uint64_t> kills_worker_on_three{
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

const dtask::Job<std::uint64_t> slow_split{
    "tests.slow_split",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) {
            spin(4000);
            return i;
        });
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

const dtask::Job<std::uint64_t> signals_first_piece{
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

const dtask::Job<std::uint64_t> busy{
    "tests.busy",
    [](const Busy& work, dtask::SplitHint) {
        return dtask::pieces(work.count, [units = work.units](std::uint64_t) { return units; });
    },
    [](const std::uint64_t& units) {
        spin(units);
        return std::uint64_t{1};
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

const dtask::Job<Tally> troubled{"tests.troubled",
                                 [](const std::uint64_t& n, dtask::SplitHint) {
                                     return dtask::pieces(n, [](std::uint64_t i) { return i; });
                                 },
                                 troubled_map,
                                 [](Tally tally, Counted part) {
                                     tally.sum += part.value;
                                     ++tally.count;
                                     tally.troubled_by_first_attempt =
                                         tally.troubled_by_first_attempt || part.first_attempt;
                                     return tally;
                                 }};

const dtask::Job<Tally> chunks{"tests.chunks",
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

const dtask::Job<std::set<std::int64_t>> gated{
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

const dtask::Job<SpreadTally> gated_tally{
    "tests.gated_tally",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& index, const Gate& gate) {
        const std::int64_t pid = getpid();
        const int fd = open(running_mark(gate.directory, pid).c_str(), O_CREAT | O_WRONLY, 0600);
        if (fd < 0)
            throw std::runtime_error("cannot create " + running_mark(gate.directory, pid));
        close(fd);
        const std::string release = gate_release(gate.directory);
        wait_in_map(gate.wait_ms, [&] { return access(release.c_str(), F_OK) == 0; });
        return FromProcess{index, pid};
    },
    [](SpreadTally tally, FromProcess part) {
        tally.sum += part.value;
        ++tally.count;
        tally.pids.insert(part.pid);
        return tally;
    }};

const dtask::Job<std::set<std::int64_t>> rendezvous{
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
