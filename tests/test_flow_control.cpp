// Flow control (docs/architecture.md, "Flow control" and "Batch size"): credits, the split
// window's two bounds and the batch sizer, each seen from outside with real processes.

#include <algorithm>
#include <atomic>
#include <optional>

#include <doctest/doctest.h>

#include <dtask/detail/archive.hpp>
#include <dtask/detail/job_model.hpp>

#include "job_registry.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using namespace test_support;
using namespace std::chrono_literals;

namespace flow_jobs {

/// Pieces of 1000 bytes from a generator split, folded in arrival order, so that what split
/// has made and reduce has not folded is exactly what is in flight.
std::atomic<std::uint64_t> made{0};
std::atomic<std::uint64_t> folded{0};
std::atomic<std::uint64_t> most_in_flight{0};

const dtask::Job<std::uint64_t> kilobyte_pieces{
    "tests.flow.kilobyte_pieces",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return [n, next = std::uint64_t{0}]() mutable -> std::optional<std::string> {
            if (next == n)
                return std::nullopt;
            ++next;
            const std::uint64_t in_flight = ++made - folded.load();
            most_in_flight = std::max(most_in_flight.load(), in_flight);
            return std::string(1000, 'x');
        };
    },
    [](const std::string& piece) { return static_cast<std::uint64_t>(piece.size()); },
    [](std::uint64_t total, std::uint64_t part) {
        ++folded;
        return total + part;
    },
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

}  // namespace flow_jobs

namespace {

/// A worker driven by hand at a real broker: it serves what this binary defines, runs
/// tests.squares itself, and says each map took `ns_per_subtask`, whatever it took.
class FakeWorker {
public:
    FakeWorker(zmq::context_t& context, const dtask::Cluster& cluster, std::uint32_t credits)
        : peer_(context, cluster.endpoints().back(), cluster.join_token()) {
        peer_.send(
            message_of(hello_header(), {hello_body(Role::worker, credits, registered_jobs())}));
    }

    // What it hears, heartbeats answered: RawPeer's.
    std::optional<Inbound> next(std::chrono::milliseconds timeout) { return peer_.next(timeout); }
    std::optional<std::vector<Command>> until_heartbeats(unsigned count) {
        return peer_.until_heartbeats(count);
    }

    /// Answers a task of tests.squares: x² for each subtask x, in one run.
    void answer(const Inbound& task, std::uint64_t ns_per_subtask) {
        std::string bytes(result_header_room, '\0');
        BatchWriter writer(bytes);
        BatchReader reader(task.batch);
        std::span<const std::byte> record;
        while (reader.next(record, "task batch")) {
            const auto x = load_from<std::uint64_t>(record, "subtask");
            writer.begin();
            save_to(bytes, x * x);
            writer.end();
        }
        const std::size_t start = write_batch_header(
            std::as_writable_bytes(std::span(bytes).first(result_header_room)), Command::result,
            task.fields[0], {task.fields[1], task.fields[2], task.fields[2] * ns_per_subtask});
        std::vector<zmq::message_t> frames;
        frames.push_back(payload_frame(std::move(bytes), start));
        peer_.send(std::move(frames));
    }

private:
    RawPeer peer_;
};

/// Runs tests.squares of `n` on `worker` alone, answering every task at once with
/// `ns_per_subtask` as map's time; the size of each batch the worker was sent, in order.
std::vector<std::uint64_t> batch_sizes_of_squares(dtask::Cluster& cluster, FakeWorker& worker,
                                                  std::uint64_t n, std::uint64_t ns_per_subtask) {
    auto handle = cluster.submit(test_jobs::squares, n);
    std::vector<std::uint64_t> sizes;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!handle.ready()) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "the job did not end");
        auto message = worker.next(100ms);
        if (!message || message->command != Command::task)
            continue;
        sizes.push_back(message->fields[2]);
        worker.answer(*message, ns_per_subtask);
    }
    CHECK(get_within(handle, 10s) == test_jobs::serial_squares(n));
    return sizes;
}

}  // namespace

