#include "security/gatekeeper.hpp"

#include <array>
#include <cstring>
#include <vector>

#include <zmq_addon.hpp>

#include <dtask/error.hpp>

#include "log.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {
namespace {

std::string z85_of(const zmq::message_t& frame) {
    if (frame.size() != 32)
        return {};
    std::array<char, 41> text{};
    zmq_z85_encode(text.data(), static_cast<const std::uint8_t*>(frame.data()), 32);
    return text.data();
}

/// The User-Id an admitted connection carries: its role and its key, so that a key rotated
/// away is told from the current one at each message.
std::string user_id(char role, const std::string& key) {
    return key.empty() ? std::string() : role + key;
}

}  // namespace

Gatekeeper::Gatekeeper(zmq::context_t& context, std::shared_ptr<CredentialStore> store)
    : socket_(context, zmq::socket_type::rep), store_(std::move(store)) {
    socket_.set(zmq::sockopt::linger, 0);
    try {
        socket_.bind("inproc://zeromq.zap.01");
    } catch (const zmq::error_t& e) {
        throw TransportError(std::string("dtask: cannot start the broker's gatekeeper: ") +
                             e.what());
    }
    generation_ = store_->generation();
    current_ = store_->current();
    worker_user_ = user_id('W', current_.worker_key);
    client_user_ = user_id('C', current_.client_key);
}

int Gatekeeper::fd() const {
    return socket_.get(zmq::sockopt::fd);
}

bool Gatekeeper::refresh() {
    const unsigned now = store_->generation();
    if (now == generation_)
        return false;
    generation_ = now;
    current_ = store_->current();
    worker_user_ = user_id('W', current_.worker_key);
    client_user_ = user_id('C', current_.client_key);
    return true;
}

void Gatekeeper::answer(Clock::time_point now) {
    std::vector<zmq::message_t> request;
    while (protocol::receive(socket_, request, false)) {
        refresh();  // a handshake after a rotation returned meets the new credentials
        answer_one(request, now);
    }
}

void Gatekeeper::answer_one(std::vector<zmq::message_t>& request, Clock::time_point now) {
    // ZAP 1.0: version, request id, domain, address, identity, mechanism, credentials...
    // A request of another shape (libzmq sends none) is refused, but answered: a REP
    // socket must answer each request before it can read the next.
    const bool well_formed = request.size() >= 6 && request[0].to_string_view() == "1.0";
    while (request.size() < 2)
        request.emplace_back();
    const std::string address = well_formed ? request[3].to_string() : std::string("?");
    std::string key = well_formed && request[5].to_string_view() == "CURVE" && request.size() >= 7
                          ? z85_of(request[6])
                          : std::string();
    std::string user;
    if (!key.empty() && key == current_.worker_key)
        user = worker_user_;
    else if (!key.empty() && key == current_.client_key)
        user = client_user_;
    const bool admitted = !user.empty();
    if (!admitted && refusals_.should_log(address, now)) {
        const auto unlogged = refusals_.take_unlogged();
        log_warning("broker", "refused a connection from " + address +
                                  ": its key is no current credential (a wrong or rotated "
                                  "join token)" +
                                  (unlogged ? "; " + std::to_string(unlogged) +
                                                  " more refusals not logged since the last"
                                            : std::string()));
    }
    std::array<zmq::message_t, 6> reply{
        zmq::message_t(request[0].data(), request[0].size()),
        zmq::message_t(request[1].data(), request[1].size()),
        zmq::message_t(std::string_view(admitted ? "200" : "400")),
        zmq::message_t(std::string_view(admitted ? "OK" : "no current credential")),
        zmq::message_t(user.data(), user.size()),
        zmq::message_t()};
    zmq::send_multipart(socket_, reply);
}

bool Gatekeeper::should_log(const zmq::message_t& frame, Clock::time_point now) {
    const char* address = zmq_msg_gets(frame.handle(), "Peer-Address");
    return refusals_.should_log(address == nullptr ? std::string() : address, now);
}

std::string_view Gatekeeper::user_of(const zmq::message_t& frame) noexcept {
    const char* user = zmq_msg_gets(frame.handle(), "User-Id");
    return user == nullptr ? std::string_view() : std::string_view(user);
}

Sender Gatekeeper::sender_of(std::string_view user) const noexcept {
    if (user.empty())
        return Sender::owner;
    if (user == worker_user_)
        return Sender::worker;
    if (user == client_user_)
        return Sender::client;
    return Sender::revoked;
}

}  // namespace dtask::detail
