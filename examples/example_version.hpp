#pragma once
// `--version` of the examples: the program's name and the dtask release it was built with,
// as "monte_carlo_pi 0.1.0".

#include <iostream>
#include <string_view>

#include <dtask/version.hpp>

inline void print_version(std::string_view program) {
    std::cout << program << " " << DTASK_VERSION_STRING << "\n";
}
