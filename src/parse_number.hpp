#pragma once
/// \file Whole numbers from a command line, within bounds: one parser for the worker's options
/// (dtask::init) and dtaskd's, each of which reports a refusal its own way.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace dtask::detail {

/// The number `text` spells, if it is all decimal digits and from `low` to `high`.
inline std::optional<unsigned long> parse_number(std::string_view text, unsigned long low,
                                                 unsigned long high) noexcept {
    unsigned long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value < low || value > high)
        return std::nullopt;
    return value;
}

/// What to say when parse_number refused `text`, the value of option `flag`.
inline std::string not_a_number_message(std::string_view flag, std::string_view text,
                                        unsigned long low, unsigned long high) {
    return std::string(flag) + " takes a whole number from " + std::to_string(low) + " to " +
           std::to_string(high) + ", not '" + std::string(text) + "'";
}

}  // namespace dtask::detail
