#pragma once
// A repro bundle: what it takes to run one failed subtask's map again, alone, in the
// foreground of the same binary (PROGRAM --dtask-replay FILE): the job's name and signature,
// the subtask's index and bytes, the job-wide data and the error it failed with. The host
// writes one when asked to (RunOptions::replay_dir); replay reads it back as untrusted input.
//
// Format, version 1, integers little-endian: the magic "DTASKRPL", a u32 version, the u64
// subtask index, a u8 failure kind, then eight fields each as a u64 length and its bytes (job,
// signature, worker, exception type, error message, placed data, job-wide data, subtask),
// then a u64
// FNV-1a checksum of everything before it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace dtask::detail {

/// How the subtask failed.
enum class ReproFailure : std::uint8_t {
    exception = 0,  ///< map threw (TaskError)
    crash = 1,      ///< it killed its worker on every attempt (PoisonSubtaskError)
    timeout = 2,    ///< it ran past its timeout on every attempt (TimeoutError)
};

struct ReproBundle {
    std::string job;
    std::string signature;
    std::uint64_t subtask = 0;
    ReproFailure failure = ReproFailure::exception;
    std::string worker;          // the last worker it failed on
    std::string exception_type;  // what map threw, demangled; empty for a crash or timeout
    std::string error;           // the failure's message, as the worker or broker told it
    std::string placed;          // a map of three parameters: the data placed with share()
    std::string shared;          // the job-wide data's bytes (inline, or placed with share()
                                 // for a map of two parameters)
    std::string subtask_bytes;   // the subtask's bytes, as map's worker decodes them
};

/// The version this build writes and reads.
inline constexpr std::uint32_t repro_bundle_version = 1;
/// The largest bundle file replay reads.
inline constexpr std::uint64_t max_repro_bundle_bytes = std::uint64_t{4} << 30;

/// "exception", "crash" or "timeout".
const char* failure_name(ReproFailure failure) noexcept;

/// The bundle's bytes.
std::string encode_bundle(const ReproBundle& bundle);
/// The bundle in `bytes`. Throws Error saying what is wrong: not a bundle, another version,
/// cut short, damaged (checksum), or trailing bytes. Allocates no more than `bytes` holds.
ReproBundle decode_bundle(std::span<const std::byte> bytes);

}  // namespace dtask::detail
