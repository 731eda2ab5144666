// Shared data: placed on the workers once (share) and used by any number of later jobs. The
// workers' own counts, read in map, show what each received and holds.

#include <cstdint>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <unistd.h>

#include "broker/shared_objects.hpp"
#include "dtaskd.hpp"
#include "support.hpp"
#include "worker/shared_table.hpp"

using namespace test_support;
using namespace std::chrono_literals;

namespace {

/// What one worker had of shared objects while it ran a subtask.
struct Counts {
    std::uint64_t received = 0;
    std::uint64_t held = 0;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(received, held);
    }
};

/// The sum of a job, and each worker's counts (by pid) as it ran its last subtask of it.
struct WeightedTally {
    std::uint64_t sum = 0;
    std::map<std::int64_t, Counts> workers;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(sum, workers);
    }
};

/// Folds a partial tally: the sums add up, each worker's latest counts are kept.
WeightedTally add_tallies(WeightedTally total, WeightedTally part) {
    total.sum += part.sum;
    for (const auto& [pid, counts] : part.workers)
        total.workers[pid] = counts;
    return total;
}

/// Σ data[i % size] · (i + 1) for i in 0..n-1, with the data as job-wide data.
inline const dtask::Job<WeightedTally> weighted_sum{
    "tests.shared.weighted_sum",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& i, const std::vector<std::uint64_t>& data) {
        const auto counts = dtask::detail::worker_shared_objects();
        WeightedTally tally;
        tally.sum = data[i % data.size()] * (i + 1);
        tally.workers[getpid()] = Counts{counts.received, counts.held};
        return tally;
    },
    add_tallies};

/// A job's own job-wide data, beside the placed data.
struct Weights {
    std::vector<std::uint64_t> values;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(values);
    }
};

/// Σ placed[i % size] · weights[i % count] for i in 0..n-1: the placed data stays on the
/// workers, the weights are each job's own.
inline const dtask::Job<WeightedTally> weighted_by_job{
    "tests.shared.weighted_by_job",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& i, const std::vector<std::uint64_t>& placed, const Weights& weights) {
        const auto counts = dtask::detail::worker_shared_objects();
        WeightedTally tally;
        tally.sum = placed[i % placed.size()] * weights.values[i % weights.values.size()];
        tally.workers[getpid()] = Counts{counts.received, counts.held};
        return tally;
    },
    add_tallies};

std::uint64_t expected_weighted(const std::vector<std::uint64_t>& placed, const Weights& weights,
                                std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        sum += placed[i % placed.size()] * weights.values[i % weights.values.size()];
    return sum;
}

std::uint64_t expected_sum(const std::vector<std::uint64_t>& data, std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        sum += data[i % data.size()] * (i + 1);
    return sum;
}

std::vector<std::uint64_t> numbers(std::size_t size, std::uint64_t start) {
    std::vector<std::uint64_t> data(size);
    std::iota(data.begin(), data.end(), start);
    return data;
}

/// Job-wide data whose decoding fails on the worker: its bytes hold a negative value.
struct Fragile {
    int value = 0;

    template <class Archive>
    void save(Archive& archive) const {
        archive(value);
    }
    template <class Archive>
    void load(Archive& archive) {
        archive(value);
        if (value < 0)
            throw std::runtime_error("a Fragile value may not be negative");
    }
};

inline const dtask::Job<std::uint64_t> fragile_sum{
    "tests.shared.fragile_sum",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& i, const Fragile& data) {
        return i + static_cast<std::uint64_t>(data.value);
    },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

const dtask::RunOptions one_per_batch{.batch_size = 1};

template <class D>
WeightedTally run_tally(dtask::Submitter& submitter, std::uint64_t n,
                        const dtask::Shared<D>& shared) {
    auto handle = submitter.submit(weighted_sum, n, shared, one_per_batch);
    return get_within(handle);
}

}  // namespace

