// Peers: the records made from a worker's or a client's hello.

#include "broker/peers.hpp"

namespace dtask::detail {

using Clock = std::chrono::steady_clock;

WorkerPeer& Peers::add_worker(const std::string& id, protocol::Hello hello, Clock::time_point now) {
    WorkerPeer& worker = workers_[id];
    worker.id = id;
    worker.credits.limit = std::min(2u, hello.credits);
    for (const auto& [name, signature] : hello.jobs)
        worker.serving.serves.emplace(name, signature);
    worker.hello = std::move(hello);
    worker.last_heard = now;
    return worker;
}

ClientPeer& Peers::add_client(const std::string& id, const protocol::Hello& hello, bool in_process,
                              Clock::time_point now) {
    ClientPeer& client = clients_[id];
    client.id = id;
    client.name = hello.name;
    // Only a client in this very process is exempt from the silence check. Its transport
    // says so, never its word: a pid in a hello can be guessed.
    client.same_process = hello.same_process && in_process;
    client.last_heard = now;
    return client;
}

}  // namespace dtask::detail
