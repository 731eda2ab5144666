#include <algorithm>

#include <dtask/client.hpp>

#include "client/client_core.hpp"
#include "job_registry.hpp"
#include "process.hpp"
#include "security/join_token.hpp"
#include "thread_start.hpp"

namespace dtask {
namespace {

/// The token's keys, or none for a broker without CurveZMQ: ClientOptions' token, else the
/// environment's (DTASK_TOKEN, DTASK_TOKEN_FILE).
std::optional<detail::JoinToken> client_token(const std::string& endpoint,
                                              const ClientOptions& options) {
    if (options.insecure_tcp)
        return std::nullopt;  // the environment is not read
    return detail::token_for(
        endpoint, options.token.empty() ? detail::token_from_environment() : options.token, false,
        "dtask::Client: the broker at " + endpoint +
            " needs a client token: ClientOptions::token, or DTASK_TOKEN / DTASK_TOKEN_FILE in "
            "the environment ('dtaskd tokens' prints it; insecure_tcp for a broker without "
            "encryption)");
}

}  // namespace

struct Client::Impl {
    Impl(std::string endpoint_, const ClientOptions& options)
        : endpoint(std::move(endpoint_)),
          core(context, detail::ClientCoreOptions{.endpoint = endpoint,
                                                  .heartbeat_interval = options.heartbeat_interval,
                                                  .heartbeat_liveness = options.heartbeat_liveness,
                                                  .same_process = false,
                                                  .worker_count = {},
                                                  .token = client_token(endpoint, options),
                                                  .restart_grace = options.broker_restart_grace}) {}

    std::string endpoint;
    zmq::context_t context{1};
    detail::ClientCore core;
};

Client::Client(std::string endpoint, ClientOptions options) {
    detail::exit_if_local_worker("a Client");
    detail::check_registry();
    if (options.heartbeat_interval.count() <= 0 || options.heartbeat_liveness == 0)
        throw Error("dtask::Client: heartbeat_interval and heartbeat_liveness must be positive");
    if (options.broker_restart_grace.count() < 0)
        throw Error("dtask::Client: broker_restart_grace must not be negative (0: no wait)");
    if (endpoint.empty())
        throw Error("dtask::Client: the broker's endpoint is empty (e.g. tcp://host:5555)");
    detail::check_threads_start("a Client");
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

std::shared_ptr<detail::SharedObject> Client::make_shared_object(std::string bytes) {
    return impl_->core.share(static_cast<const Submitter*>(this), std::move(bytes));
}

}  // namespace dtask
