// The worker's view of a message from a peer (fuzz/messages.hpp).
#include "messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    dtask::fuzz::decode_as(dtask::fuzz::Role::worker, data, size);
    return 0;
}
