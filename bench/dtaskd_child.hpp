#pragma once
// A dtaskd started as users start it, for the scenarios that measure through one: a keys
// directory of its own, a loopback TCP endpoint, warnings only in its log.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "bench_child.hpp"
#include "temp_dir.hpp"

#ifdef DTASK_PERF_DTASKD
namespace perf {

struct DtaskdChild {
    test_support::TempDir keys{"dtask-perf-keys"};  // first: removed after dtaskd has gone
    std::optional<BenchChild> process;
    std::string endpoint;

    /// `options`: more of dtaskd's options.
    explicit DtaskdChild(const std::vector<std::string>& options);

    /// The join token of `role` ("worker", "client"), from its file in the keys directory.
    std::string token(const std::string& role) const;
};

}  // namespace perf
#endif
