// http_cost: what the broker's HTTP endpoint costs while a scraper reads it, as ratios to the
// same Cluster with the endpoint off, measured alternately in the same run. The workload is
// empty subtasks on local workers, batched (automatic batch size) and unbatched (batch_size
// 1), the case where the broker's loop is the bottleneck; the scraper GETs /metrics and
// /api/status every 100 ms from a thread of this process.
//
//   http_cost [--subtasks N] [--unbatched-subtasks N] [--rounds R] [--workers W]
//
// It prints one line per measurement and the median ratio (on / off) of each workload.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <dtask/dtask.hpp>

namespace {

using Clock = std::chrono::steady_clock;

const dtask::Job<std::uint64_t> empty_subtasks{
    "bench.http_cost.empty",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t&) { return std::uint64_t{1}; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

/// GETs /metrics and /api/status every 100 ms until stopped; counts the answers.
class Scraper {
public:
    explicit Scraper(const std::string& url) {
        const auto colon = url.rfind(':');
        const int port = std::stoi(url.substr(colon + 1));
        thread_ = std::thread([this, port] {
            httplib::Client client("127.0.0.1", port);
            auto next = Clock::now();
            while (!stop_) {
                for (const char* path : {"/metrics", "/api/status"}) {
                    if (auto result = client.Get(path); result && result->status == 200)
                        ++answers_;
                }
                next += std::chrono::milliseconds(100);
                std::this_thread::sleep_until(next);  // the scraper's pace
            }
        });
    }
    ~Scraper() {
        stop_ = true;
        thread_.join();
    }
    int answers() const { return answers_; }

private:
    std::atomic<bool> stop_{false};
    std::atomic<int> answers_{0};
    std::thread thread_;
};

/// Subtasks per second of one job of `n` empty subtasks on a fresh Cluster.
double measure(bool http, std::uint64_t n, std::size_t batch_size, int workers, int& answers) {
    dtask::ClusterOptions options;
    options.local_workers = workers;
    if (http)
        options.http = "127.0.0.1:0";
    dtask::Cluster cluster(options);
    cluster.wait_for_workers(static_cast<std::size_t>(workers), std::chrono::seconds(60));
    std::unique_ptr<Scraper> scraper;
    if (http)
        scraper = std::make_unique<Scraper>(cluster.http_url());
    const auto start = Clock::now();
    const auto total =
        cluster.submit(empty_subtasks, n, dtask::RunOptions{.batch_size = batch_size}).get();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (total != n)
        throw std::runtime_error("wrong result: " + std::to_string(total));
    if (scraper)
        answers += scraper->answers();
    return static_cast<double>(n) / seconds;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a local worker serves here and exits
    std::uint64_t batched = 20'000'000;
    std::uint64_t unbatched = 1'000'000;
    int rounds = 5;
    int workers = 2;
    constexpr const char* usage =
        "Usage: dtask_http_cost [--subtasks N] [--unbatched-subtasks N] [--rounds R] "
        "[--workers W]\n"
        "Measures the broker's HTTP endpoint with a scraper polling /metrics and /api/status\n"
        "every 100 ms, as the median ratio of rates on/off, alternated in one run.\n";
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return 0;
        }
        std::uint64_t value = 0;
        try {
            if (i + 1 >= argc)
                throw std::invalid_argument("no value");
            std::size_t used = 0;
            value = std::stoull(argv[i + 1], &used);
            if (used != std::string(argv[i + 1]).size() || value == 0)
                throw std::invalid_argument("not a positive number");
        } catch (const std::exception&) {
            std::cerr << "dtask_http_cost: " << arg << " needs a positive number\n" << usage;
            return 2;
        }
        if (arg == "--subtasks")
            batched = value;
        else if (arg == "--unbatched-subtasks")
            unbatched = value;
        else if (arg == "--rounds")
            rounds = static_cast<int>(std::min<std::uint64_t>(value, 1000));
        else if (arg == "--workers")
            workers = static_cast<int>(std::min<std::uint64_t>(value, 256));
        else {
            std::cerr << "dtask_http_cost: unknown argument '" << arg << "'\n" << usage;
            return 2;
        }
    }
    struct Workload {
        const char* name;
        std::uint64_t n;
        std::size_t batch_size;
    };
    for (const Workload& workload :
         {Workload{"batched", batched, 0}, Workload{"unbatched", unbatched, 1}}) {
        std::vector<double> ratios;
        int answers = 0;
        for (int round = 0; round < rounds; ++round) {
            // Alternated, and which goes first alternates too: drift hits both alike.
            const bool on_first = round % 2 == 1;
            double on = 0, off = 0;
            for (const bool http : {on_first, !on_first}) {
                const double rate =
                    measure(http, workload.n, workload.batch_size, workers, answers);
                (http ? on : off) = rate;
                std::cout << "http_cost." << workload.name << " round " << round << " http "
                          << (http ? "on " : "off") << ": " << static_cast<long long>(rate)
                          << " subtasks/s\n";
            }
            ratios.push_back(on / off);
        }
        std::cout << "http_cost." << workload.name << ": median ratio on/off " << median(ratios)
                  << " over " << rounds << " rounds (scraper answers: " << answers << ")\n";
    }
    return 0;
}
