#pragma once
// What the broker's policy tests share: task frames of real records, and jobs and workers
// made as the broker makes them, without sockets or processes.

#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "broker/batches.hpp"
#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

namespace broker_policies {

using namespace dtask::detail;

/// A task frame of job `job` with `count` one-byte records, subtasks [first, first + count).
inline zmq::message_t task_frame(std::uint64_t job, std::uint64_t first, std::uint64_t count) {
    std::string bytes(protocol::task_header_room, '\0');
    BatchWriter writer(bytes);
    for (std::uint64_t i = 0; i < count; ++i) {
        writer.begin();
        bytes += static_cast<char>('a' + i % 26);
        writer.end();
    }
    const std::size_t start = protocol::write_batch_header(
        std::as_writable_bytes(std::span(bytes).first(protocol::task_header_room)),
        protocol::Command::task, job, {first, count});
    return protocol::payload_frame(std::move(bytes), start);
}

/// A queued batch of `count` subtasks from `first`, with a real frame.
inline QueuedBatch batch(std::uint64_t job, std::uint64_t first, std::uint64_t count) {
    return QueuedBatch{first, count, task_frame(job, first, count)};
}

/// A job named "tests.job" of signature "sig", as a client submits it.
inline BrokerJob& submit(Jobs& jobs, std::uint64_t id, protocol::JobSettings settings = {}) {
    return jobs.submit(id, "client", id, settings, "tests.job", "sig", zmq::message_t(),
                       std::chrono::steady_clock::now());
}

/// A worker that serves "tests.job" and offers `credits`.
inline WorkerPeer& add_worker(Peers& peers, const std::string& id, std::uint32_t credits = 64) {
    protocol::Hello hello;
    hello.name = id;
    hello.credits = credits;
    hello.jobs = {{"tests.job", "sig"}};
    return peers.add_worker(id, std::move(hello), std::chrono::steady_clock::now());
}

}  // namespace broker_policies
