// The Cluster's local socket (src/private_socket.hpp): another user can neither connect to it
// nor serve as a worker through it; its directory goes with the Cluster, and one left by a
// host killed outright goes at the next start, while those of live hosts and other users stay.

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

constexpr uid_t nobody = 65534;
// Exit codes of a child that could not become `nobody` or could not run the worker.
constexpr int cannot_switch_user = 99;
constexpr int cannot_exec = 98;

/// A fresh directory in `parent` with `mode`, made TMPDIR (where a Cluster puts its socket
/// directory) for this scope, and removed with everything in it afterwards.
class SocketParent {
public:
    SocketParent(const std::string& parent, mode_t mode) {
        std::string pattern = parent + "/dtask-test-XXXXXX";
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
        REQUIRE(chmod(path_.c_str(), mode) == 0);
        if (const char* old = std::getenv("TMPDIR"))
            old_ = old;
        setenv("TMPDIR", path_.c_str(), 1);
    }
    ~SocketParent() {
        if (old_)
            setenv("TMPDIR", old_->c_str(), 1);
        else
            unsetenv("TMPDIR");
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);  // removes links, never follows them
    }
    SocketParent(const SocketParent&) = delete;
    SocketParent& operator=(const SocketParent&) = delete;

    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    std::optional<std::string> old_;
};

/// The socket's path in an endpoint ipc://PATH.
std::string socket_path(const std::string& endpoint) {
    REQUIRE(endpoint.starts_with("ipc://"));
    return endpoint.substr(6);
}

std::optional<struct stat> lstat_of(const std::string& path) {
    struct stat info {};
    if (lstat(path.c_str(), &info) != 0)
        return std::nullopt;
    return info;
}

/// The socket directory dtask-<pid>-XXXXXX of process `pid` in `parent`, or "".
std::string socket_directory_of(const std::string& parent, pid_t pid) {
    const std::string stem = "dtask-" + std::to_string(pid) + "-";
    for (const auto& entry : std::filesystem::directory_iterator(parent)) {
        if (entry.path().filename().string().starts_with(stem))
            return entry.path().string();
    }
    return {};
}

/// Drops this forked process to uid and gid 65534 without supplementary groups. Only
/// async-signal-safe calls: the parent has other threads.
bool become_nobody() {
    return setgroups(0, nullptr) == 0 && setgid(nobody) == 0 && setuid(nobody) == 0;
}

/// The errno of a connect() to the Unix socket `path` (a leading '@' for the abstract
/// namespace) by a process of uid 65534: 0 if it connected, -1 if it could not switch users.
int connect_errno_as_nobody(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof address.sun_path);
    path.copy(address.sun_path, path.size());
    socklen_t length = sizeof address;
    if (path.starts_with("@")) {
        address.sun_path[0] = '\0';
        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    }
    int result_pipe[2];
    REQUIRE(pipe2(result_pipe, O_CLOEXEC) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int result = -1;
        if (become_nobody()) {
            const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            result = connect(fd, reinterpret_cast<const sockaddr*>(&address), length) == 0
                         ? 0
                         : errno;
        }
        (void)!write(result_pipe[1], &result, sizeof result);
        _exit(0);
    }
    close(result_pipe[1]);
    int result = -2;
    if (poll_readable(result_pipe[0], 30s))
        (void)!read(result_pipe[0], &result, sizeof result);
    close(result_pipe[0]);
    kill(child, SIGKILL);  // nothing if it has exited; never leave it behind
    waitpid(child, nullptr, 0);
    REQUIRE_MESSAGE(result != -2, "the child that connects as uid 65534 did not answer");
    return result;
}

