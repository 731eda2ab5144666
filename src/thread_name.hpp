#pragma once
// Threads named for what they do, so that top -H, gdb, perf and the benchmarks can tell
// dtask's threads apart in a host application.

#include <pthread.h>

namespace dtask::detail {

/// Names the calling thread; `name` has at most 15 characters (Linux's limit).
inline void name_this_thread(const char* name) noexcept {
    pthread_setname_np(pthread_self(), name);
}

}  // namespace dtask::detail
