#pragma once
// dtaskd status: the picture of a running dtaskd's HTTP endpoint as text (workers, jobs with
// their progress, recent events), like `ray status`.

#include <string>

namespace dtask::dtaskd {

/// Reads /api/status of `address` (PORT or HOST:PORT) and prints it; with `token` (the
/// monitoring token; empty: none) in an Authorization header. The exit status: 0, or 1
/// after a message on stderr saying why the broker could not be read.
int print_status(const std::string& address, const std::string& token);

}  // namespace dtask::dtaskd