TEST_CASE("SharedData.jobs_reuse_one_object_each_worker_receives_it_once" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(2));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto data = numbers(1000, 7);
    const auto shared = cluster.share(data);
    CHECK(shared.valid());
    CHECK(shared.size() > data.size() * sizeof(std::uint64_t));
    std::map<std::int64_t, Counts> seen;
    for (int round = 0; round < 4; ++round) {
        // Two jobs at once and one run(): every way in uses the same object.
        auto first = cluster.submit(weighted_sum, std::uint64_t{300}, shared, one_per_batch);
        auto second = cluster.submit(weighted_sum, std::uint64_t{301}, shared, one_per_batch);
        const WeightedTally third =
            cluster.run(weighted_sum, std::uint64_t{302}, shared, one_per_batch);
        const WeightedTally tallies[] = {get_within(first), get_within(second), third};
        CHECK(tallies[0].sum == expected_sum(data, 300));
        CHECK(tallies[1].sum == expected_sum(data, 301));
        CHECK(tallies[2].sum == expected_sum(data, 302));
        for (const WeightedTally& tally : tallies) {
            for (const auto& [pid, counts] : tally.workers)
                seen[pid] = counts;
        }
    }
    CHECK(run_tally(cluster, 302, shared).sum == expected_sum(data, 302));
    REQUIRE(!seen.empty());
    for (const auto& worker : seen) {  // not a binding: clang 14 cannot capture one in INFO
        INFO("worker " << worker.first);
        CHECK(worker.second.received == 1);  // once, for 13 jobs
        CHECK(worker.second.held == 1);
    }
}

TEST_CASE("SharedData.results_are_exact_and_data_is_type_checked" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(2));
    const auto a = numbers(97, 1);
    const auto b = numbers(13, 1000);
    const auto shared_a = cluster.share(a);
    const auto shared_b = cluster.share(b);
    for (std::uint64_t n : {1u, 50u, 500u}) {
        CHECK(run_tally(cluster, n, shared_a).sum == expected_sum(a, n));
        CHECK(run_tally(cluster, n, shared_b).sum == expected_sum(b, n));
        // The same data given by value still works, beside the shared object.
        CHECK(run_within(cluster, weighted_sum, n, b, one_per_batch).sum == expected_sum(b, n));
    }
    // Data of another type than the job's map takes is refused at submit, as by value.
    const auto text = cluster.share(std::string("not numbers"));
    CHECK_THROWS_AS(cluster.submit(weighted_sum, std::uint64_t{3}, text),
                    dtask::JobDefinitionError);
    // A handle from another cluster is refused too.
    dtask::Cluster other(small_cluster(0));
    const auto foreign = other.share(a);
    CHECK_THROWS_WITH_AS(cluster.submit(weighted_sum, std::uint64_t{3}, foreign),
                         doctest::Contains("placed by another Cluster or Client"), dtask::Error);
    // A handle kept past its Cluster is refused by the next, at the same address or not.
    dtask::Shared<std::vector<std::uint64_t>> kept;
    {
        dtask::Cluster first(small_cluster(0));
        kept = first.share(a);
    }
    dtask::Cluster second(small_cluster(0));
    CHECK_THROWS_WITH_AS(second.submit(weighted_sum, std::uint64_t{3}, kept),
                         doctest::Contains("released"), dtask::Error);
}

