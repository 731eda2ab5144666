// A host that starts a Cluster of two local workers, prints their pids on one line, and
// waits to be killed: the test kills it with SIGKILL and checks that its workers die too.
#include <chrono>
#include <iostream>

#include <unistd.h>

#include <dtask/dtask.hpp>

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    dtask::ClusterOptions options;
    options.local_workers = 2;
    dtask::Cluster cluster(options);
    if (!cluster.wait_for_workers(2, std::chrono::seconds(30)))
        return 1;
    for (pid_t pid : cluster.local_worker_pids())
        std::cout << pid << " ";
    std::cout << std::endl;
    pause();  // until a signal ends the process
    return 0;
}
