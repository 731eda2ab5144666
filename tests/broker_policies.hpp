#pragma once
// What the broker's policy tests share: task frames of real records, and jobs and workers
// made as the broker makes them, without sockets or processes.

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "broker/batches.hpp"
#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "raw_peers.hpp"
#include "wire/protocol.hpp"

namespace broker_policies {

using namespace dtask::detail;

/// A task frame of job `job` with `count` one-byte records, subtasks [first, first + count).
inline zmq::message_t task_frame(std::uint64_t job, std::uint64_t first, std::uint64_t count) {
    std::vector<std::string> records;
    for (std::uint64_t i = 0; i < count; ++i)
        records.emplace_back(1, static_cast<char>('a' + i % 26));
    return test_support::batch_frame(protocol::Command::task, job, {first, count}, records);
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
