// Decoding bytes from a hostile or buggy peer (issue 18), with real peers: a broker's memory
// stays in proportion to a hello whatever its lengths claim, a bool of 2 is refused naming
// its field, and an empty std::vector<double> crosses a real cluster (UBSan catches memcpy
// from a null pointer).
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <dtask/detail/archive.hpp>

#include "dtaskd.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using namespace test_support;
using namespace std::chrono_literals;

namespace {

/// Empty vectors of doubles both ways: the subtask and the partial result.
const dtask::Job<std::uint64_t> empty_vectors{
    "tests.empty_vectors",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t) { return std::vector<double>{}; });
    },
    [](const std::vector<double>& v) { return v; },
    [](std::uint64_t total, std::vector<double> part) { return total + 1 + part.size(); }};

/// The peak resident memory of process `pid`, in bytes (VmHWM).
std::size_t peak_rss(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("VmHWM:"))
            return std::stoull(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
    }
    FAIL("no VmHWM in /proc/" << pid << "/status");
    return 0;
}

}  // namespace

TEST_CASE("Decoding.an_empty_vector_of_doubles_runs_through_a_cluster" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    CHECK(run_within(cluster, empty_vectors, std::uint64_t{20}) == 20);
}

TEST_CASE("Decoding.a_bool_byte_of_2_in_a_hello_is_refused_naming_the_field" *
          doctest::timeout(60)) {
    Dtaskd broker;
    zmq::context_t context(1);
    RawPeer peer(context, broker.endpoint(), broker.token("worker"));
    Hello hello;
    hello.name = "by-hand:1";
    hello.platform = platform();
    std::string body;
    save_to(body, hello);
    // role, name and platform (each a length and its bytes), credits, then `local`.
    const std::size_t local = 1 + 8 + hello.name.size() + 8 + hello.platform.size() + 4;
    REQUIRE(body[local] == '\0');
    body[local] = '\x02';
    const std::string why = peer.refusal_of(message_of(hello_header(), {body}));
    CHECK_MESSAGE(contains(why, "a bool must be a byte 0 or 1, found 2 (in 'local')"), why);
}

TEST_CASE("Decoding.a_hello_claiming_many_jobs_costs_the_broker_a_few_times_its_size" *
          doctest::timeout(150)) {
    Dtaskd broker;
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, "|&",
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));
    CHECK(run_within(client, test_jobs::squares, std::uint64_t{100}) ==
          test_jobs::serial_squares(100));
    auto job = client.submit(test_jobs::squares, std::uint64_t{20000});
    const std::size_t before = peak_rss(broker.process().pid());

    // Just under the 1 MiB a hello may have: a worker's hello whose jobs list claims as many
    // entries (64 bytes each in memory) as there are bytes left, none of them whole.
    Hello hello;
    hello.name = "by-hand:1";
    hello.platform = platform();
    std::string body;
    {
        StringOutputArchive archive(body);
        archive(hello.role, hello.name, hello.platform, hello.credits, hello.local, hello.pid);
    }
    constexpr std::size_t size = 1000 << 10;
    save_to(body, static_cast<std::uint64_t>(size - body.size() - 8));
    body.resize(size, '\xff');
    zmq::context_t context(1);
    RawPeer peer(context, broker.endpoint(), broker.token("worker"));
    const std::string why = peer.refusal_of(message_of(hello_header(), {body}));
    CHECK_MESSAGE(contains(why, "cannot decode hello"), why);

    const std::size_t growth = peak_rss(broker.process().pid()) - before;
    CHECK_MESSAGE(growth <= 6 * size, "the broker's peak memory grew by "
                                          << growth / 1024 << " KiB for a hello of " << size / 1024
                                          << " KiB");
    CHECK(get_within(job) == test_jobs::serial_squares(20000));
}
