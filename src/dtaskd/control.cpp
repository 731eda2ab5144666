// dtaskd's control socket: one short request, one answer, only from the keys' owner.

#include "dtaskd/control.hpp"

#include <cerrno>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

#include <dtask/error.hpp>

namespace dtask::dtaskd {
namespace {

/// A request or an answer is a line: anything longer is not one of ours.
constexpr std::int64_t max_message = 1024;

std::string endpoint_of(const std::string& directory) { return "ipc://" + directory + "/control"; }

}  // namespace

std::string rotate_request(detail::TokenRole role) {
    return std::string("rotate ") + detail::role_word(role);
}

std::optional<detail::TokenRole> rotated_role(std::string_view request) {
    for (const auto role : {detail::TokenRole::worker, detail::TokenRole::client}) {
        if (request == rotate_request(role))
            return role;
    }
    return std::nullopt;
}

ControlSocket::ControlSocket(zmq::context_t& context, const std::string& directory)
    : path_(directory + "/control"), socket_(context, zmq::socket_type::rep) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, max_message);
    if (unlink(path_.c_str()) != 0 && errno != ENOENT)
        throw Error("dtaskd: cannot remove the stale control socket '" + path_ +
                    "': " + std::strerror(errno));
    try {
        socket_.bind(endpoint_of(directory));
    } catch (const zmq::error_t& e) {
        throw Error("dtaskd: cannot listen on the control socket '" + path_ + "': " + e.what());
    }
    // Owner-only whatever the umask, like every file in the keys directory.
    if (chmod(path_.c_str(), 0600) != 0)
        throw Error("dtaskd: cannot make '" + path_ + "' owner-only: " + std::strerror(errno));
}

ControlSocket::~ControlSocket() {
    socket_.close();
    unlink(path_.c_str());
}

void ControlSocket::serve(const std::function<std::string(std::string_view)>& answer) {
    zmq::message_t request;
    if (!socket_.recv(request, zmq::recv_flags::dontwait))
        return;
    bool more = request.more();
    while (more) {  // a request is one frame: drop the rest before answering
        zmq::message_t rest;
        (void)socket_.recv(rest);
        more = rest.more();
    }
    std::string reply;
    const std::string_view text(static_cast<const char*>(request.data()), request.size());
    if (request.size() == 0 || request.more() || text.find('\n') != std::string_view::npos) {
        reply = "error not a dtaskd request";
    } else {
        try {
            reply = "ok " + answer(text);
        } catch (const std::exception& e) {
            reply = std::string("error ") + e.what();
        }
    }
    socket_.send(zmq::buffer(reply), zmq::send_flags::none);
}

std::string ask_dtaskd(const std::string& directory, const std::string& request,
                       std::chrono::milliseconds timeout) {
    zmq::context_t context(1);
    zmq::socket_t socket(context, zmq::socket_type::req);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, max_message);
    socket.connect(endpoint_of(directory));
    socket.send(zmq::buffer(request), zmq::send_flags::none);
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= std::chrono::milliseconds::zero())
            throw Error("dtaskd: the dtaskd that holds '" + directory +
                        "' did not answer within " + std::to_string(timeout.count() / 1000) +
                        " s (is it stopped?); it may still rotate when it resumes");
        try {
            if (zmq::poll(&item, 1, left) > 0)
                break;
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR)
                throw Error(std::string("dtaskd: waiting for the running dtaskd: ") + e.what());
        }
    }
    zmq::message_t reply;
    (void)socket.recv(reply);
    const std::string text(static_cast<const char*>(reply.data()), reply.size());
    if (text.starts_with("ok "))
        return text.substr(3);
    if (text.starts_with("error "))
        throw Error("dtaskd: the running dtaskd refused: " + text.substr(6));
    throw Error("dtaskd: the running dtaskd gave an answer this dtaskd does not understand");
}

}  // namespace dtask::dtaskd
