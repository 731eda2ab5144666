#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include <unistd.h>

#include <dtask/cluster.hpp>
#include <dtask/error.hpp>

#include "broker/broker.hpp"
#include "client/client_core.hpp"
#include "http/http_service.hpp"
#include "job_registry.hpp"
#include "private_socket.hpp"
#include "process.hpp"
#include "security/join_token.hpp"
#include "security/key_store.hpp"
#include "security/monitor_token.hpp"
#include "thread_start.hpp"
#include "worker/worker.hpp"

namespace dtask {

/// A Cluster's credentials: a broker key and one token per role, new for each Cluster or
/// kept in its keys directory.
struct ClusterKeys {
    explicit ClusterKeys(const ClusterOptions& options) {
        if (options.http_allow_remote) {
            if (!options.keys_directory.empty()) {
                kept = std::make_unique<detail::BrokerKeys>(options.keys_directory);
                monitor_token = kept->store().monitor_token();
            } else {
                monitor_token = detail::new_monitor_token();
            }
        }
        if (options.listen.empty() || options.insecure_tcp)
            return;
        if (!options.keys_directory.empty()) {
            if (!kept)
                kept = std::make_unique<detail::BrokerKeys>(options.keys_directory);
            broker.secret_key = kept->store().broker_secret_key();
            worker = kept->store().token(detail::TokenRole::worker);
            client = kept->store().token(detail::TokenRole::client);
        } else {
            broker = detail::new_curve_keys();
            worker = detail::new_join_token(detail::TokenRole::worker, broker.public_key);
            client = detail::new_join_token(detail::TokenRole::client, broker.public_key);
        }
        worker_token = worker.text();
        client_token = client.text();
    }
    std::unique_ptr<detail::BrokerKeys> kept;  // holds the directory's lock
    detail::CurveKeys broker;
    detail::JoinToken worker;
    detail::JoinToken client;
    std::string worker_token;
    std::string client_token;
    std::string monitor_token;  // with http_allow_remote only
};

/// The Cluster's HTTP endpoint, if ClusterOptions::http asks for one: checked before the
/// broker starts, started after it.
std::unique_ptr<detail::HttpService> start_http(const ClusterOptions& options,
                                                const std::string& token, detail::Broker& broker) {
    if (options.http.empty())
        return nullptr;
    const auto factory = detail::http_service_factory();
    if (factory == nullptr)
        throw Error(
            "dtask: ClusterOptions::http is set, but this program does not link dtask's "
            "HTTP endpoint: add target_link_libraries(YOUR_TARGET PRIVATE dtask::http) (from "
            "an installed dtask: find_package(dtask COMPONENTS http))");
    return factory(detail::HttpServiceOptions{options.http, options.http_allow_remote, token},
                   [&broker] { return broker.status(); });
}

struct Cluster::Impl {
    explicit Impl(const ClusterOptions& options)
        : keys(options),
          local_workers(options.local_workers < 0
                            ? std::max(1u, std::thread::hardware_concurrency())
                            : static_cast<unsigned>(options.local_workers)),
          broker(context, broker_options(options, local_workers)),
          client(context,
                 detail::ClientCoreOptions{.endpoint = inproc,
                                           .heartbeat_interval = options.heartbeat_interval,
                                           .heartbeat_liveness = options.heartbeat_liveness,
                                           .same_process = true,
                                           .worker_count = [this] { return broker.workers(); },
                                           .token = std::nullopt}) {
        http = start_http(options, keys.monitor_token, broker);
        broker.start();
    }

