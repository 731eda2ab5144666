#include "worker/worker_pulse.hpp"

#include <cstdio>
#include <cstdlib>

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "log.hpp"
#include "security/handshake_watch.hpp"
#include "thread_name.hpp"
#include "wire/protocol.hpp"
#include "worker/worker.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = PulseShared::Clock;

Pulse::Pulse(zmq::context_t& context, std::string endpoint, const std::optional<JoinToken>& token,
             std::string worker_name, int signal_fd, PulseShared& shared,
             std::vector<std::string> argv)
    : socket_(context, zmq::socket_type::dealer),
      worker_name_(std::move(worker_name)),
      signal_fd_(signal_fd),
      shared_(shared),
      argv_(std::move(argv)) {
    tune(socket_);
    if (token)
        use_token(socket_, *token);
    protocol::retry_interrupted([&] { socket_.connect(endpoint); });
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
        throw Error("dtask: cannot create the worker's pulse wake-up event (eventfd)");
    thread_ = std::thread([this] {
        name_this_thread("dtask-pulse");
        try {
            run();
        } catch (const std::exception& e) {
            log_warning("worker", worker_name_, std::string("pulse thread stopped: ") + e.what());
        }
    });
}

Pulse::~Pulse() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
    thread_.join();
    close(wake_fd_);
}

void Pulse::run() {
    std::vector<zmq::message_t> ignored;
    for (;;) {
        const auto interval = std::chrono::milliseconds(shared_.interval_ms.load());
        const auto running = shared_.watch.running();
        auto now = Clock::now();
        auto wait = interval;
        if (running)
            wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(
                                      std::max(running->deadline - now, Clock::duration{0})));
        if (abandoned_)
            wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(
                                      std::max(abandoned_->deadline - now, Clock::duration{0})));
        // The signals are the main thread's while it is free to read them.
        const bool busy = shared_.busy.load();
        std::array<zmq::pollitem_t, 3> items{{{nullptr, wake_fd_, ZMQ_POLLIN, 0},
                                              {socket_.handle(), 0, ZMQ_POLLIN, 0},
                                              {nullptr, busy ? signal_fd_ : -1, ZMQ_POLLIN, 0}}};
        protocol::poll(items, wait);
        if (items[0].revents & ZMQ_POLLIN)
            return;
        while (receive(socket_, ignored, false)) {
            try {
                if (const Inbound told = parse(ignored, 0); told.command == Command::end)
                    on_job_ended(told.fields[0], Clock::now());
            } catch (const ProtocolError&) {
            }
        }
        if (signal_fd_ >= 0 && (items[2].revents & ZMQ_POLLIN)) {
            signalfd_siginfo info{};
            if (read(signal_fd_, &info, sizeof info) == sizeof info)
                leave();
        }
        now = Clock::now();
        if (const auto hung = shared_.watch.running(); hung && now >= hung->deadline)
            report_hung(*hung);
        if (abandoned_ && !shared_.running(abandoned_->job))
            abandoned_.reset();  // its map returned, and the rest of the batch was skipped
        if (abandoned_ && now >= abandoned_->deadline) {
            Failure failure;
            failure.kind = FailureKind::timeout;
            failure.worker = worker_name_;
            failure.message = "a subtask of job " + std::to_string(abandoned_->job) +
                              " still ran " + std::to_string(ended_job_grace.count()) +
                              " s after the job ended, on worker " + worker_name_;
            restart_after(abandoned_->job, shared_.batch_first.load(), failure,
                          "its results are of no use");
        }
        if (shared_.busy.load() && now - shared_.last_sent_at() >= interval) {
            send_pulse(0);
            shared_.note_sent();
        }
    }
}

void Pulse::send_pulse(std::uint64_t kind) {
    std::array frames{header(Command::pulse, {kind}), text_frame(shared_.current_routing_id())};
    send(socket_, {}, frames);
}

void Pulse::on_job_ended(std::uint64_t job, Clock::time_point now) {
    shared_.ended_job.store(job, std::memory_order_relaxed);
    shared_.has_ended.store(true, std::memory_order_release);
    if (shared_.running(job) && !(abandoned_ && abandoned_->job == job))
        abandoned_ = Abandoned{job, now + ended_job_grace};
}

void Pulse::report_hung(const SubtaskWatch::Running& hung) {
    Failure failure;
    failure.kind = FailureKind::timeout;
    failure.worker = worker_name_;
    failure.message = "subtask " + std::to_string(hung.index) + " ran longer than its " +
                      "timeout of " + std::to_string(hung.timeout.count()) + " ms on worker " +
                      worker_name_;
    restart_after(hung.job, hung.index, failure, "");
}

void Pulse::restart_after(std::uint64_t job, std::uint64_t index, const Failure& failure,
                          const std::string& why) {
    log_warning("worker", worker_name_,
                failure.message + (why.empty() ? "" : " (" + why + ")") +
                    "; restarting this worker process (a thread stuck in map cannot be stopped)");
    std::array frames{header(Command::hung, {job, index}), text_frame(shared_.current_routing_id()),
                      encode_body(failure)};
    send(socket_, {}, frames);
    // The broker answers bye once it has taken the report; without that, a restart could
    // drop the report with the socket.
    const auto give_up_at = Clock::now() + std::chrono::seconds(2);
    std::vector<zmq::message_t> reply;
    for (auto now = Clock::now(); now < give_up_at; now = Clock::now()) {
        std::array<zmq::pollitem_t, 1> item{{{socket_.handle(), 0, ZMQ_POLLIN, 0}}};
        protocol::poll(item,
                       std::chrono::duration_cast<std::chrono::milliseconds>(give_up_at - now));
        bool acknowledged = false;
        while (receive(socket_, reply, false)) {
            try {
                acknowledged = acknowledged || parse(reply, 0).command == Command::bye;
            } catch (const ProtocolError&) {
            }
        }
        if (acknowledged)
            break;
    }
    restart_process(argv_);
}

void Pulse::leave() {
    try {
        send_pulse(1);
        // The message must leave before the process ends; ZeroMQ's linger (200 ms) waits
        // for it when the context closes, which _Exit skips: give it that long here.
        std::array<zmq::pollitem_t, 1> none{{{nullptr, wake_fd_, ZMQ_POLLIN, 0}}};
        protocol::poll(none, std::chrono::milliseconds(100));
    } catch (...) {
    }
    end_worker_process(worker_done);
}

}  // namespace dtask::detail
