// The broker's HTTP endpoint: cpp-httplib's server on threads of its own.

#include "http/http_endpoint.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <sys/socket.h>

#include <dtask/error.hpp>

#include "http/dashboard_html.hpp"
#include "http/http_address.hpp"
#include "http/metrics_text.hpp"
#include "http/status_json.hpp"
#include "security/monitor_token.hpp"

namespace dtask::detail {

namespace {

/// The bytes of a Base64 text; empty if it is not Base64.
std::string from_base64(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : text) {
        int value = -1;
        if (c >= 'A' && c <= 'Z')
            value = c - 'A';
        else if (c >= 'a' && c <= 'z')
            value = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            value = c - '0' + 52;
        else if (c == '+')
            value = 62;
        else if (c == '/')
            value = 63;
        else if (c == '=')
            break;
        else
            return {};
        buffer = (buffer << 6) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

/// Whether the request carries the token: "Bearer TOKEN", or Basic with TOKEN as the
/// password (what a browser sends after its login prompt; the user name is not read).
bool authorized(const httplib::Request& request, const std::string& token) {
    const std::string header = request.get_header_value("Authorization");
    if (header.starts_with("Bearer "))
        return same_secret(std::string_view(header).substr(7), token);
    if (header.starts_with("Basic ") && header.size() < 1024) {
        const std::string pair = from_base64(std::string_view(header).substr(6));
        const auto colon = pair.find(':');
        return colon != std::string::npos &&
               same_secret(std::string_view(pair).substr(colon + 1), token);
    }
    return false;
}

}  // namespace

struct HttpEndpoint::State {
    /// The JSON of `snapshot`, rendered once per snapshot however many read it: a snapshot
    /// comes every 250 ms at most, requests as often as readers like.
    std::shared_ptr<const std::string> rendered(
        const std::shared_ptr<const StatusSnapshot>& snapshot) {
        {
            std::lock_guard lock(mutex);
            if (snapshot == json_of)
                return json;
        }
        auto text = std::make_shared<const std::string>(status_json(*snapshot));
        std::lock_guard lock(mutex);
        json_of = snapshot;
        json = text;
        return text;
    }

    httplib::Server server;
    int listening = -1;  // the server's listening socket, once bound
    std::thread thread;
    std::atomic<bool> finished{false};  // listen_after_bind returned
    std::string url;
    std::mutex mutex;  // guards the last rendering
    std::shared_ptr<const StatusSnapshot> json_of;
    std::shared_ptr<const std::string> json;
};

/// Connections the kernel holds for the endpoint until its thread accepts them.
constexpr int listen_backlog = 128;

HttpAddress check_http_options(const HttpOptions& options) {
    const HttpAddress address = parse_http_address(options.address);
    const bool remote = !is_loopback(address.host);
    if (remote && !options.allow_remote)
        throw Error("dtask: HTTP address '" + options.address +
                    "' is not loopback: serving the status beyond this machine needs "
                    "--http-allow-remote, and readers then need the monitoring token; or keep "
                    "it on 127.0.0.1 and reach it through an SSH tunnel");
    if (remote && !is_monitor_token(options.token))
        throw Error(
            "dtask: an HTTP endpoint beyond loopback needs a monitoring token, and none "
            "was given");
    return address;
}

HttpEndpoint::HttpEndpoint(const HttpOptions& options, Source source)
    : state_(std::make_unique<State>()) {
    const HttpAddress address = check_http_options(options);
    const bool remote = !is_loopback(address.host);
    httplib::Server& server = state_->server;
    server.set_read_timeout(5, 0);
    server.set_write_timeout(5, 0);
    server.set_keep_alive_timeout(5);
    server.set_payload_max_length(4096);  // requests are GETs
    const std::string token = remote ? options.token : std::string();
    server.set_pre_routing_handler(
        [token](const httplib::Request& request, httplib::Response& response) {
            // The page holds no data: served to all, it takes the token from its address
            // (#token=...) for what it asks next.
            if (token.empty() || request.path == "/" || authorized(request, token))
                return httplib::Server::HandlerResponse::Unhandled;
            response.status = 401;
            // A browser that sent no credential may prompt for one; the page's own wrong
            // token must not bring up a prompt, only its "refused" banner.
            if (!request.has_header("Authorization"))
                response.set_header("WWW-Authenticate", "Basic realm=\"dtask\", charset=\"UTF-8\"");
            response.set_content(
                "401: this dtask endpoint needs its monitoring token: "
                "'Authorization: Bearer TOKEN' (the broker's monitor.token)\n",
                "text/plain");
            return httplib::Server::HandlerResponse::Handled;
        });
    // Before the loop's first snapshot (its first turn), there is nothing to show yet.
    const auto unavailable = [](httplib::Response& response) {
        response.status = 503;
        response.set_content("503: the broker has not published its status yet\n", "text/plain");
    };
    server.Get("/", [](const httplib::Request&, httplib::Response& response) {
        response.set_content(std::string(dashboard_html), "text/html; charset=utf-8");
    });
    server.Get("/api/status",
               [this, source, unavailable](const httplib::Request&, httplib::Response& response) {
                   const auto snapshot = source();
                   if (!snapshot)
                       return unavailable(response);
                   response.set_header("Cache-Control", "no-store");
                   response.set_content(*state_->rendered(snapshot), "application/json");
               });
    server.Get("/metrics", [source, unavailable](const httplib::Request&,
                                                 httplib::Response& response) {
        const auto snapshot = source();
        if (!snapshot)
            return unavailable(response);
        response.set_content(metrics_text(*snapshot), "text/plain; version=0.0.4; charset=utf-8");
    });
    // cpp-httplib listens with a backlog of 5 (compiled into Debian's library): a burst of
    // requests (dashboards, a scraper) overflows it, and a handshake the kernel drops costs
    // its reader seconds of TCP retransmissions. Its socket is listened on again, larger.
    server.set_socket_options([state = state_.get()](socket_t socket) {
        httplib::default_socket_options(socket);
        state->listening = socket;
    });
    int port = address.port;
    if (address.port == 0)
        port = server.bind_to_any_port(address.host);
    else if (!server.bind_to_port(address.host, address.port))
        port = -1;
    if (port <= 0)
        throw Error("dtask: cannot serve HTTP on '" + options.address +
                    "': the address is in use or not this machine's");
    if (state_->listening >= 0)
        ::listen(state_->listening, listen_backlog);
    const bool v6 = address.host.find(':') != std::string::npos;
    state_->url = "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" +
                  std::to_string(port) + "/";
    state_->thread = std::thread([state = state_.get()] {
        state->server.listen_after_bind();
        state->finished = true;
    });
}

HttpEndpoint::~HttpEndpoint() {
    // stop() does nothing before the thread is in its accept loop: wait until it is (a
    // moment after the constructor at most), or until it has returned.
    while (!state_->finished) {
        if (state_->server.is_running()) {
            state_->server.stop();
            break;
        }
        std::this_thread::yield();
    }
    if (state_->thread.joinable())
        state_->thread.join();
}

const std::string& HttpEndpoint::url() const noexcept {
    return state_->url;
}

}  // namespace dtask::detail
