// A host that starts a Cluster and waits to be killed (SIGKILL: it never ends on its own).
// Without arguments: two local workers, whose pids it prints on one line; the test checks
// that they die with it. With `--listen KEYS_DIR [ENDPOINT]`: no local worker and a loopback
// TCP endpoint (ENDPOINT, or a free port) whose keys stay in KEYS_DIR; it prints the
// endpoint, the join token and the client token, then "joined" once a remote worker has
// joined, and the test starts the next host on the same endpoint and keys once this one has
// vanished.
#include <chrono>
#include <iostream>
#include <string_view>

#include <unistd.h>

#include <dtask/dtask.hpp>

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    dtask::ClusterOptions options;
    const bool listen = (argc == 3 || argc == 4) && std::string_view(argv[1]) == "--listen";
    if (listen) {
        options.local_workers = 0;
        options.listen.push_back(argc == 4 ? argv[3] : "tcp://127.0.0.1:*");
        options.keys_directory = argv[2];
    } else {
        options.local_workers = 2;
    }
    dtask::Cluster cluster(options);
    if (listen) {
        std::cout << cluster.endpoints().back() << "\n"
                  << cluster.join_token() << "\n"
                  << cluster.client_token() << std::endl;
        if (!cluster.wait_for_workers(1, std::chrono::seconds(60)))
            return 1;
        std::cout << "joined" << std::endl;
    } else {
        if (!cluster.wait_for_workers(2, std::chrono::seconds(30)))
            return 1;
        for (pid_t pid : cluster.local_worker_pids())
            std::cout << pid << " ";
        std::cout << std::endl;
    }
    pause();  // until a signal ends the process
    return 0;
}