TEST_CASE("SharedData.a_worker_that_joins_later_receives_it_and_uses_it" * doctest::timeout(120)) {
    dtask::Cluster cluster(listening_cluster(1));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const auto data = numbers(500, 3);
    const auto shared = cluster.share(data);
    const WeightedTally before = run_tally(cluster, 200, shared);
    CHECK(before.sum == expected_sum(data, 200));
    REQUIRE(before.workers.size() == 1);

    Process late(self_executable(), {"--dtask-worker", tcp_endpoint(cluster)}, {},
                 worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    std::map<std::int64_t, Counts> seen;
    const bool used = wait_until(
        [&] {
            const WeightedTally tally = run_tally(cluster, 200, shared);
            CHECK(tally.sum == expected_sum(data, 200));
            for (const auto& [pid, counts] : tally.workers)
                seen[pid] = counts;
            return seen.contains(late.pid());
        },
        60s);
    REQUIRE_MESSAGE(used, "the worker that joined later ran no subtask");
    CHECK(seen.at(late.pid()).received == 1);
    CHECK(seen.at(late.pid()).held == 1);
    CHECK(seen.at(before.workers.begin()->first).received == 1);
}

TEST_CASE("SharedData.release_frees_it_at_the_broker_and_on_the_workers" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(2));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto a = numbers(100, 1);
    auto shared_a = cluster.share(a);
    const auto copy_a = shared_a;
    CHECK(run_tally(cluster, 100, shared_a).sum == expected_sum(a, 100));
    shared_a.release();  // for every copy
    CHECK(!copy_a.valid());
    CHECK_THROWS_WITH_AS(cluster.submit(weighted_sum, std::uint64_t{3}, copy_a),
                         doctest::Contains("released"), dtask::Error);

    const auto b = numbers(100, 50);
    {
        std::vector<dtask::Shared<std::vector<std::uint64_t>>> copies{cluster.share(b)};
        copies.push_back(copies.front());
        CHECK(run_tally(cluster, 100, copies.back()).sum == expected_sum(b, 100));
    }  // the last copy of b's handle goes: released

    const auto c = numbers(100, 9000);
    const auto shared_c = cluster.share(c);
    CHECK(run_tally(cluster, 100, shared_c).sum == expected_sum(c, 100));
    // The releases were sent before this job's submit: every worker has dropped a and b.
    const WeightedTally after = run_tally(cluster, 100, shared_c);
    CHECK(after.sum == expected_sum(c, 100));
    REQUIRE(!after.workers.empty());
    for (const auto& worker : after.workers) {
        INFO("worker " << worker.first);
        CHECK(worker.second.held == 1);
    }
}

TEST_CASE("SharedData.a_client_that_leaves_frees_its_objects" * doctest::timeout(120)) {
    dtask::Cluster cluster(listening_cluster(2));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto data = numbers(100, 1);
    {
        dtask::ClientOptions client_options;
        client_options.token = cluster.client_token();
        dtask::Client client(tcp_endpoint(cluster), client_options);
        const auto shared = client.share(data);
        const WeightedTally tally = run_tally(client, 100, shared);
        CHECK(tally.sum == expected_sum(data, 100));
        for (const auto& [pid, counts] : tally.workers)
            CHECK(counts.held == 1);
    }  // leaves with its handle still alive: the broker frees what it placed
    const auto mine = cluster.share(numbers(10, 1));
    bool freed = false;
    const bool done = wait_until(
        [&] {
            const WeightedTally tally = run_tally(cluster, 100, mine);
            freed = !tally.workers.empty();
            for (const auto& [pid, counts] : tally.workers)
                freed = freed && counts.held == 1;
            return freed;
        },
        30s);
    CHECK_MESSAGE(done, "the workers still hold the shared data of a client that left");
}

TEST_CASE("SharedData.a_map_takes_placed_data_and_each_job_its_own_data" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(2));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto data = numbers(1000, 7);
    const auto placed = cluster.share(data);
    std::map<std::int64_t, Counts> seen;
    for (std::uint64_t round = 0; round < 4; ++round) {
        // Two jobs at once and a run(), each with other weights beside the same placed data.
        const Weights first_weights{numbers(3 + round, round + 1)};
        const Weights second_weights{numbers(5, 100 * round)};
        const Weights third_weights{{round + 2}};
        auto first = cluster.submit(weighted_by_job, std::uint64_t{300}, placed, first_weights,
                                    one_per_batch);
        auto second = cluster.submit(weighted_by_job, std::uint64_t{301}, placed, second_weights,
                                     one_per_batch);
        const WeightedTally third =
            cluster.run(weighted_by_job, std::uint64_t{302}, placed, third_weights, one_per_batch);
        const WeightedTally tallies[] = {get_within(first), get_within(second), third};
        CHECK(tallies[0].sum == expected_weighted(data, first_weights, 300));
        CHECK(tallies[1].sum == expected_weighted(data, second_weights, 301));
        CHECK(tallies[2].sum == expected_weighted(data, third_weights, 302));
        for (const WeightedTally& tally : tallies) {
            for (const auto& [pid, counts] : tally.workers)
                seen[pid] = counts;
        }
    }
    REQUIRE(!seen.empty());
    for (const auto& worker : seen) {
        INFO("worker " << worker.first);
        CHECK(worker.second.received == 1);  // the placed data once, for 12 jobs
        CHECK(worker.second.held == 1);
    }
}

