// The archive (load_from) on any bytes, for a representative set of types (fuzz/types.hpp):
// the first byte chooses the type. What decodes must encode and decode to the same bytes.
#include <cstdlib>
#include <span>

#include <dtask/detail/archive.hpp>
#include <dtask/error.hpp>

#include "types.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
    dtask::fuzz::with_type(data[0], [&]<class T>() {
        try {
            const T value = dtask::detail::load_from<T>(bytes, "fuzz input");
            std::string once;
            dtask::detail::save_to(once, value);
            const T again = dtask::detail::load_from<T>(std::as_bytes(std::span(once)), "again");
            std::string twice;
            dtask::detail::save_to(twice, again);
            if constexpr (dtask::fuzz::unordered<T>) {
                if (!(value == again))  // the order of an unordered container may change
                    std::abort();
            } else if (once != twice) {
                std::abort();
            }
        } catch (const dtask::ProtocolError&) {
        }
    });
    return 0;
}
