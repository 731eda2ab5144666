#pragma once
// /metrics: a StatusSnapshot in the Prometheus text format (version 0.0.4): counters with
// _total, base units (seconds, bytes), HELP and TYPE lines (docs/observability.md).

#include <string>

#include "http/snapshot.hpp"

namespace dtask::detail {

std::string metrics_text(const StatusSnapshot& snapshot);

}  // namespace dtask::detail