TEST_CASE("SharedData.a_map_of_three_parameters_is_refused_without_both" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    const auto data = numbers(10, 1);
    const auto placed = cluster.share(data);
    const Weights weights{{2, 3}};
    auto refused = [](auto&& submit, const char* given) {
        try {
            (void)submit();
            FAIL("the job was accepted");
        } catch (const dtask::JobDefinitionError& e) {
            const std::string what = e.what();
            CHECK_MESSAGE(contains(what,
                                   "job 'tests.shared.weighted_by_job' takes placed data of "
                                   "type std::vector<unsigned long"),
                          what);
            CHECK_MESSAGE(contains(what, "run(job, input, share(placed), data)"), what);
            CHECK_MESSAGE(contains(what, given), what);
        }
    };
    refused([&] { return cluster.submit(weighted_by_job, std::uint64_t{3}, placed); },
            "placed data (share()): a std::vector<unsigned long");
    refused([&] { return cluster.submit(weighted_by_job, std::uint64_t{3}, placed); },
            "job-wide data: none");
    refused([&] { return cluster.run(weighted_by_job, std::uint64_t{3}, weights); },
            "placed data (share()): none; job-wide data: a (anonymous namespace)::Weights");
    refused([&] { return cluster.submit(weighted_by_job, std::uint64_t{3}); },
            "placed data (share()): none; job-wide data: none");
    refused(
        [&] {
            return cluster.submit(weighted_by_job, std::uint64_t{3},
                                  cluster.share(std::string("text")), weights);
        },
        "placed data (share()): a std::");
    refused([&] { return cluster.submit(weighted_by_job, std::uint64_t{3}, placed, 7u); },
            "job-wide data: a unsigned int");
    // A map of two parameters takes one of them, not both.
    CHECK_THROWS_WITH_AS(cluster.submit(weighted_sum, std::uint64_t{3}, placed, weights),
                         doctest::Contains("takes one piece of job-wide data"),
                         dtask::JobDefinitionError);
    // Given both, it runs.
    CHECK(cluster.run(weighted_by_job, std::uint64_t{20}, placed, weights).sum ==
          expected_weighted(data, weights, 20));
}

