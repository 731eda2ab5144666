// The test binary doubles as a worker: started with --dtask-worker it serves the jobs of
// tests/jobs.hpp, as a user's host binary would.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <dtask/dtask.hpp>

int main(int argc, char** argv) {
    dtask::init(argc, argv);
    doctest::Context context(argc, argv);
    return context.run();
}
