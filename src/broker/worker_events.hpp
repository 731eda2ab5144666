#pragma once
// The broker's loop, for workers: a worker's hello, results, failures, pulses and timeouts,
// and its loss. A worker lost holding batches gives them back to their queues, or, if it
// crashed, to the quarantine (recovery).

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "broker/broker_context.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

class WorkerEvents {
public:
    using Clock = std::chrono::steady_clock;

    explicit WorkerEvents(BrokerContext& context) : c_(context) {}

    void hello(const std::string& id, protocol::Hello hello);
    void on_message(WorkerPeer& worker, protocol::Inbound& message);
    void on_pulse(const std::string& sender, protocol::Inbound& message, std::string_view user);
    /// Drops a worker. `crashed`: it died or went silent, so what it held is suspect and
    /// goes to quarantine; otherwise (it left, or reconnected) it goes back to the queues.
    void lost(std::string id, const std::string& how, bool crashed = true);

private:
    void on_result(WorkerPeer& worker, protocol::Inbound& message);
    void batch_done(WorkerPeer& worker, std::deque<HeldBatch>::iterator held, BrokerJob* job,
                    std::vector<std::string>& revoked);
    void on_failure(WorkerPeer& worker, protocol::Inbound& message);
    void on_timed_out(BrokerJob& job, HeldBatch& batch, std::uint64_t index,
                      const protocol::Failure& report, const std::string& worker_id);
    void tell_pulse_of_ended(WorkerPeer& worker, const std::string& pulse_id);

    BrokerContext& c_;
};

}  // namespace dtask::detail
