#pragma once
/// \file
/// dtask::Cluster: a broker embedded in the host application, with local worker processes
/// started for you, and room for workers on other machines.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include <dtask/export.hpp>
#include <dtask/submitter.hpp>

namespace dtask {

/// Options of a Cluster. Every field has a default; name only those you change, e.g.
/// `dtask::Cluster cluster{{.local_workers = 2}};`. The defaults suit one machine: a worker
/// per core, no network endpoint.
struct ClusterOptions {
    /// Local worker processes to start (this binary started again in worker mode): -1 (the
    /// default) for one per core, 0 for none (then only remote workers serve). A local worker
    /// that dies is started again for as long as the Cluster lives, with a backoff after 3
    /// quick deaths (see respawn_max_delay). With local workers, main() must call dtask::init
    /// first: the constructor throws if it has not.
    int local_workers = -1;
    /// The longest a local worker that died is waited for before it is started again: after
    /// 3 deaths in a row replaced at once, the wait starts at 100 ms and doubles up to this.
    /// A worker that lived 10 s ends the row. From 1 ms to 1 hour. Default 30 s.
    std::chrono::milliseconds respawn_max_delay{std::chrono::seconds(30)};
    /// Endpoints to listen on for workers on other machines, such as "tcp://0.0.0.0:5555", or
    /// "tcp://127.0.0.1:*" for a free port (read it back with endpoints()). Empty: the
    /// cluster listens only on a private local socket that other machines cannot reach.
    /// Every listen endpoint is encrypted and authenticated with CurveZMQ: a worker joins
    /// with the join token (join_token()), a client with client_token(). Default: empty.
    std::vector<std::string> listen{};
    /// Plain TCP on the listen endpoints instead: no encryption, no authentication, anyone
    /// who reaches them joins, reads the jobs' data and can return wrong results. Only for
    /// a network you trust entirely; a warning says so at start. Default off.
    bool insecure_tcp = false;
    /// A directory for the broker's key and the tokens, so that they outlast this Cluster:
    /// remote workers of a host that restarts keep their token. Created owner-only (0700,
    /// files 0600) if missing; refused if group or others can reach it, or if another
    /// broker runs with it. Empty: new keys and tokens for each Cluster, kept in memory.
    std::string keys_directory{};
    /// Batches of subtasks a local worker may hold at once: one running, the rest queued
    /// behind it so that the worker never waits for the broker between two batches. 0:
    /// automatic, sized by the broker from how fast the worker finishes batches (2 for
    /// batches of a millisecond or more, up to 256 for tiny ones). n: at most n.
    unsigned worker_credits = 0;
    /// How often broker and workers show each other they are alive; must be positive.
    /// Default 250 ms.
    std::chrono::milliseconds heartbeat_interval{250};
    /// Missed heartbeats after which a peer counts as gone; default 5. With the defaults a
    /// dead or frozen worker is noticed within 1.5 s (silent for 1.25 s, seen at the next
    /// beat). Raise both for workers on slow or lossy links.
    unsigned heartbeat_liveness = 5;
    /// Heartbeats the broker sends each second at most, for a Cluster that many remote
    /// workers join: past 600 (150 peers at 250 ms), the interval doubles as peers join, up to
    /// 32 times, and the time to notice a frozen peer grows with it (docs/deployment.md). A
    /// peer whose connection closes is noticed within two beats whatever the interval. 0: no
    /// bound. Default 600.
    unsigned heartbeats_per_second = 600;
    /// Bytes of shared data (share()) the broker keeps for one client at most: a job that
    /// would take it past this fails, naming this option. 0: no bound. Default 4 GiB.
    std::size_t shared_bytes_per_client = std::size_t{4} << 30;
    /// The subtask timeout of a job that sets no RunOptions::subtask_timeout, for every
    /// client of this broker (remote ones too): a map past it restarts its worker, as with
    /// subtask_timeout. 0 (the default): none, since the host's own jobs are trusted and a
    /// long map is legitimate; set it when untrusted clients submit (dtaskd's default is 1 h).
    std::chrono::milliseconds max_subtask_time{0};
    /// The largest message frame the broker takes on its listen endpoints: a larger one is
    /// refused by ZeroMQ before it is read, and its peer disconnected. Jobs whose job-wide
    /// data, shared data or one batch of subtasks would be larger fail with an error naming
    /// this option (docs/reliability.md). Local workers and this process's own client are
    /// not bounded. 0: no bound. Default 256 MiB.
    std::size_t max_message_bytes = std::size_t{256} << 20;
    // ---- limits on each client other than this Cluster's own (remote dtask::Clients, which
    // are less trusted than the host's own jobs, which have none), as dtaskd's: a job past
    // one fails with a LimitError naming it, and the client's other jobs go on ----