/// This test binary serving `endpoint` as a worker under uid 65534, its output to `log`;
/// killed and reaped when this goes, if it has not exited by then.
class WorkerAsNobody {
public:
    WorkerAsNobody(const std::string& endpoint, const std::string& log) {
        // Everything the child needs is made before fork: after it, only async-signal-safe
        // calls until exec.
        const std::string program = self_executable();
        std::vector<std::string> args{program, "--dtask-worker", endpoint, "--dtask-give-up", "1"};
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        argv.push_back(nullptr);
        const int output = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(output >= 0);
        const pid_t parent = getpid();
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            dup2(output, STDOUT_FILENO);
            dup2(output, STDERR_FILENO);
            if (!become_nobody())
                _exit(cannot_switch_user);
            // After the switch of user, which clears it: die with the test.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent || chdir("/") != 0)
                _exit(cannot_exec);
            execv(program.c_str(), argv.data());
            _exit(cannot_exec);
        }
        close(output);
        pidfd_ = open_pidfd(pid_);
        if (pidfd_ < 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        REQUIRE(pidfd_ >= 0);
    }
    ~WorkerAsNobody() {
        if (!status_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        close(pidfd_);
    }
    WorkerAsNobody(const WorkerAsNobody&) = delete;
    WorkerAsNobody& operator=(const WorkerAsNobody&) = delete;

    /// Its wait status once it has exited, within `timeout`; nullopt if it still runs.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        if (!status_ && poll_readable(pidfd_, timeout)) {
            int status = 0;
            if (waitpid(pid_, &status, 0) == pid_)
                status_ = status;
        }
        return status_;
    }

private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> status_;
};

}  // namespace

TEST_CASE("PrivateSocket.another_user_can_neither_connect_nor_serve" * doctest::timeout(120)) {
    if (geteuid() != 0) {
        skip_test("only root can start a process as another user (uid 65534)");
        return;
    }
    // The Cluster's directory in one that every user may pass through, as /tmp: so the
    // Cluster's own protection is what is tested, not that of the test's scratch directory.
    SocketParent parent("/tmp", 0755);
    dtask::Cluster cluster(small_cluster(0));
    const std::string endpoint = cluster.endpoints().front();

    // A plain connect() by another user is refused by the kernel...
    const int connect_errno = connect_errno_as_nobody(socket_path(endpoint));
    if (connect_errno == -1) {
        skip_test("this process may not switch to uid 65534");
        return;
    }
    CHECK_MESSAGE(connect_errno == EACCES,
                  "connect() as uid 65534: " << (connect_errno == 0 ? std::string("connected")
                                                                     : std::strerror(connect_errno)));

    // ...and a worker of another user never reaches the broker: with nothing heard from it,
    // it gives up (status 4). One that had joined would hear heartbeats and serve on.
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    WorkerAsNobody intruder(endpoint, log);
    const auto status = intruder.wait_exit(60s);
    REQUIRE_MESSAGE(status.has_value(), "the worker of uid 65534 still serves: it joined\n"
                                            << read_file(log));
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == cannot_exec) {
        skip_test("uid 65534 cannot run " + self_executable());
        return;
    }
    CHECK_MESSAGE(WIFEXITED(*status), read_file(log));
    CHECK_MESSAGE(WEXITSTATUS(*status) == 4, read_file(log));
    CHECK(contains(read_file(log), "giving up"));
    CHECK(cluster.workers() == 0);

    // The same worker as this user joins through the same endpoint.
    Process worker(self_executable(), {"--dtask-worker", endpoint});
    CHECK(cluster.wait_for_workers(1, 30s));
}

TEST_CASE("PrivateSocket.the_directory_goes_with_the_cluster" * doctest::timeout(120)) {
    SocketParent parent(temp_directory(), 0700);
    std::string directory;
    {
        dtask::Cluster cluster(small_cluster(1));
        REQUIRE(cluster.wait_for_workers(1, 30s));
        CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
        const std::string path = socket_path(cluster.endpoints().front());
        directory = std::filesystem::path(path).parent_path().string();
        CHECK(directory == socket_directory_of(parent.path(), getpid()));
        const auto info = lstat_of(directory);
        REQUIRE(info.has_value());
        CHECK(S_ISDIR(info->st_mode));
        CHECK((info->st_mode & 07777) == 0700);  // only its owner may enter
        CHECK(info->st_uid == geteuid());
        const auto socket = lstat_of(path);
        REQUIRE(socket.has_value());
        CHECK(S_ISSOCK(socket->st_mode));
    }
    CHECK_FALSE(lstat_of(directory).has_value());
    CHECK(std::filesystem::is_empty(parent.path()));
}

