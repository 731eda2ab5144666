// Must compile without a warning under -Wall -Wextra -Werror: designated initializers of
// every options struct (each naming one member and leaving the others to their defaults),
// and a job whose input and result types have no serialization (they never leave the host).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <dtask/dtask.hpp>

namespace {

struct Corpus {  // no serialize: split reads it on the host
    const std::vector<std::string>* files = nullptr;
};

struct Histogram {  // no serialize: reduce builds it on the host
    std::map<std::string, std::uint64_t> counts;
};

const dtask::Job<Histogram> histogram{
    "compile_clean.histogram", [](const Corpus& corpus, dtask::SplitHint) { return *corpus.files; },
    [](const std::string& file) {
        return std::map<std::string, std::uint64_t>{{file, 1}};
    },
    [](Histogram total, std::map<std::string, std::uint64_t> part) {
        for (auto& [word, count] : part)
            total.counts[word] += count;
        return total;
    }};

}  // namespace

int main() {
    const auto cluster = dtask::ClusterOptions{.local_workers = 3};
    const auto listening = dtask::ClusterOptions{.insecure_tcp = false};
    const auto client = dtask::ClientOptions{.insecure_tcp = true};
    const auto run = dtask::RunOptions{.subtasks = 8};
    const auto retries = dtask::RunOptions{.max_attempts = 5};
    const auto job = dtask::JobOptions{.revision = 1};
    const auto hint = dtask::SplitHint{.workers = 2};
    return cluster.local_workers + static_cast<int>(listening.insecure_tcp) +
           static_cast<int>(client.insecure_tcp) + static_cast<int>(run.subtasks) +
           static_cast<int>(retries.max_attempts) + static_cast<int>(job.revision) +
           static_cast<int>(hint.workers) + static_cast<int>(histogram.name().size());
}
