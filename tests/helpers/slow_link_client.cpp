// A client that uploads big subtasks and receives big partials (test_jobs::chunks): the
// slow-link tests run it behind a shaped link. Prints "result SUM COUNT", or the error.
#include <iostream>
#include <string>

#include "../jobs.hpp"

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    if (argc != 5) {
        std::cerr << "usage: slow_link_client BROKER_ENDPOINT COUNT CHUNK_BYTES PARTIAL_BYTES\n";
        return 2;
    }
    try {
        dtask::Client client(argv[1]);  // the token from DTASK_TOKEN
        const test_jobs::Chunks spec{std::stoull(argv[2]), std::stoull(argv[3]),
                                     std::stoull(argv[4])};
        const test_jobs::Tally total = client.run(test_jobs::chunks, spec, spec);
        std::cout << "result " << total.sum << " " << total.count << std::endl;
        return 0;
    } catch (const std::exception& e) {
        std::cout << "error " << e.what() << std::endl;
        return 1;
    }
}
