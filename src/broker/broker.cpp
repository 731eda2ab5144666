// The broker's facade: binds the socket, runs the loop (BrokerLoop) on its own thread, and
// publishes the number of workers to other threads.

#include "broker/broker.hpp"

#include <string>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "broker/broker_loop.hpp"
#include "thread_name.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

zmq::socket_t make_router(zmq::context_t& context) {
    try {
        zmq::socket_t socket(context, zmq::socket_type::router);
        tune(socket);
        return socket;
    } catch (const zmq::error_t& e) {
        throw TransportError(std::string("dtask: cannot create the broker's socket: ") + e.what());
    }
}

}  // namespace

Broker::Broker(zmq::context_t& context, BrokerOptions options)
    : options_(std::move(options)), socket_(make_router(context)) {
    for (const auto& endpoint : options_.endpoints) {
        try {
            retry_interrupted([&] { socket_.bind(endpoint); });
        } catch (const zmq::error_t& e) {
            throw TransportError("dtask: cannot listen on '" + endpoint + "': " + e.what());
        }
        endpoints_.push_back(socket_.get(zmq::sockopt::last_endpoint));
    }
    if (!options_.inproc_endpoint.empty()) {
        try {
            retry_interrupted([&] { socket_.bind(options_.inproc_endpoint); });
        } catch (const zmq::error_t& e) {
            throw TransportError("dtask: cannot bind '" + options_.inproc_endpoint +
                                 "': " + e.what());
        }
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0)
        throw Error("dtask: cannot create the broker's stop event (eventfd)");
}

Broker::~Broker() {
    stop();
    if (stop_fd_ >= 0)
        close(stop_fd_);
}

void Broker::start() {
    thread_ = std::thread([this] {
        name_this_thread("dtask-broker");
        run();
    });
}

void Broker::run() noexcept {
    BrokerLoop loop(*this);
    loop.run();
    socket_.close();
}

void Broker::stop() {
    if (!thread_.joinable())
        return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(stop_fd_, &one, sizeof one);
    thread_.join();
}

bool Broker::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return workers_changed_.wait_for(lock, timeout, [&] { return worker_count_.load() >= count; });
}

std::vector<pid_t> Broker::local_worker_pids() const {
    std::lock_guard lock(mutex_);
    return local_pids_;
}

}  // namespace dtask::detail
