#pragma once
// The broker's gatekeeper: the ZAP handler that decides, at each CurveZMQ handshake on a
// listen endpoint, whether the peer's key is a current credential, and which role it has.
// A peer it refuses never gets a message through; the handshake is all it costs the broker.
// Admitted connections carry their role in ZeroMQ's User-Id property, by which the broker
// checks each message: a worker credential cannot submit, a client credential cannot serve.
// Runs on the broker's thread: the loop polls fd() and calls answer().

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "security/refusal_log.hpp"

namespace dtask::detail {

/// The public keys (Z85) of the credentials the broker admits; empty: none for that role.
struct Credentials {
    std::string worker_key;
    std::string client_key;
};

/// Credentials shared between the broker's thread and one that rotates them (dtaskd's).
class CredentialStore {
public:
    explicit CredentialStore(Credentials initial) : credentials_(std::move(initial)) {}
    void replace(Credentials credentials) {
        std::lock_guard lock(mutex_);
        credentials_ = std::move(credentials);
        generation_.fetch_add(1, std::memory_order_release);
    }
    unsigned generation() const noexcept { return generation_.load(std::memory_order_acquire); }
    Credentials current() const {
        std::lock_guard lock(mutex_);
        return credentials_;
    }

private:
    mutable std::mutex mutex_;
    Credentials credentials_;
    std::atomic<unsigned> generation_{0};
};

/// Who sent a message, by its connection.
enum class Sender {
    owner,    // a connection without CurveZMQ: the private socket, in-process, insecure TCP
    worker,   // admitted with the current worker credential
    client,   // admitted with the current client credential
    revoked,  // admitted with a credential rotated since
};

class Gatekeeper {
public:
    using Clock = std::chrono::steady_clock;

    /// Binds ZeroMQ's ZAP endpoint in `context` (one gatekeeper per context).
    Gatekeeper(zmq::context_t& context, std::shared_ptr<CredentialStore> store);

    /// Readable when handshakes may wait for an answer (a ZeroMQ descriptor).
    int fd() const;
    /// Answers every handshake waiting.
    void answer(Clock::time_point now);
    /// Takes rotated credentials in; true if they changed since the last call.
    bool refresh();
    /// The User-Id a message's connection was admitted with, from any of its frames: "" for
    /// the owner's own.
    static std::string_view user_of(const zmq::message_t& frame) noexcept;
    /// The sender of a message whose connection was admitted as `user` (user_of).
    Sender sender_of(std::string_view user) const noexcept;
    /// Whether to log the refusal of an admitted peer (a wrong role, a rotated credential)
    /// whose message holds `frame`: as for handshakes, once per address and minute.
    bool should_log(const zmq::message_t& frame, Clock::time_point now);

private:
    void answer_one(std::vector<zmq::message_t>& request, Clock::time_point now);

    zmq::socket_t socket_;
    std::shared_ptr<CredentialStore> store_;
    unsigned generation_ = 0;
    Credentials current_;
    std::string worker_user_;  // User-Id of the current credentials
    std::string client_user_;
    RefusalLog refusals_;
};

}  // namespace dtask::detail
