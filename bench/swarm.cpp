// dtask_swarm: many worker connections in one process, for the many_workers scenario of
// dtask_perf. Each connection is a worker as the broker sees it: its own routing id and
// CurveZMQ handshake, a hello with credits, heartbeats after an interval of silence, a second
// (pulse) connection as a real worker opens, and results computed by the workers' own batch
// runner from the jobs this binary registers. One thread serves them all, so the broker's
// cost is measured apart from the CPU of a thousand worker processes.
//
//   DTASK_TOKEN=<worker token> dtask_swarm PARENT_PID ENDPOINT COUNT
//
// Prints "welcomed N MS" once every connection has its welcome (MS from the start), then
// "lapse ID" for each connection that heard nothing from the broker for its whole silence,
// where a real worker would reconnect, and "pace MS" when a welcome or pace gives a new
// heartbeat interval. Runs until killed; dies with its parent.

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <zmq.hpp>

#include "job_registry.hpp"
#include "perf_jobs.hpp"  // the jobs whose subtasks the swarm runs
#include "security/handshake_watch.hpp"
#include "security/join_token.hpp"
#include "wire/liveness.hpp"
#include "wire/protocol.hpp"
#include "worker/batch_runner.hpp"
#include "worker/worker_pulse.hpp"

namespace {

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using Clock = std::chrono::steady_clock;

/// One worker connection (and its idle pulse connection).
struct Member {
    Member(zmq::context_t& context, const std::string& endpoint, const JoinToken& token,
           const std::string& name)
        : socket(context, zmq::socket_type::dealer),
          pulse(context, zmq::socket_type::dealer),
          runner(socket, name, shared) {
        for (zmq::socket_t* each : {&socket, &pulse}) {
            tune(*each);
            use_token(*each, token);
        }
        const std::string id = random_routing_id('w');
        socket.set(zmq::sockopt::routing_id, id);
        shared.set_routing_id(id);
        socket.connect(endpoint);
        pulse.connect(endpoint);
    }

    zmq::socket_t socket;
    zmq::socket_t pulse;
    PulseShared shared;
    BatchRunner runner;
    Liveness liveness{std::chrono::milliseconds(250), 5};
    Clock::time_point last_heard = Clock::now();
    bool welcomed = false;
    bool lapsed = false;
};

/// Prints the heartbeat interval `member` was given (in a welcome or a pace) if it is not the
/// one printed last.
void note_interval(const Member& member, std::uint64_t& printed) {
    const auto interval = static_cast<std::uint64_t>(member.liveness.interval().count());
    if (interval == printed)
        return;
    printed = interval;
    std::printf("pace %llu\n", static_cast<unsigned long long>(interval));
    std::fflush(stdout);
}

/// Handles one message from the broker; false if the swarm must stop (refused).
bool on_message(Member& member, std::vector<zmq::message_t>& frames, Clock::time_point now,
                std::size_t& welcomed, std::uint64_t& paced) {
    Inbound message = parse(frames, 0);
    switch (message.command) {
        case Command::welcome:
            member.liveness.adopt(message);
            note_interval(member, paced);
            member.runner.set_max_message(message.fields[2]);
            if (!member.welcomed)
                ++welcomed;
            member.welcomed = true;
            return true;
        case Command::pace:
            member.liveness.set_interval(std::chrono::milliseconds(message.fields[0]));
            note_interval(member, paced);
            return true;
        case Command::job:
            member.runner.open_job(message);
            return true;
        case Command::task:
            member.runner.run_batch(message, now);
            return true;
        case Command::end:
            member.runner.end_job(message.fields[0]);
            return true;
        case Command::refuse:
            std::printf("refused %s\n", std::string(as_text(message.body[0])).c_str());
            return false;
        default:
            return true;  // heartbeats, revokes, notices: nothing to do
    }
}

int run(const std::string& endpoint, std::size_t count) {
    const char* token_text = std::getenv("DTASK_TOKEN");
    if (token_text == nullptr)
        throw std::runtime_error("DTASK_TOKEN holds no worker token");
    const JoinToken token = parse_join_token(token_text);
    const auto start = Clock::now();
    zmq::context_t context(1);
    context.set(zmq::ctxopt::max_sockets, static_cast<int>(2 * count + 16));
    std::vector<std::unique_ptr<Member>> members;
    const std::vector<std::pair<std::string, std::string>> jobs = registered_jobs();
    for (std::size_t i = 0; i < count; ++i) {
        const std::string name = "swarm-" + std::to_string(getpid()) + "-" + std::to_string(i);
        auto& member =
            members.emplace_back(std::make_unique<Member>(context, endpoint, token, name));
        Hello hello;
        hello.role = Role::worker;
        hello.name = name;
        hello.platform = platform();
        hello.credits = 4;
        hello.pid = getpid();
        hello.jobs = jobs;
        std::array frames{hello_header(), encode_body(hello)};
        send(member->socket, {}, frames);
        member->shared.note_sent();
    }

    std::vector<zmq::pollitem_t> items;
    for (auto& member : members)
        items.push_back({member->socket.handle(), 0, ZMQ_POLLIN, 0});
    std::size_t welcomed = 0;
    std::uint64_t paced = 250;  // the interval last printed
    bool told = false;
    std::vector<zmq::message_t> frames;
    for (;;) {
        Clock::time_point next = Clock::now() + std::chrono::seconds(1);
        for (auto& member : members)
            next = std::min(next, member->shared.last_sent_at() + member->liveness.interval());
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
        poll(items, std::max(wait, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1));
        const auto now = Clock::now();
        for (std::size_t i = 0; i < members.size(); ++i) {
            Member& member = *members[i];
            if (items[i].revents == 0)
                continue;
            while (receive(member.socket, frames, false)) {
                member.last_heard = now;
                member.lapsed = false;
                if (!on_message(member, frames, now, welcomed, paced))
                    return 2;
            }
        }
        for (auto& member : members) {
            if (now >= member->shared.last_sent_at() + member->liveness.interval()) {
                std::array beat{header(Command::heartbeat)};
                send(member->socket, {}, beat);
                member->shared.note_sent(now);
            }
            if (member->welcomed && !member->lapsed &&
                now - member->last_heard > member->liveness.silence()) {
                member->lapsed = true;
                std::printf("lapse %s\n", member->shared.current_routing_id().c_str());
                std::fflush(stdout);
            }
        }
        if (!told && welcomed == count) {
            told = true;
            std::printf(
                "welcomed %zu %lld\n", count,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)
                        .count()));
            std::fflush(stdout);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: DTASK_TOKEN=TOKEN dtask_swarm PARENT_PID ENDPOINT COUNT\n");
        return 2;
    }
    // Dies with the benchmark that started it (a parent of 0: started by hand).
    if (const auto parent = static_cast<pid_t>(std::atol(argv[1])); parent != 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            return 1;
    }
    try {
        check_registry();
        return run(argv[2], static_cast<std::size_t>(std::atol(argv[3])));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtask_swarm: %s\n", e.what());
        return 1;
    }
}
