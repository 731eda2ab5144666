#include <algorithm>

#include <dtask/client.hpp>
#include <dtask/detail/job_model.hpp>

#include "client/client_core.hpp"

namespace dtask {

struct Client::Impl {
    Impl(std::string endpoint_, const ClientOptions& options)
        : endpoint(std::move(endpoint_)),
          core(context, detail::ClientCoreOptions{.endpoint = endpoint,
                                                  .heartbeat_interval = options.heartbeat_interval,
                                                  .heartbeat_liveness = options.heartbeat_liveness,
                                                  .same_process = false,
                                                  .worker_count = {}}) {}

    std::string endpoint;
    zmq::context_t context{1};
    detail::ClientCore core;
};

Client::Client(std::string endpoint, ClientOptions options) {
    detail::check_registry();
    if (options.heartbeat_interval.count() <= 0 || options.heartbeat_liveness == 0)
        throw Error("dtask::Client: heartbeat_interval and heartbeat_liveness must be positive");
    if (endpoint.empty())
        throw Error("dtask::Client: the broker's endpoint is empty (e.g. tcp://host:5555)");
    impl_ = std::make_unique<Impl>(std::move(endpoint), options);
}

Client::~Client() {
    impl_->core.stop("the Client was destroyed while the job ran");
}

const std::string& Client::endpoint() const noexcept {
    return impl_->endpoint;
}

std::size_t Client::workers() const {
    return impl_->core.workers();
}

bool Client::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    return impl_->core.wait_for_workers(count, timeout);
}

void Client::enqueue(std::shared_ptr<detail::RunState> run) {
    impl_->core.enqueue(std::move(run));
}

std::size_t Client::planned_workers() const {
    return std::max<std::size_t>(impl_->core.workers(), 1);
}

}  // namespace dtask