    /// Jobs one remote client may have at once. 0: no bound. Default 256.
    std::size_t max_jobs_per_client = 256;
    /// Bytes of a remote client's job's own job-wide data (submit's shared argument; share()
    /// objects count against shared_bytes_per_client instead). 0: no bound. Default 256 MiB.
    std::size_t max_job_data_bytes = std::size_t{256} << 20;
    /// Bytes of one remote client's subtasks waiting in the broker for workers: a task batch
    /// past it fails its job. A job within its RunOptions::window_bytes (32 MiB by default)
    /// keeps at most that much there, so an honest client is refused only with over 128 jobs
    /// all waiting with full windows. 0: no bound. Default 4 GiB.
    std::size_t max_queued_bytes_per_client = std::size_t{4} << 30;

    // ---- observability (docs/observability.md) ----

    /// Serve the dashboard, /api/status and /metrics on this address, PORT or HOST:PORT
    /// (HOST 127.0.0.1 if not given; port 0 for a free one, read back with http_url()).
    /// Empty (the default): off, and the broker keeps no statistics. Needs the program to
    /// link dtask::http (target_link_libraries(app PRIVATE dtask::http)); without it the
    /// Cluster refuses to start, saying so.
    std::string http{};
    /// Let `http` be an address beyond loopback. Every request then needs the monitoring
    /// token (monitor_token()), which plain HTTP sends in clear: prefer an SSH tunnel.
    /// Default off.
    bool http_allow_remote = false;
};

/// A broker in this process, with local worker processes and room for workers on other
/// machines. The local workers are this binary started again, which is why main() must call
/// init() first; with ClusterOptions::listen, workers and clients on other machines join
/// too. run(), submit() and share() come from Submitter. One per
/// program is the rule: create it in main() after init(), and keep it while jobs run. The
/// broker runs on a thread of its own, the client on an I/O thread and a small pool for
/// split and reduce (see Job); all its members may be called from any thread.
class DTASK_EXPORT Cluster final : public Submitter {
public:
    /// Starts the broker and the local workers. Returns once the broker listens; the local
    /// workers join in the background (see wait_for_workers), and jobs submitted meanwhile
    /// wait for them. Throws TransportError if an endpoint cannot be bound,
    /// JobDefinitionError if two jobs share a name, Error for invalid options, local workers
    /// in a process that has not called init(), a keys_directory that group or others can
    /// reach or that another broker uses, or `http` without dtask::http linked.
    explicit Cluster(ClusterOptions options = {});
    /// Fails the jobs still running with an Error, waits for a reduce or on_progress under
    /// way to return, then stops and reaps the local workers. Remote workers are dismissed:
    /// they exit with status 0 (one that misses it leaves after its give-up time, init()'s
    /// `--dtask-give-up`).
    ~Cluster();

    /// Every endpoint the broker listens on, ports resolved: the private local one first.
    const std::vector<std::string>& endpoints() const;
    /// The credential a worker on another machine joins with: give it to the worker in
    /// DTASK_TOKEN or a file named by DTASK_TOKEN_FILE (not on its command line, where `ps`
    /// shows it). Empty without listen endpoints or with insecure_tcp. New for each Cluster
    /// unless ClusterOptions::keys_directory keeps it.
    const std::string& join_token() const;
    /// The credential a dtask::Client elsewhere submits jobs with (ClientOptions::token).
    /// Empty without listen endpoints or with insecure_tcp.
    const std::string& client_token() const;
    /// Workers connected now, local and remote: fewer than local_workers at first, while
    /// they start.
    std::size_t workers() const override;
    /// Blocks until at least `count` workers are connected; false if `timeout` passes first.
    /// Jobs do not need it (they wait for workers themselves); it is for a program that
    /// wants its SplitHint to count remote workers, or prints who joined.
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;
    /// Process ids of the local workers alive now (a restarted worker has a new one).
    std::vector<pid_t> local_worker_pids() const;
    /// "http://HOST:PORT/" of the HTTP endpoint (ClusterOptions::http); empty if it is off.
    const std::string& http_url() const;
    /// The read-only credential of the HTTP endpoint beyond loopback, sent as
    /// "Authorization: Bearer TOKEN"; kept in keys_directory/monitor.token if there is one,
    /// else new for each Cluster. Empty unless http_allow_remote.
    const std::string& monitor_token() const;

private:
    void enqueue(std::shared_ptr<detail::RunState> run) override;
    void run_to_end(std::shared_ptr<detail::RunState> run) override;
    std::size_t planned_workers() const override;
    std::shared_ptr<detail::SharedObject> make_shared_object(std::string bytes) override;

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dtask
