#pragma once
// How a Cluster in libdtask starts the HTTP endpoint without linking it: dtask_http, when a
// host links it, registers a factory here at start-up (http_registration.cpp); libdtask
// itself links nothing of cpp-httplib or nlohmann/json. Without it, ClusterOptions::http
// is refused with an error that says what to link.

#include <functional>
#include <memory>
#include <string>

#include <dtask/export.hpp>

#include "http/snapshot.hpp"

namespace dtask::detail {

struct HttpServiceOptions {
    std::string address;
    bool allow_remote = false;
    std::string token;
};

/// A running HTTP endpoint; stops when destroyed.
class HttpService {
public:
    virtual ~HttpService() = default;
    virtual const std::string& url() const noexcept = 0;
};

using StatusSource = std::function<std::shared_ptr<const StatusSnapshot>()>;
using HttpServiceFactory = std::unique_ptr<HttpService> (*)(const HttpServiceOptions&,
                                                            StatusSource);

/// Called once by dtask_http at start-up: the one internal function a shared libdtask exports,
/// since dtask_http is a library of its own that the host links beside it.
DTASK_EXPORT void register_http_service(HttpServiceFactory factory) noexcept;
/// The registered factory, or null when dtask_http is not linked.
HttpServiceFactory http_service_factory() noexcept;

}  // namespace dtask::detail