    detail::BrokerOptions broker_options(const ClusterOptions& options, unsigned worker_count) {
        detail::BrokerOptions settings;
        settings.inproc_endpoint = inproc;
        settings.private_endpoint = private_socket.endpoint();
        settings.endpoints = options.listen;
        settings.security.curve = !options.insecure_tcp;
        settings.security.secret_key = keys.broker.secret_key;
        settings.security.admitted = {keys.worker.credential.public_key,
                                      keys.client.credential.public_key};
        settings.local_workers = worker_count;
        settings.local_worker_credits =
            options.worker_credits == 0 ? detail::default_worker_credits : options.worker_credits;
        settings.heartbeat_interval = options.heartbeat_interval;
        settings.heartbeat_liveness = std::max(1u, options.heartbeat_liveness);
        settings.heartbeats_per_second = options.heartbeats_per_second;
        settings.local_worker_respawn.max_delay = options.respawn_max_delay;
        settings.shared_bytes_per_client = options.shared_bytes_per_client;
        settings.client_limits = {options.max_jobs_per_client, options.max_job_data_bytes,
                                  options.max_queued_bytes_per_client};
        settings.max_subtask_time =
            std::max(options.max_subtask_time, std::chrono::milliseconds(0));
        settings.max_message_bytes = options.max_message_bytes;
        settings.statistics = !options.http.empty();
        return settings;
    }

    ClusterKeys keys;
    unsigned local_workers;
    // The cluster's own client talks to the broker in memory, through the context they
    // share (an inproc name is private to its context).
    std::string inproc = "inproc://dtask-broker";
    // The local workers' endpoint, reachable by this user only. Declared before the context:
    // its directory goes after the context has closed the socket bound in it.
    detail::PrivateSocket private_socket;
    zmq::context_t context{1};
    detail::Broker broker;
    detail::ClientCore client;
    std::unique_ptr<detail::HttpService> http;  // before the broker it reads goes
};

Cluster::Cluster(ClusterOptions options) {
    detail::exit_if_local_worker("a Cluster");
    if (detail::is_local_worker())
        throw Error(
            "dtask: a Cluster cannot be created in a local worker's map: it would start "
            "workers of its own");
    detail::require_init_for_local_workers(options.local_workers);
    detail::check_registry();
    if (options.heartbeat_interval.count() <= 0)
        throw Error("dtask: ClusterOptions::heartbeat_interval must be positive");
    if (options.respawn_max_delay < std::chrono::milliseconds(1) ||
        options.respawn_max_delay > std::chrono::hours(1))
        throw Error("dtask: ClusterOptions::respawn_max_delay must be from 1 ms to 1 hour, not " +
                    std::to_string(options.respawn_max_delay.count()) + " ms");
    detail::check_threads_start("a Cluster");
    impl_ = std::make_unique<Impl>(options);
}

Cluster::~Cluster() {
    // Jobs first (they fail with a clear error), then the broker and its workers.
    impl_->client.stop("the Cluster was destroyed while the job ran");
    impl_->http.reset();
    impl_->broker.stop();
}

const std::vector<std::string>& Cluster::endpoints() const {
    return impl_->broker.endpoints();
}

const std::string& Cluster::join_token() const {
    return impl_->keys.worker_token;
}

const std::string& Cluster::client_token() const {
    return impl_->keys.client_token;
}

const std::string& Cluster::http_url() const {
    static const std::string none;
    return impl_->http ? impl_->http->url() : none;
}

const std::string& Cluster::monitor_token() const {
    return impl_->keys.monitor_token;
}

std::size_t Cluster::workers() const {
    return impl_->broker.workers();
}

bool Cluster::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    return impl_->broker.wait_for_workers(count, timeout);
}

std::vector<pid_t> Cluster::local_worker_pids() const {
    return impl_->broker.local_worker_pids();
}

void Cluster::enqueue(std::shared_ptr<detail::RunState> run) {
    impl_->client.enqueue(std::move(run));
}

void Cluster::run_to_end(std::shared_ptr<detail::RunState> run) {
    impl_->client.run_here(std::move(run));
}

std::size_t Cluster::planned_workers() const {
    return std::max<std::size_t>({impl_->broker.workers(), impl_->local_workers, 1});
}

std::shared_ptr<detail::SharedObject> Cluster::make_shared_object(std::string bytes) {
    return impl_->client.share(static_cast<const Submitter*>(this), std::move(bytes));
}

}  // namespace dtask