TEST_CASE("PrivateSocket.too_long_a_TMPDIR_falls_back_to_tmp" * doctest::timeout(60)) {
    SocketParent parent(temp_directory(), 0700);
    const std::string deep = parent.path() + "/" + std::string(100, 'd');
    REQUIRE(mkdir(deep.c_str(), 0700) == 0);
    setenv("TMPDIR", deep.c_str(), 1);  // SocketParent puts the old value back
    std::string directory;
    {
        dtask::Cluster cluster(small_cluster(0));
        directory = std::filesystem::path(socket_path(cluster.endpoints().front())).parent_path();
        CHECK(directory.starts_with("/tmp/dtask-" + std::to_string(getpid()) + "-"));
    }
    CHECK_FALSE(lstat_of(directory).has_value());
}

TEST_CASE("PrivateSocket.a_killed_host_s_directory_goes_at_the_next_start" *
          doctest::timeout(120)) {
    SocketParent parent(temp_directory(), 0700);  // TMPDIR of the hosts started here too
    Process killed(helpers_directory() + "/host_that_waits", {}, "|");
    Process alive(helpers_directory() + "/host_that_waits", {}, "|");
    std::vector<pid_t> killed_workers;
    for (Process* host : {&killed, &alive}) {
        const auto line = host->read_line(30s);  // its Cluster runs, with its workers
        REQUIRE(line.has_value());
        if (host == &killed) {
            std::istringstream pids(*line);
            for (pid_t pid = 0; pids >> pid;)
                killed_workers.push_back(pid);
        }
    }
    const std::string stale = socket_directory_of(parent.path(), killed.pid());
    const std::string live = socket_directory_of(parent.path(), alive.pid());
    REQUIRE(!stale.empty());
    REQUIRE(!live.empty());
    const pid_t dead = killed.pid();
    killed.kill_and_reap();
    for (pid_t pid : killed_workers)
        REQUIRE_MESSAGE(wait_gone(pid, 10s), "worker " << pid << " outlived its host");
    REQUIRE(lstat_of(stale).has_value());  // a host killed outright cannot clean up

    // Look-alikes named for the dead host, which the sweep must leave: a symbolic link to a
    // directory of ours, a directory whose socket someone listens on (a host in another pid
    // namespace), and, as root, another user's directory.
    const std::string dead_stem = parent.path() + "/dtask-" + std::to_string(dead) + "-";
    const std::string target = parent.path() + "/target";
    REQUIRE(mkdir(target.c_str(), 0700) == 0);
    REQUIRE(close(open((target + "/kept").c_str(), O_WRONLY | O_CREAT, 0600)) == 0);
    REQUIRE(symlink(target.c_str(), (dead_stem + "linked").c_str()) == 0);
    const std::string listening = dead_stem + "listen";
    REQUIRE(mkdir(listening.c_str(), 0700) == 0);
    zmq::context_t context(1);
    zmq::socket_t listener(context, zmq::socket_type::router);
    listener.set(zmq::sockopt::linger, 0);
    listener.bind("ipc://" + listening + "/broker");
    const std::string others = dead_stem + "others";
    const bool root = geteuid() == 0;
    if (root) {
        REQUIRE(mkdir(others.c_str(), 0700) == 0);
        REQUIRE(chown(others.c_str(), nobody, nobody) == 0);
    }

    {
        dtask::Cluster cluster(small_cluster(0));
        CHECK_FALSE(lstat_of(stale).has_value());
        CHECK(lstat_of(live).has_value());
        const auto link = lstat_of(dead_stem + "linked");
        CHECK((link.has_value() && S_ISLNK(link->st_mode)));
        CHECK(lstat_of(target + "/kept").has_value());
        CHECK(lstat_of(listening + "/broker").has_value());
        if (root)
            CHECK(lstat_of(others).has_value());
    }
}
