#pragma once
// The busy kernel of the granularity measurements: CPU work of a chosen length that the
// compiler cannot shorten, and its calibration to nanoseconds per iteration.

#include <chrono>
#include <cstdint>

namespace perf {

/// `iterations` steps of xorshift64. Each step needs the one before, so the loop can be
/// neither vectorized nor folded; the caller uses the state returned, so it is not removed.
/// The state never becomes 0 (xorshift is a bijection on the non-zero integers).
inline std::uint64_t spin(std::uint64_t iterations) {
    std::uint64_t state = 0x9E3779B97F4A7C15u;
    for (std::uint64_t i = 0; i < iterations; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    return state;
}

/// Nanoseconds per iteration of spin on this thread now: spins for at least `sample`
/// (doubling the iterations until a run lasts that long) and divides.
inline double spin_ns_per_iteration(std::chrono::nanoseconds sample) {
    std::uint64_t iterations = 1024;
    for (;;) {
        const auto start = std::chrono::steady_clock::now();
        const bool nonzero = spin(iterations) != 0;
        const auto elapsed = std::chrono::steady_clock::now() - start;
        if (nonzero && elapsed >= sample)
            return std::chrono::duration<double, std::nano>(elapsed).count() /
                   static_cast<double>(iterations);
        iterations *= 2;
    }
}

}  // namespace perf
