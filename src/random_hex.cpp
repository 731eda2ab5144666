#include "random_hex.hpp"

#include <cerrno>
#include <vector>

#include <sys/random.h>

#include <dtask/error.hpp>

namespace dtask::detail {

std::string random_hex(std::size_t bytes, const char* what) {
    std::vector<unsigned char> bits(bytes);
    std::size_t got = 0;
    while (got < bits.size()) {
        const ssize_t n = getrandom(bits.data() + got, bits.size() - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw Error(std::string("dtask: cannot read the system's random source for ") + what +
                        " (getrandom)");
        got += static_cast<std::size_t>(n);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * bytes);
    for (const unsigned char byte : bits) {
        text += digits[byte >> 4];
        text += digits[byte & 0xF];
    }
    return text;
}

}  // namespace dtask::detail
