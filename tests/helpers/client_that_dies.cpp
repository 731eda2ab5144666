// A client that submits a job far too large to finish, makes sure it is running, says
// "running" and waits: the test kills it with SIGKILL in the middle of that job.
#include <iostream>

#include "../jobs.hpp"

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    if (argc != 2) {
        std::cerr << "usage: client_that_dies BROKER_ENDPOINT\n";
        return 2;
    }
    dtask::Client client(argv[1]);
    // 20 ms a subtask: the subtasks queued at the broker would keep two workers busy for
    // about ten seconds.
    auto endless = client.submit(test_jobs::busy, test_jobs::Busy{100'000'000, 20'000});
    // A small job served in turn beside it: once it is done, the big one is running too.
    if (client.run(test_jobs::squares, std::uint64_t{10}) != test_jobs::serial_squares(10))
        return 1;
    std::cout << "running" << std::endl;
    endless.wait();
    return 0;
}
