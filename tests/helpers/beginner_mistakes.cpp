// The mistakes a newcomer makes, each a mode of this host:
//   DTASK_TEST_NO_INIT=DIR  main() forgets dtask::init. Each run of main() leaves a mark in
//                   DIR (local workers inherit the variable, not the arguments); prints the
//                   error and how long it took to come.
//   DTASK_TEST_INIT_WITHOUT_ARGUMENTS=DIR  main() calls dtask::init only when it has no
//                   arguments, so the host does and its local workers (which have) do not:
//                   they run main() again. Marks and prints as above.
//   job-in-main     a Job defined inside main(), after dtask::init: prints the error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "../jobs.hpp"

namespace {

/// Leaves a mark for this run of main() in directory `marks`.
void mark_run(const char* marks) {
    const std::string mark = std::string(marks) + "/main-" + std::to_string(getpid());
    close(open(mark.c_str(), O_CREAT | O_WRONLY, 0600));
}

/// Runs a small job on a Cluster with two local workers; prints its error and how long the
/// Cluster and the job took to fail. 0 if they failed, 1 if the job succeeded.
int run_and_report() {
    const auto began = std::chrono::steady_clock::now();
    try {
        dtask::Cluster cluster(dtask::ClusterOptions{.local_workers = 2});
        cluster.run(test_jobs::squares, std::uint64_t{10});  // worker_wait: 60 s
        std::cout << "the job succeeded" << std::endl;
        return 1;
    } catch (const dtask::Error& e) {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - began);
        std::cout << "failed after " << took.count() << " ms: " << e.what() << std::endl;
        return 0;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (const char* marks = std::getenv("DTASK_TEST_NO_INIT"); marks != nullptr) {
        mark_run(marks);
        // dtask::init(argc, argv) forgotten here.
        return run_and_report();
    }
    if (const char* marks = std::getenv("DTASK_TEST_INIT_WITHOUT_ARGUMENTS"); marks != nullptr) {
        mark_run(marks);
        if (argc == 1)
            dtask::init(argc, argv);
        return run_and_report();
    }
    dtask::init(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "job-in-main") {
        try {
            const dtask::Job<std::uint64_t> late{
                "mistakes.late",
                [](const std::uint64_t& n, dtask::SplitHint) {
                    return dtask::pieces(n, [](std::uint64_t i) { return i; });
                },
                [](const std::uint64_t& x) { return x; },
                [](std::uint64_t total, std::uint64_t part) { return total + part; }};
            std::cout << "the job was defined" << std::endl;
            return 1;
        } catch (const dtask::JobDefinitionError& e) {
            std::cout << "refused: " << e.what() << std::endl;
            return 0;
        }
    }
    std::cerr
        << "usage: beginner_mistakes job-in-main, or DTASK_TEST_NO_INIT=DIR beginner_mistakes\n";
    return 2;
}
