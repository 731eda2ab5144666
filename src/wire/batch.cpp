#include "wire/batch.hpp"

#include <array>
#include <cstring>
#include <string>

#include <dtask/error.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {
namespace {

std::uint32_t read_u32(const std::byte* data) {
    return std::to_integer<std::uint32_t>(data[0]) | std::to_integer<std::uint32_t>(data[1]) << 8 |
           std::to_integer<std::uint32_t>(data[2]) << 16 |
           std::to_integer<std::uint32_t>(data[3]) << 24;
}

}  // namespace

void BatchWriter::end() {
    const std::size_t length = out_.size() - start_ - record_header_size;
    if (length > 0xffffffffULL)
        throw Error("dtask: a subtask or partial result of " + std::to_string(length) +
                    " bytes is larger than the 4 GiB a message can carry");
    for (std::size_t i = 0; i < record_header_size; ++i)
        out_[start_ + i] = static_cast<char>((length >> (8 * i)) & 0xff);
}

bool BatchReader::next(std::span<const std::byte>& record, const char* what) {
    if (offset_ == frame_.size())
        return false;
    if (frame_.size() - offset_ < record_header_size)
        throw ProtocolError(std::string("malformed ") + what + ": a record's length is cut off " +
                            std::to_string(offset_) + " bytes into a frame of " +
                            std::to_string(frame_.size()));
    const std::uint32_t length = read_u32(frame_.data() + offset_);
    offset_ += record_header_size;
    if (frame_.size() - offset_ < length)
        throw ProtocolError(std::string("malformed ") + what + ": a record of " +
                            std::to_string(length) + " bytes, but only " +
                            std::to_string(frame_.size() - offset_) + " are left in the frame");
    record = frame_.subspan(offset_, length);
    offset_ += length;
    return true;
}

void check_batch(std::span<const std::byte> batch, std::uint64_t count, const char* what) {
    BatchReader reader(batch);
    std::span<const std::byte> record;
    std::uint64_t found = 0;
    while (reader.next(record, what))
        ++found;
    if (found != count)
        throw ProtocolError(std::string("malformed ") + what + ": the header says " +
                            std::to_string(count) + " subtasks, the frame holds " +
                            std::to_string(found));
}

zmq::message_t slice_batch(const zmq::message_t& task, std::uint64_t from, std::uint64_t to) {
    using namespace protocol;
    const BatchFrame whole = read_batch_frame(task);
    BatchReader reader(whole.batch);
    std::span<const std::byte> record;
    std::size_t begin = 0;
    for (std::uint64_t i = 0; i < to && reader.next(record, "batch"); ++i) {
        if (i + 1 == from)
            begin = reader.offset();
    }
    if (from == 0)
        begin = 0;
    const std::size_t end = reader.offset();
    std::array<std::byte, task_header_room> room;
    const std::size_t start = write_batch_header(room, Command::task, whole.fields[0],
                                                 {whole.fields[1] + from, to - from});
    const std::size_t header = room.size() - start;
    zmq::message_t slice(header + end - begin);
    auto* out = static_cast<std::byte*>(slice.data());
    std::memcpy(out, room.data() + start, header);
    std::memcpy(out + header, whole.batch.data() + begin, end - begin);
    return slice;
}

}  // namespace dtask::detail
