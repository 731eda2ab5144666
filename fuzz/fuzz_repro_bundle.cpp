// The repro bundle's decoder (what `--dtask-replay FILE` reads) on any bytes: it refuses with
// a dtask::Error or decodes, and what decodes encodes to the same bytes.
#include <cstdlib>
#include <cstring>
#include <span>

#include <dtask/error.hpp>

#include "repro_bundle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::as_bytes(std::span(data, size));
    try {
        const auto bundle = dtask::detail::decode_bundle(bytes);
        const std::string again = dtask::detail::encode_bundle(bundle);
        if (again.size() != size || std::memcmp(again.data(), data, size) != 0)
            std::abort();
    } catch (const dtask::Error&) {
    }
    return 0;
}
