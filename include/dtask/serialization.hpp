#pragma once
/// \file
/// What dtask serializes with: cereal's binary archive and the cereal support for the
/// standard types a job most often uses (strings, containers, pairs, tuples, optionals,
/// variants, smart pointers, chrono durations, complex numbers, and `__int128` as two 64-bit
/// halves), so that `std::vector<std::string>` as a subtask just works. Types of your own
/// need a `serialize` member that names every field (see cereal's documentation):
///
///     struct Range {
///         std::uint64_t lo = 0, hi = 0;
///         template <class Archive>
///         void serialize(Archive& archive) { archive(lo, hi); }
///     };
///
/// The bytes are the platform's own (byte order, type sizes): host and workers must be of
/// the same kind of platform, which the broker checks when a worker joins.

#include <cstdint>
#include <type_traits>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#if defined(__SIZEOF_INT128__)
namespace cereal {
// In strict ISO mode (-std=c++20 rather than gnu++20) the 128-bit integers are not
// "arithmetic", so cereal has no rule for them; store them as two 64-bit halves instead.
template <class Archive, class Int128>
requires(std::is_same_v<Int128, unsigned __int128> || std::is_same_v<Int128, __int128>) &&
    (!std::is_arithmetic_v<Int128>)void save(Archive& archive, const Int128& value) {
    const auto bits = static_cast<unsigned __int128>(value);
    archive(static_cast<std::uint64_t>(bits), static_cast<std::uint64_t>(bits >> 64));
}

template <class Archive, class Int128>
requires(std::is_same_v<Int128, unsigned __int128> || std::is_same_v<Int128, __int128>) &&
    (!std::is_arithmetic_v<Int128>)void load(Archive& archive, Int128& value) {
    std::uint64_t low = 0, high = 0;
    archive(low, high);
    value = static_cast<Int128>((static_cast<unsigned __int128>(high) << 64) | low);
}
}  // namespace cereal
#endif