TEST_CASE("SharedData.placed_and_job_wide_data_through_dtaskd_within_its_bounds" *
          doctest::timeout(150)) {
    // dtaskd with at most 1 MiB of job-wide data per job: 1.6 MB placed with share() is
    // within its bounds and stays on the worker across jobs; 1.6 MB of a job's own data
    // beside it is refused, naming the bound, and the client goes on.
    Dtaskd broker({"--max-job-data-mib", "1"});
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));
    const auto data = numbers(200'000, 1);
    const auto placed = client.share(data);
    REQUIRE(placed.size() > (std::size_t{1} << 20));
    for (std::uint64_t round = 0; round < 3; ++round) {
        const Weights weights{numbers(7, 10 * round + 1)};
        auto handle =
            client.submit(weighted_by_job, std::uint64_t{500}, placed, weights, one_per_batch);
        const WeightedTally tally = get_within(handle);
        CHECK(tally.sum == expected_weighted(data, weights, 500));
        REQUIRE(tally.workers.size() == 1);
        CHECK(tally.workers.begin()->first == worker.pid());
        CHECK(tally.workers.begin()->second.received == 1);
        CHECK(tally.workers.begin()->second.held == 1);
    }
    const Weights too_many{numbers(200'000, 1)};
    auto too_big = client.submit(weighted_by_job, std::uint64_t{5}, placed, too_many);
    const auto error = error_of<dtask::LimitError>(too_big);
    CHECK_MESSAGE(contains(error.what(), "the limit is 1048576 bytes (--max-job-data-mib"),
                  error.what());
    const Weights weights{{3}};
    auto after = client.submit(weighted_by_job, std::uint64_t{50}, placed, weights);
    CHECK(get_within(after).sum == expected_weighted(data, weights, 50));
}

TEST_CASE("SharedData.data_that_fails_to_decode_fails_the_job_clearly" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    const auto good = cluster.share(Fragile{5});
    CHECK(cluster.run(fragile_sum, std::uint64_t{4}, good) == 0 + 1 + 2 + 3 + 4 * 5);
    const auto bad = cluster.share(Fragile{-1});
    auto handle = cluster.submit(fragile_sum, std::uint64_t{4}, bad);
    const auto error = error_of<dtask::JobDefinitionError>(handle);
    const std::string text = error.what();
    CHECK(contains(text, "the job-wide data of job 'tests.shared.fragile_sum'"));
    CHECK(contains(text, "a Fragile value may not be negative"));
    // The worker is fine: the good object still serves.
    CHECK(cluster.run(fragile_sum, std::uint64_t{4}, good) == 0 + 1 + 2 + 3 + 4 * 5);
}

TEST_CASE("SharedData.the_per_client_bound_refuses_a_job_naming_it" * doctest::timeout(120)) {
    auto options = small_cluster(1);
    options.shared_bytes_per_client = 10'000;
    dtask::Cluster cluster(options);
    auto small = cluster.share(numbers(500, 1));  // 4 kB
    CHECK(run_tally(cluster, 10, small).sum == expected_sum(numbers(500, 1), 10));
    const auto large = cluster.share(numbers(1000, 1));  // 8 kB more: over 10 kB
    auto handle = cluster.submit(weighted_sum, std::uint64_t{10}, large);
    const auto error = error_of<dtask::Error>(handle);
    CHECK(contains(error.what(), "shared_bytes_per_client"));
    CHECK(contains(error.what(), "10000 bytes"));
    CHECK(contains(error.what(), "tests.shared.weighted_sum"));
    // Within the bound again once the first is released: the refused handle serves now.
    small.release();
    CHECK(run_tally(cluster, 10, large).sum == expected_sum(numbers(1000, 1), 10));
}

TEST_CASE("SharedData.broker_records_follow_jobs_releases_and_clients" * doctest::timeout(10)) {
    using dtask::detail::SharedObjects;
    SharedObjects objects(100);
    std::string why;
    objects.add("c1", 1, zmq::message_t(60));
    CHECK(objects.bytes_of("c1") == 60);
    CHECK_THROWS_AS(objects.add("c1", 1, zmq::message_t(1)), dtask::ProtocolError);
    objects.add("c1", 2, zmq::message_t(50));  // 110 > 100: refused, with the reason
    CHECK(objects.use("c1", 2, why) == nullptr);
    CHECK(contains(why, "over the bound of 100 bytes"));
    CHECK(objects.use("c2", 1, why) == nullptr);  // another client's id
    CHECK(contains(why, "holds no shared object 1"));

    auto* record = objects.use("c1", 1, why);
    REQUIRE(record != nullptr);
    CHECK(record->jobs == 1);
    CHECK(!objects.release("c1", 1).has_value());  // a job still uses it
    CHECK(objects.use("c1", 1, why) == nullptr);   // released: no new job may
    CHECK(objects.done_with(*record));             // its last job ended: drop it now
    objects.erase(record->id);
    CHECK(objects.size() == 0);
    CHECK(objects.bytes_of("c1") == 0);

    objects.add("c1", 3, zmq::message_t(10));
    objects.add("c1", 4, zmq::message_t(10));
    auto* used = objects.use("c1", 4, why);
    REQUIRE(used != nullptr);
    const auto dropped = objects.drop_client("c1");  // 3 at once; 4 when its job ends
    CHECK(dropped.size() == 1);
    CHECK(objects.done_with(*used));
}

TEST_CASE("SharedData.worker_table_holds_each_object_once" * doctest::timeout(10)) {
    dtask::detail::SharedTable table;
    table.add(1, zmq::message_t(8));
    CHECK_THROWS_WITH_AS(table.add(1, zmq::message_t(8)), doctest::Contains("holds already"),
                         dtask::ProtocolError);
    CHECK(table.size() == 1);
    const auto& model = weighted_sum.model();
    CHECK_THROWS_WITH_AS(table.decoded(2, model), doctest::Contains("never sent"),
                         dtask::ProtocolError);
    table.remove(1);
    CHECK(table.size() == 0);
}