TEST_CASE("FlowControl.worker_offers_its_credits_and_the_broker_never_exceeds_them" *
          doctest::timeout(60)) {
    zmq::context_t context(1);
    {
        // A worker states its --dtask-credits in its hello.
        FakeBroker broker;
        Process worker(self_executable(),
                       {"--dtask-worker", broker.endpoint(), "--dtask-credits", "3"}, {},
                       broker.worker_environment());
        const auto message = broker.expect(Command::hello);
        CHECK(decode_body<Hello>(message.body[0], "hello").credits == 3);
    }
    // A worker of one credit holds one batch at a time: however many are queued, the broker
    // sends the next only once the last one's result is back.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    FakeWorker worker(context, cluster, 1);
    REQUIRE(cluster.wait_for_workers(1, 30s));
    constexpr std::uint64_t n = 40;
    auto handle = cluster.submit(test_jobs::squares, n, dtask::RunOptions{.batch_size = 1});
    std::optional<Inbound> first;
    while (!first || first->command != Command::task) {
        first = worker.next(30s);
        REQUIRE_MESSAGE(first.has_value(), "no task came");
    }
    // It holds the first: for two ticks of the broker (its heartbeats), nothing else comes.
    std::vector<zmq::message_t> held;
    held.push_back(zmq::message_t(first->frame->data(), first->frame->size()));
    const auto meanwhile = worker.until_heartbeats(2);
    REQUIRE_MESSAGE(meanwhile.has_value(), "the broker fell silent");
    CHECK_MESSAGE(std::count(meanwhile->begin(), meanwhile->end(), Command::task) == 0,
                  "a worker of one credit holding a batch was sent "
                      << std::count(meanwhile->begin(), meanwhile->end(), Command::task)
                      << " more");
    worker.answer(parse(held, 0), 1000);
    // The rest, each answered at once.
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!handle.ready()) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "the job did not end");
        if (auto next = worker.next(100ms); next && next->command == Command::task)
            worker.answer(*next, 1000);
    }
    CHECK(get_within(handle, 10s) == test_jobs::serial_squares(n));
}

TEST_CASE("FlowControl.batches_start_at_one_subtask_then_fit_the_time_map_takes" *
          doctest::timeout(120)) {
    // Batches hold one subtask until a result has come back, then enough to run 2 to 20 ms
    // by the time the worker reports for map, at most 4096: with 1 µs per subtask, 2000 to
    // 4096; with 1 ms, 2 to 20. The worker by hand reports those times, whatever they were.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    zmq::context_t context(1);
    FakeWorker worker(context, cluster, 256);
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const auto fast = batch_sizes_of_squares(cluster, worker, 100'000, 1'000);
    REQUIRE(!fast.empty());
    CHECK(fast.front() == 1);
    const auto largest = *std::max_element(fast.begin(), fast.end());
    CHECK_MESSAGE(largest >= 2000, "the largest batch of 1 µs subtasks held " << largest);
    CHECK(largest <= 4096);
    const auto slow = batch_sizes_of_squares(cluster, worker, 2'000, 1'000'000);
    REQUIRE(!slow.empty());
    CHECK(slow.front() == 1);
    const auto largest_slow = *std::max_element(slow.begin(), slow.end());
    CHECK_MESSAGE(largest_slow <= 20, "a batch of 1 ms subtasks held " << largest_slow);
    CHECK_MESSAGE(largest_slow >= 2, "batches of 1 ms subtasks never grew past one subtask");
}

TEST_CASE("FlowControl.window_bytes_bounds_the_subtask_bytes_in_flight" * doctest::timeout(120)) {
    // With batches of one subtask of 1000 bytes (and a few bytes of framing), a window of
    // 10,000 bytes lets 10 out at most; one smaller than a subtask still lets one out.
    dtask::Cluster cluster(small_cluster());
    auto most_in_flight = [&](std::size_t window_bytes) {
        flow_jobs::made = 0;
        flow_jobs::folded = 0;
        flow_jobs::most_in_flight = 0;
        dtask::RunOptions options;
        options.batch_size = 1;
        options.window_bytes = window_bytes;
        CHECK(run_within(cluster, flow_jobs::kilobyte_pieces, std::uint64_t{300}, options) ==
              300'000);
        return flow_jobs::most_in_flight.load();
    };
    const auto ten_kilobytes = most_in_flight(10'000);
    CHECK_MESSAGE(ten_kilobytes <= 10, ten_kilobytes << " subtasks of 1000 bytes were in flight");
    CHECK(ten_kilobytes >= 2);
    const auto tiny = most_in_flight(100);
    CHECK_MESSAGE(tiny == 1, tiny << " subtasks of 1000 bytes were in flight");
}
