#pragma once
/// \file Human-readable type names for error messages and job signatures.

#include <string>
#include <typeinfo>

#include <dtask/export.hpp>

namespace dtask::detail {

/// The demangled name of a type, e.g. "std::vector<int>" rather than "St6vectorIiSaIiEE".
DTASK_EXPORT std::string demangle(const char* mangled_name);

template <class T>
std::string type_name() {
    return demangle(typeid(T).name());
}

}  // namespace dtask::detail
