#include "raw_zmq.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include <unistd.h>

namespace perf::raw {
namespace {

using Clock = std::chrono::steady_clock;

// The relay's hello from a worker: [ready_word, credits]; a client's empty message stops it.
constexpr std::string_view ready_word = "ready";

/// As dtask's own sockets: no high-water mark (the window bounds the queues), no linger.
void tune(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::linger, 0);
}

template <class Number>
Number read_number(const zmq::message_t& frame) {
    Number value{};
    std::memcpy(&value, frame.data(), std::min(sizeof value, frame.size()));
    return value;
}

template <class Number>
zmq::message_t number_frame(Number value) {
    return zmq::message_t(&value, sizeof value);
}

/// Receives one multipart message into `frames`; the number of frames (those beyond the
/// array's size are dropped).
template <std::size_t N>
std::size_t receive(zmq::socket_t& socket, std::array<zmq::message_t, N>& frames) {
    std::size_t count = 0;
    zmq::message_t extra;
    for (;;) {
        zmq::message_t& frame = count < N ? frames[count] : extra;
        if (!socket.recv(frame, zmq::recv_flags::none))
            throw std::runtime_error("raw baseline: receive failed");
        ++count;
        if (!frame.more())
            return count;
    }
}

}  // namespace

std::string private_ipc_endpoint() {
    static std::atomic<unsigned> counter{0};
    return "ipc://@dtask-perf-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

int serve_echo(pid_t parent, const std::string& bind_endpoint, Reply reply) {
    die_with_parent(parent);
    zmq::context_t context(1);
    zmq::socket_t router(context, zmq::socket_type::router);
    tune(router);
    router.bind(bind_endpoint);
    std::printf("%s\n", router.get(zmq::sockopt::last_endpoint).c_str());
    std::fflush(stdout);
    std::array<zmq::message_t, 2> frames;
    for (;;) {
        if (receive(router, frames) != 2)
            continue;
        router.send(frames[0], zmq::send_flags::sndmore);
        if (reply == Reply::echo)
            router.send(frames[1], zmq::send_flags::none);
        else
            router.send(number_frame<std::uint64_t>(frames[1].size()), zmq::send_flags::none);
    }
}

int serve_relay_worker(pid_t parent, const std::string& relay_endpoint, unsigned credits) {
    die_with_parent(parent);
    zmq::context_t context(1);
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    tune(dealer);
    dealer.connect(relay_endpoint);
    dealer.send(zmq::buffer(ready_word), zmq::send_flags::sndmore);
    dealer.send(number_frame(credits), zmq::send_flags::none);
    // [client, payload] in, the same back.
    std::array<zmq::message_t, 2> frames;
    for (;;) {
        if (receive(dealer, frames) != 2)
            continue;
        dealer.send(frames[0], zmq::send_flags::sndmore);
        dealer.send(frames[1], zmq::send_flags::none);
    }
}

EchoProcess::EchoProcess(const std::string& bind_endpoint, Reply reply)
    : process_({"--raw-echo", std::to_string(getpid()), bind_endpoint,
                reply == Reply::echo ? "echo" : "size"},
               true) {
    auto line = process_.read_line(std::chrono::seconds(30));
    if (!line || line->empty())
        throw std::runtime_error("the raw echo process did not report its endpoint for " +
                                 bind_endpoint);
    endpoint_ = *line;
}

RawClient::RawClient(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    tune(socket_);
    socket_.connect(endpoint);
}

double RawClient::pipelined(std::uint64_t count, std::size_t window, std::size_t bytes, Reply reply) {
    bytes = std::max<std::size_t>(bytes, sizeof(std::uint32_t));
    const std::vector<char> source(bytes, 'x');
    std::uint64_t sent = 0, received = 0, answers = 0, expected = 0;
    zmq::message_t answer;
    const auto start = Clock::now();
    while (received < count) {
        while (sent < count && sent - received < window) {
            zmq::message_t message(source.data(), source.size());
            const auto number = static_cast<std::uint32_t>(sent + 1);
            std::memcpy(message.data(), &number, sizeof number);
            expected += reply == Reply::echo ? number : bytes;
            socket_.send(message, zmq::send_flags::none);
            ++sent;
        }
        if (!socket_.recv(answer, zmq::recv_flags::none))
            throw std::runtime_error("raw baseline: receive failed");
        answers += reply == Reply::echo ? read_number<std::uint32_t>(answer)
                                        : read_number<std::uint64_t>(answer);
        ++received;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (answers != expected)
        throw std::runtime_error("raw baseline: the answers add up to " + std::to_string(answers) +
                                 " instead of " + std::to_string(expected));
    return seconds;
}

std::vector<double> RawClient::lockstep(std::uint64_t count) {
    std::vector<double> micros;
    micros.reserve(count);
    zmq::message_t answer;
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto number = static_cast<std::uint32_t>(i + 1);
        const auto start = Clock::now();
        socket_.send(number_frame(number), zmq::send_flags::none);
        if (!socket_.recv(answer, zmq::recv_flags::none))
            throw std::runtime_error("raw baseline: receive failed");
        micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        if (read_number<std::uint32_t>(answer) != number)
            throw std::runtime_error("raw baseline: a round trip answered another message");
    }
    return micros;
}

Relay::Relay(unsigned workers, unsigned credits, const std::string& bind_endpoint) {
    zmq::socket_t router(context_, zmq::socket_type::router);
    tune(router);
    router.bind(bind_endpoint.empty() ? private_ipc_endpoint() : bind_endpoint);
    endpoint_ = router.get(zmq::sockopt::last_endpoint);
    for (unsigned i = 0; i < workers; ++i) {
        workers_.emplace_back(std::vector<std::string>{
            "--raw-relay-worker", std::to_string(getpid()), endpoint_, std::to_string(credits)});
    }
    std::promise<void> all_joined;
    auto joined = all_joined.get_future();
    // The thread owns the socket from here on (starting a thread is a full barrier).
    thread_ = std::thread(
        [workers, socket = std::move(router), all_joined = std::move(all_joined)]() mutable {
            try {
                std::unordered_set<std::string> worker_ids;
                std::deque<std::string> free_credits;  // a worker's id once per free credit
                std::deque<std::pair<zmq::message_t, zmq::message_t>> waiting;  // [client, payload]
                std::array<zmq::message_t, 3> frames;
                for (;;) {
                    const std::size_t count = receive(socket, frames);
                    std::string from = frames[0].to_string();
                    if (worker_ids.count(from) != 0 && count == 3) {
                        // An answer: [worker, client, payload] goes back to the client.
                        socket.send(frames[1], zmq::send_flags::sndmore);
                        socket.send(frames[2], zmq::send_flags::none);
                        free_credits.push_back(std::move(from));
                    } else if (count == 3 && frames[1].to_string_view() == ready_word) {
                        const auto held = read_number<unsigned>(frames[2]);
                        for (unsigned i = 0; i < held; ++i)
                            free_credits.push_back(from);
                        worker_ids.insert(std::move(from));
                        if (worker_ids.size() == workers)
                            all_joined.set_value();
                    } else if (count == 2) {
                        if (frames[1].size() == 0)
                            return;  // the destructor's stop
                        waiting.emplace_back(std::move(frames[0]), std::move(frames[1]));
                    }
                    while (!waiting.empty() && !free_credits.empty()) {
                        const std::string& worker = free_credits.front();
                        socket.send(zmq::buffer(worker), zmq::send_flags::sndmore);
                        socket.send(waiting.front().first, zmq::send_flags::sndmore);
                        socket.send(waiting.front().second, zmq::send_flags::none);
                        waiting.pop_front();
                        free_credits.pop_front();
                    }
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "dtask_perf: the raw relay stopped: %s\n", e.what());
            }
        });
    try {
        if (joined.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
            throw std::runtime_error("the raw relay's workers did not join within 60 s");
        joined.get();  // rethrows if the thread stopped first
    } catch (...) {
        stop();  // the destructor does not run for a constructor that throws
        throw;
    }
}

Relay::~Relay() {
    stop();
}

void Relay::stop() noexcept {
    // The workers first: a thread still waiting for them then hears nothing more.
    for (auto& worker : workers_)
        worker.kill_and_reap();
    if (!thread_.joinable())
        return;
    try {
        zmq::socket_t stopper(context_, zmq::socket_type::dealer);
        tune(stopper);
        stopper.connect(endpoint_);
        stopper.send(zmq::message_t(), zmq::send_flags::none);
        thread_.join();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtask_perf: cannot stop the raw relay: %s\n", e.what());
        std::abort();  // a thread left running would outlive its sockets
    }
}

}  // namespace perf::raw
