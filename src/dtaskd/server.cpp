// The running dtaskd: keys, broker, control socket, and a main thread that polls the control
// socket and a signalfd, so that a rotation is answered by the thread that owns the keys.

#include "dtaskd/server.hpp"

#include <iostream>
#include <memory>
#include <span>
#include <string>

#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "dtaskd/control.hpp"
#include "http/http_endpoint.hpp"
#include "log.hpp"
#include "security/key_store.hpp"
#include "wire/protocol.hpp"

namespace dtask::dtaskd {
namespace {

/// SIGINT and SIGTERM as a descriptor: blocked in every thread (the broker's and ZeroMQ's
/// are started after this), read by the main thread's poll.
class StopSignals {
public:
    StopSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);
        fd_ = signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd_ < 0)
            throw Error("dtaskd: cannot create a signalfd for SIGINT and SIGTERM");
    }
    ~StopSignals() { close(fd_); }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    int fd() const noexcept { return fd_; }
    /// The stop signal that came, or 0.
    int received() const {
        signalfd_siginfo info{};
        return read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)
                   ? static_cast<int>(info.ssi_signo)
                   : 0;
    }

private:
    sigset_t set_{};
    int fd_ = -1;
};

/// Raises the soft limit of open descriptors to the hard one: a remote worker holds two (its
/// main and pulse connections), a client one, and the usual soft limit (1,024) is far below
/// what a busy broker needs. Says the figure.
void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    const rlim_t before = limit.rlim_cur;
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            limit.rlim_cur = before;
    }
    const auto figure = [](rlim_t value) {
        return value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(value);
    };
    std::cerr << "dtaskd: open descriptors: at most " << figure(limit.rlim_cur)
              << (limit.rlim_cur != before ? " (raised from " + figure(before) + ")" : "")
              << ", two per remote worker and one per client\n";
}

}  // namespace

int run_server(ServerOptions options) {
    StopSignals stop;
    // A server tells what happens (workers joining and leaving, jobs) unless DTASK_LOG says.
    detail::set_default_log_level(LogLevel::info);
    raise_descriptor_limit();
    // Nothing dtaskd creates is for anyone else: the control socket and key files included.
    umask(077);

    std::unique_ptr<detail::BrokerKeys> broker_keys;
    detail::KeyStore* keys = nullptr;
    // The keys directory holds the monitoring token too, which plain TCP does not make moot.
    if (options.http_allow_remote)
        broker_keys = std::make_unique<detail::BrokerKeys>(options.keys_directory);
    if (options.insecure_tcp) {
        options.broker.security.curve = false;
        std::cerr << "dtaskd: WARNING: --insecure-tcp: plain TCP without encryption or "
                     "authentication; anyone who reaches the endpoints can join as a worker, "
                     "submit jobs and read their data\n";
    } else {
        if (!broker_keys)
            broker_keys = std::make_unique<detail::BrokerKeys>(options.keys_directory);
        keys = &broker_keys->store();
        options.broker.security.curve = true;
        options.broker.security.secret_key = keys->broker_secret_key();
        options.broker.security.admitted = keys->credentials();
    }

    options.broker.statistics = !options.http.empty();
    const detail::HttpOptions http_options{options.http, options.http_allow_remote,
                                           broker_keys ? broker_keys->store().monitor_token() : ""};
    if (!options.http.empty())
        detail::check_http_options(http_options);  // before the broker listens
    zmq::context_t context(1);
    detail::Broker broker(context, options.broker);
    std::unique_ptr<detail::HttpEndpoint> http;
    if (!options.http.empty())
        http = std::make_unique<detail::HttpEndpoint>(http_options,
                                                      [&broker] { return broker.status(); });
    // The control socket has a context of its own: it shares nothing with the broker's
    // sockets, not even the ZAP handler the broker's context has.
    zmq::context_t control_context(1);
    std::unique_ptr<ControlSocket> control;
    if (keys)
        control = std::make_unique<ControlSocket>(control_context, keys->directory());
    broker.start();
    for (const auto& endpoint : broker.endpoints())
        std::cout << "dtaskd: listening on " << endpoint << "\n";
    if (keys)
        std::cout << "dtaskd: join tokens in " << keys->token_path(detail::TokenRole::worker)
                  << " and " << keys->token_path(detail::TokenRole::client)
                  << " ('dtaskd tokens' prints them)\n";
    if (http) {
        std::cout << "dtaskd: dashboard on " << http->url() << " (status: dtaskd status "
                  << http->url().substr(7, http->url().size() - 8) << ")\n";
        if (options.http_allow_remote)
            std::cout << "dtaskd: the dashboard needs the monitoring token in "
                      << broker_keys->store().monitor_token_path()
                      << " (plain HTTP: it crosses the network in clear; prefer an SSH tunnel)\n";
    }
    std::cout.flush();

    // A rotation: the new token file first, then the broker; the answer after both.
    auto answer = [&](std::string_view request) -> std::string {
        const auto role = rotated_role(request);
        if (!role)
            throw Error("unknown request");
        const auto& token = keys->rotate(*role);
        broker.replace_credentials(keys->credentials());
        std::cerr << "dtaskd: rotated the " << detail::role_word(*role)
                  << " credential; holders of the old one are refused from now on\n";
        return token.text();
    };
    zmq::pollitem_t items[] = {{nullptr, stop.fd(), ZMQ_POLLIN, 0},
                               {control ? control->socket().handle() : nullptr, -1, ZMQ_POLLIN, 0}};
    int received = 0;
    while (received == 0) {
        try {
            // A SIGSTOP and SIGCONT can cut a poll short: then nothing is ready.
            detail::protocol::poll(std::span(items, control ? 2 : 1),
                                   std::chrono::milliseconds(-1));
        } catch (const zmq::error_t& e) {
            throw Error(std::string("dtaskd: poll: ") + e.what());
        }
        if (control && (items[1].revents & ZMQ_POLLIN) != 0)
            control->serve(answer);
        if ((items[0].revents & ZMQ_POLLIN) != 0)
            received = stop.received();
    }
    std::cerr << "dtaskd: " << (received == SIGINT ? "SIGINT" : "SIGTERM")
              << ": shutting down; jobs still running fail on their clients\n";
    http.reset();  // before the broker it reads from
    broker.stop();
    return 0;
}

}  // namespace dtask::dtaskd
