// Many hosts (docs/reliability.md): dtaskd on one host and a worker on each of three others,
// network namespaces joined by a bridge (many_hosts.hpp), and a client on this machine. A job
// over them all ends with the exact result; so does one during which a worker host's cable is
// pulled, its work done elsewhere once the broker hears nothing from it. Skipped, with the
// reason, where network namespaces are not allowed.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include "dtaskd.hpp"
#include "jobs.hpp"
#include "many_hosts.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

constexpr int worker_hosts = 3;
/// Subtasks of each job: many more than the workers hold at once.
constexpr std::uint64_t subtasks = 3'000;

/// dtaskd on host 0 and a worker of this binary on each of hosts 1..3; the test is the
/// client, on this machine. dtaskd is declared first: it outlives its workers.
struct Site {
    explicit Site(const ManyHosts& hosts)
        : broker({}, "tcp://" + hosts.address(0) + ":*", {}, {}, hosts.on(0)) {
        for (int host = 1; host <= worker_hosts; ++host)
            workers.push_back(hosts.start(host, self_executable(),
                                          {"--dtask-worker", broker.endpoint()}, {},
                                          broker.worker_environment()));
    }
    /// Whether each worker runs a subtask of the job gated in `gate`.
    bool each_worker_runs_one(const TempDir& gate) const {
        for (const Process& worker : workers) {
            if (access(running_mark(gate.path(), worker.pid()).c_str(), F_OK) != 0)
                return false;
        }
        return true;
    }

    Dtaskd broker;
    std::vector<Process> workers;
};

/// Lets the subtasks of the job gated in `gate` finish.
void release(const TempDir& gate) {
    const int fd = open(gate_release(gate.path()).c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
}

/// The name the broker knows a worker of this machine by (process_name(): host:pid).
std::string worker_name(const Process& worker) {
    char host[256] = {};
    REQUIRE(gethostname(host, sizeof host - 1) == 0);
    return std::string(host) + ":" + std::to_string(worker.pid());
}

/// Without backup copies: a result comes from the worker that held its subtask, and the
/// subtasks of a worker that is cut off are done elsewhere only once the broker drops it.
const dtask::RunOptions no_backups{.backup_tasks = false};

/// The site, and a job of `subtasks` gated subtasks submitted once every worker joined: when
/// constructed, every worker host holds work and none has finished any.
struct GatedJobOnEveryHost {
    explicit GatedJobOnEveryHost(const ManyHosts& hosts)
        : site(hosts),
          client(site.broker.endpoint(), site.broker.client_options()),
          handle(submit_once_all_joined(client, gate)) {
        REQUIRE_MESSAGE(wait_until([&] { return site.each_worker_runs_one(gate); }, 60s),
                        "not every worker host got a subtask");
    }

    static dtask::JobHandle<SpreadTally> submit_once_all_joined(dtask::Client& client,
                                                                const TempDir& gate) {
        REQUIRE(client.wait_for_workers(worker_hosts, 30s));
        return client.submit(gated_tally, subtasks, Gate{gate.path(), 60'000}, no_backups);
    }

    Site site;
    dtask::Client client;
    TempDir gate{"many-hosts-gate"};
    dtask::JobHandle<SpreadTally> handle;
};

}  // namespace

TEST_CASE("ManyHosts.workers_on_three_hosts_and_dtaskd_on_a_fourth_give_the_exact_result" *
          doctest::timeout(90)) {
    ManyHosts hosts(1 + worker_hosts);
    if (!hosts.why_not().empty()) {
        skip_test(hosts.why_not());
        return;
    }
    GatedJobOnEveryHost run(hosts);
    release(run.gate);
    const SpreadTally tally = get_within(run.handle, 60s);
    CHECK(tally.count == subtasks);
    CHECK(tally.sum == sum_below(subtasks));
    std::set<std::int64_t> all;
    for (const Process& worker : run.site.workers)
        all.insert(worker.pid());
    CHECK(tally.pids == all);
}

TEST_CASE("ManyHosts.worker_host_cut_off_mid_job_is_dropped_and_its_subtasks_done_elsewhere" *
          doctest::timeout(90)) {
    ManyHosts hosts(1 + worker_hosts);
    if (!hosts.why_not().empty()) {
        skip_test(hosts.why_not());
        return;
    }
    GatedJobOnEveryHost run(hosts);
    // Every host holds work now, none has finished any: cut off the last one, then let the
    // subtasks go. What it holds can only come back from the others, after the broker has
    // heard nothing from it for its silence limit.
    constexpr int cut_host = worker_hosts;
    Process& cut_worker = run.site.workers.back();
    REQUIRE(hosts.cut(cut_host));
    release(run.gate);
    const SpreadTally tally = get_within(run.handle, 60s);
    CHECK(tally.count == subtasks);
    CHECK(tally.sum == sum_below(subtasks));
    std::set<std::int64_t> others;
    for (const Process& worker : run.site.workers) {
        if (&worker != &cut_worker)
            others.insert(worker.pid());
    }
    CHECK(tally.pids == others);

    // The broker says it dropped that worker for its silence, with work in hand.
    const auto said = run.site.broker.read_until(
        "worker " + worker_name(cut_worker) + " is gone (it sent nothing for", 30s);
    CHECK_MESSAGE(said.found, "dtaskd did not report the worker cut off; it said:\n" << said.text);
    CHECK(contains(said.text, "holding"));
    CHECK(wait_until([&] { return run.client.workers() == worker_hosts - 1; }, 30s));
    // Still out of reach, it would wait for the broker until it gives up: ended here.
    cut_worker.kill_and_reap();
}
