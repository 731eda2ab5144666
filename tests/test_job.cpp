// Job definitions: registration by name, signatures, and misuse found at start-up.

#include <doctest/doctest.h>

#include <dtask/detail/job_model.hpp>

#include "job_registry.hpp"
#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace std::chrono_literals;

TEST_CASE("Job.registered_under_its_name_with_a_signature" * doctest::timeout(10)) {
    CHECK(dtask::detail::find_job("tests.squares") == &test_jobs::squares.model());
    CHECK(test_jobs::squares.name() == "tests.squares");
    const std::string& signature = test_jobs::squares.signature();
    CHECK(signature.find("subtask unsigned long (8 bytes)") != std::string::npos);
    CHECK(signature.find("partial unsigned long (8 bytes)") != std::string::npos);
    CHECK(signature.find("revision 0") != std::string::npos);
    CHECK(test_jobs::scaled.signature().find("shared test_jobs::Scale") != std::string::npos);
    CHECK(dtask::detail::find_job("no.such.job") == nullptr);
}

TEST_CASE("Job.two_jobs_under_one_name_are_an_error_at_start_up" * doctest::timeout(10)) {
    dtask::detail::check_registry();  // the test binary itself is fine
    {
        const dtask::detail::LateJobsAllowed late;  // main() ran dtask::init
        const dtask::Job<std::uint64_t> again{
            "tests.squares",
            [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
            [](const std::uint64_t& x) { return x; },
            [](std::uint64_t a, std::uint64_t b) { return a + b; }};
        try {
            dtask::detail::check_registry();
            FAIL("a duplicate name must be reported");
        } catch (const dtask::JobDefinitionError& e) {
            CHECK(std::string(e.what()).find("2 jobs are defined under the name 'tests.squares'") !=
                  std::string::npos);
        }
        CHECK_THROWS_AS(dtask::Cluster(small_cluster(0)), dtask::JobDefinitionError);
    }
    dtask::detail::check_registry();  // gone with its scope
}

TEST_CASE("Job.revision_changes_the_signature" * doctest::timeout(10)) {
    const dtask::detail::LateJobsAllowed late;  // main() ran dtask::init
    const dtask::Job<std::uint64_t> revised{
        "tests.revised",
        [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
        [](const std::uint64_t& x) { return x; },
        [](std::uint64_t a, std::uint64_t b) { return a + b; }, dtask::JobOptions{.revision = 2}};
    CHECK(revised.signature().find("revision 2") != std::string::npos);
}

TEST_CASE("Job.constructed_after_init_throws_at_once" * doctest::timeout(30)) {
    // This binary's main() ran dtask::init: a job constructed now is unknown to its workers.
    auto define = [] {
        const dtask::Job<std::uint64_t> late{
            "tests.late",
            [](const std::uint64_t& n, dtask::SplitHint) { return std::vector<std::uint64_t>(n); },
            [](const std::uint64_t& x) { return x; },
            [](std::uint64_t a, std::uint64_t b) { return a + b; }};
    };
    CHECK_THROWS_WITH_AS(define(), doctest::Contains("define jobs at namespace scope"),
                         dtask::JobDefinitionError);
    CHECK(dtask::detail::find_job("tests.late") == nullptr);
    // So does a program's own main(), as a user writes it.
    Process host(helpers_directory() + "/beginner_mistakes", {"job-in-main"}, "|");
    const auto line = host.read_line(20s);
    REQUIRE(line.has_value());
    CHECK_MESSAGE(contains(*line,
                           "refused: dtask: job 'mistakes.late' was constructed after "
                           "dtask::init()"),
                  *line);
    CHECK(contains(*line, "define jobs at namespace scope"));
    const auto status = host.wait_exit(20s);
    REQUIRE(status.has_value());
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
}
