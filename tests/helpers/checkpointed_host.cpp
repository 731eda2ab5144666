// A host that runs a checkpointed job on two local workers and prints "result R".
// Usage: checkpointed_host in_order|any_order DIR CHECKPOINT N FROM
// (the gate of checkpointed_job.hpp: any_order holds subtask FROM alone, in_order those
// from FROM on, while DIR/hold exists).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string_view>

#include <dtask/dtask.hpp>

#include "checkpointed_job.hpp"

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    if (argc != 6) {
        std::cerr << "usage: checkpointed_host in_order|any_order DIR CHECKPOINT N FROM\n";
        return 2;
    }
    const bool in_order = std::string_view(argv[1]) == "in_order";
    const checkpointed::Work work{std::strtoull(argv[4], nullptr, 10)};
    const checkpointed::Gate gate{argv[2], std::strtoull(argv[5], nullptr, 10), !in_order};
    dtask::ClusterOptions cluster_options;
    cluster_options.local_workers = 2;
    cluster_options.worker_credits = 1;  // a worker held at the gate holds no other subtask
    const dtask::RunOptions options{.window = checkpointed::window,
                                    .batch_size = 1,
                                    .backup_tasks = false,
                                    .checkpoint = argv[3],
                                    .checkpoint_interval = std::chrono::milliseconds(20)};
    try {
        dtask::Cluster cluster(cluster_options);
        const std::uint64_t result = cluster.run(
            in_order ? checkpointed::in_order : checkpointed::any_order, work, gate, options);
        std::cout << "result " << result << std::endl;
    } catch (const dtask::Error& e) {
        std::cout << "error " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
