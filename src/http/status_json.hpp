#pragma once
// /api/status: a StatusSnapshot as JSON, in the schema of docs/observability.md (and
// tests/http/status_schema.json), which the dashboard page reads.

#include <string>

#include "http/snapshot.hpp"

namespace dtask::detail {

std::string status_json(const StatusSnapshot& snapshot);

}  // namespace dtask::detail
