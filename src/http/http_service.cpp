// The HTTP endpoint's factory, registered by dtask_http when a host links it.

#include "http/http_service.hpp"

#include <atomic>

namespace dtask::detail {

namespace {
std::atomic<HttpServiceFactory> registered{nullptr};
}  // namespace

void register_http_service(HttpServiceFactory factory) noexcept {
    registered.store(factory);
}

HttpServiceFactory http_service_factory() noexcept {
    return registered.load();
}

}  // namespace dtask::detail
