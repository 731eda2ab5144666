// Registers the HTTP endpoint with libdtask (http_service.hpp) as the program starts, so that
// a Cluster of a host that links dtask_http serves ClusterOptions::http. The linker keeps
// this file because dtask_http's consumers are linked with -u dtask_http_registered.

#include "http/http_endpoint.hpp"
#include "http/http_service.hpp"

namespace dtask::detail {
namespace {

class EndpointService final : public HttpService {
public:
    EndpointService(const HttpServiceOptions& options, StatusSource source)
        : endpoint_(HttpOptions{options.address, options.allow_remote, options.token},
                    std::move(source)) {}
    const std::string& url() const noexcept override { return endpoint_.url(); }

private:
    HttpEndpoint endpoint_;
};

std::unique_ptr<HttpService> make_service(const HttpServiceOptions& options, StatusSource source) {
    return std::make_unique<EndpointService>(options, std::move(source));
}

struct Registration {
    Registration() { register_http_service(&make_service); }
};

}  // namespace
}  // namespace dtask::detail

extern "C" {
/// The symbol consumers of dtask_http are linked to require, pulling this file in.
extern const int dtask_http_registered;
const int dtask_http_registered = [] {
    static dtask::detail::Registration registration;
    return 1;
}();
}
