// Slow links (docs/reliability.md): a peer whose big message is still on its way is alive,
// though its heartbeats wait behind that message in the same stream; a frozen one is still
// found within the silence limit. The peer sits in a second network namespace, behind a
// veth pair shaped with tc's token bucket filter; skipped, with the reason, where network
// namespaces are not allowed.

#include <chrono>
#include <string>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include "jobs.hpp"
#include "remote_network.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

/// 1 MiB, word_count's default chunk: over 2 s each at 4 Mbit/s, where the default
/// heartbeats call a peer silent after 1.25 s.
constexpr std::uint64_t mib = 1 << 20;

/// A network namespace whose link is shaped to `rate`; its why_not() says why the test
/// skips.
struct ShapedNetwork {
    explicit ShapedNetwork(const std::string& rate) {
        if (network.why_not().empty() && !network.shape(rate))
            why_not = "'tc qdisc add ... tbf' failed (shaping a link needs tc, from iproute2)";
        else
            why_not = network.why_not();
    }
    RemoteNetwork network;
    std::string why_not;
};

/// The cluster's endpoint on the link to the namespace.
dtask::ClusterOptions listening_on(const RemoteNetwork& network, int local_workers) {
    auto options = small_cluster(local_workers);
    options.listen.push_back("tcp://" + network.host_address() + ":*");
    return options;
}

}  // namespace

TEST_CASE("SlowLinks.client_sending_and_receiving_big_messages_over_a_slow_link_stays" *
          doctest::timeout(120)) {
    ShapedNetwork shaped("4mbit");
    if (!shaped.why_not.empty()) {
        skip_test(shaped.why_not);
        return;
    }
    dtask::Cluster cluster(listening_on(shaped.network, 2));
    REQUIRE(cluster.wait_for_workers(2, 30s));
    // 3 MiB of subtasks up and 3 MiB of partials down: about 7 s at 4 Mbit/s.
    const Chunks spec{3, mib, mib};
    Process client(
        RemoteNetwork::ip_program(),
        {"netns", "exec", shaped.network.name(), helpers_directory() + "/slow_link_client",
         cluster.endpoints().back(), std::to_string(spec.count), std::to_string(spec.chunk_bytes),
         std::to_string(spec.partial_bytes)},
        "|", {"DTASK_TOKEN=" + cluster.client_token()});
    const auto line = client.read_line(60s);
    REQUIRE_MESSAGE(line.has_value(), "the client behind the slow link did not end in 60 s");
    CHECK(*line == "result " + std::to_string(chunks_sum(spec)) + " " + std::to_string(spec.count));
    const auto status = client.wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("SlowLinks.worker_receiving_and_sending_big_messages_over_a_slow_link_stays" *
          doctest::timeout(120)) {
    ShapedNetwork shaped("4mbit");
    if (!shaped.why_not.empty()) {
        skip_test(shaped.why_not);
        return;
    }
    dtask::Cluster cluster(listening_on(shaped.network, 0));
    Process remote =
        shaped.network.start(self_executable(), {"--dtask-worker", cluster.endpoints().back()}, {},
                             worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    // 3 MiB of subtasks to the worker and 3 MiB of partials back: about 7 s at 4 Mbit/s.
    // Dropped as silent, the worker would be blamed on its subtask: "killed the worker".
    const Chunks spec{3, mib, mib};
    auto handle = cluster.submit(chunks, spec, spec);
    const Tally total = get_within(handle, 60s);
    CHECK(total.count == spec.count);
    CHECK(total.sum == chunks_sum(spec));
}

TEST_CASE("SlowLinks.frozen_remote_worker_is_still_dropped_within_the_silence_limit" *
          doctest::timeout(120)) {
    RemoteNetwork network;  // a healthy link: the broker keeps sending, the kernel acknowledges
    if (!network.why_not().empty()) {
        skip_test(network.why_not());
        return;
    }
    dtask::Cluster cluster(listening_on(network, 0));
    Process remote =
        network.start(self_executable(), {"--dtask-worker", cluster.endpoints().back()}, {},
                      worker_environment(cluster));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    remote.signal(SIGSTOP);
    const auto frozen_at = std::chrono::steady_clock::now();
    // interval × (liveness + 1) = 1.5 s with the defaults (docs/reliability.md), and room
    // for a loaded machine; never, if what its kernel acknowledges counted as its life.
    const bool dropped = wait_until([&] { return cluster.workers() == 0; }, 20s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - frozen_at);
    remote.signal(SIGCONT);
    REQUIRE_MESSAGE(dropped, "the frozen worker was not dropped in 20 s");
    MESSAGE("the frozen worker was dropped after " << took.count() << " ms");
    CHECK(took < 5s);
    CHECK(cluster.wait_for_workers(1, 30s));  // back after SIGCONT
}
