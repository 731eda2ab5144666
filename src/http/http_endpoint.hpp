#pragma once
// The broker's HTTP endpoint: the dashboard page at /, the status at /api/status, the metrics
// at /metrics, served by threads of its own from the latest snapshot the broker's loop
// published; a request never waits for the loop, and the loop never waits for a request.
// On loopback by default; any other address needs allow_remote, and then the monitoring
// token with every request (401 without it).

#include <functional>
#include <memory>
#include <string>

#include "http/http_address.hpp"
#include "http/snapshot.hpp"

namespace dtask::detail {

struct HttpOptions {
    std::string address;        // PORT or HOST:PORT (http_address.hpp)
    bool allow_remote = false;  // may bind beyond loopback, then requires `token`
    std::string token;          // the monitoring token; required with allow_remote
};

/// Checks `options` before anything is bound: the address parses, and one beyond loopback
/// is allowed and has a token. Throws Error saying what is wrong.
HttpAddress check_http_options(const HttpOptions& options);

class HttpEndpoint {
public:
    using Source = std::function<std::shared_ptr<const StatusSnapshot>()>;

    /// Binds and starts serving. Throws Error: a non-loopback address without allow_remote,
    /// allow_remote without a token, or an address it cannot bind.
    HttpEndpoint(const HttpOptions& options, Source source);
    ~HttpEndpoint();
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    /// "http://HOST:PORT/", the port read back.
    const std::string& url() const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace dtask::detail
