#include "protocol.hpp"

#include <cerrno>
#include <climits>
#include <cstring>

#include <unistd.h>

#include <dtask/detail/archive.hpp>

// ThreadSanitizer cannot see how libzmq (not instrumented in Debian) hands a message from
// one thread to another: over inproc the receiver reads the very bytes the sender wrote.
// Sends release, and receives acquire, each frame's bytes, so that it sees the hand-off.
#if defined(__SANITIZE_THREAD__)
#define DTASK_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DTASK_THREAD_SANITIZER 1
#endif
#endif
#ifdef DTASK_THREAD_SANITIZER
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_release(void* address);
#endif

namespace dtask::detail::protocol {
namespace {

void released_to_receiver([[maybe_unused]] zmq::message_t& frame) {
#ifdef DTASK_THREAD_SANITIZER
    __tsan_release(frame.data());
#endif
}

void acquired_from_sender([[maybe_unused]] zmq::message_t& frame) {
#ifdef DTASK_THREAD_SANITIZER
    __tsan_acquire(frame.data());
#endif
}

/// Before a frame is written in place. A frame received over ipc or tcp lies in a buffer
/// that libzmq's I/O thread fills and, once every message in it is closed, fills again: the
/// bytes another thread read in an earlier message may be this frame's now. libzmq's
/// reference counts order that, out of ThreadSanitizer's sight. Under ThreadSanitizer alone
/// the frame is first copied to memory of its own, so that it reports no such reuse.
void own_bytes([[maybe_unused]] zmq::message_t& frame) {
#ifdef DTASK_THREAD_SANITIZER
    zmq::message_t copy(frame.data(), frame.size());
    frame.swap(copy);
#endif
}

struct Shape {
    std::size_t fields;
    std::size_t body_frames;
    bool batch = false;  // a batch follows the fields in the header frame
};

bool shape_of(Command command, Shape& shape) {
    switch (command) {
        case Command::hello:
            shape = {0, 1};
            return true;
        case Command::welcome:
            shape = {2, 0};
            return true;
        case Command::refuse:
            shape = {0, 1};
            return true;
        case Command::heartbeat:
            shape = {0, 0};
            return true;
        case Command::bye:
            shape = {0, 0};
            return true;
        case Command::status:
            shape = {1, 0};
            return true;
        case Command::reconnect:
            shape = {0, 0};
            return true;
        case Command::submit:
            shape = {1, 4};
            return true;
        case Command::task:
            shape = {3, 0, true};  // job, first subtask index, count; then the batch
            return true;
        case Command::result:
            shape = {4, 0, true};  // job, first index, count, ns spent in map; then the batch
            return true;
        case Command::failure:
            shape = {2, 1};
            return true;
        case Command::end:
            shape = {1, 0};
            return true;
        case Command::cancel:
            shape = {1, 0};
            return true;
        case Command::job:
            shape = {2, 3};
            return true;
        case Command::revoke:
            shape = {2, 0};
            return true;
        case Command::split_done:
            shape = {1, 0};
            return true;
        case Command::notice:
            shape = {1, 1};
            return true;
        case Command::pulse:
            shape = {1, 1};  // 0: alive, 1: leaving; the worker's routing id
            return true;
        case Command::hung:
            shape = {2, 2};  // job, subtask index; the worker's routing id, a Failure
            return true;
    }
    return false;
}

std::uint64_t read_u64(const std::byte* data) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i)
        value = (value << 8) | std::to_integer<std::uint64_t>(data[i]);
    return value;
}

void write_u64(std::byte* data, std::uint64_t value) {
    for (int i = 0; i < 8; ++i)
        data[i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}

}  // namespace

std::string_view command_name(Command command) noexcept {
    switch (command) {
        case Command::hello:
            return "hello";
        case Command::welcome:
            return "welcome";
        case Command::refuse:
            return "refuse";
        case Command::heartbeat:
            return "heartbeat";
        case Command::bye:
            return "bye";
        case Command::status:
            return "status";
        case Command::reconnect:
            return "reconnect";
        case Command::submit:
            return "submit";
        case Command::task:
            return "task";
        case Command::result:
            return "result";
        case Command::failure:
            return "failure";
        case Command::end:
            return "end";
        case Command::cancel:
            return "cancel";
        case Command::job:
            return "job";
        case Command::notice:
            return "notice";
        case Command::revoke:
            return "revoke";
        case Command::split_done:
            return "split_done";
        case Command::pulse:
            return "pulse";
        case Command::hung:
            return "hung";
    }
    return "unknown";
}

const std::string& platform() {
    static const std::string tag = [] {
        const std::uint16_t probe = 1;
        std::uint8_t first = 0;
        std::memcpy(&first, &probe, 1);
        return std::string(first == 1 ? "little-endian" : "big-endian") + ", long " +
               std::to_string(sizeof(long) * CHAR_BIT) + " bits, pointer " +
               std::to_string(sizeof(void*) * CHAR_BIT) + " bits, long double " +
               std::to_string(sizeof(long double) * CHAR_BIT) + " bits";
    }();
    return tag;
}

std::string process_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0)
        std::strcpy(host, "unknown-host");
    return std::string(host) + ":" + std::to_string(getpid());
}

Inbound parse(std::vector<zmq::message_t>& frames, std::size_t first) {
    if (frames.size() <= first)
        throw ProtocolError("empty message: no dtask header frame");
    const zmq::message_t& head = frames[first];
    const auto* bytes = static_cast<const std::byte*>(head.data());
    if (head.size() < 4 || std::to_integer<std::uint8_t>(bytes[0]) != magic[0] ||
        std::to_integer<std::uint8_t>(bytes[1]) != magic[1]) {
        throw ProtocolError("not a dtask message: the header frame (" +
                            std::to_string(head.size()) +
                            " bytes) does not start with the dtask magic 'dt'");
    }
    const auto peer_version = std::to_integer<std::uint8_t>(bytes[2]);
    if (peer_version != version) {
        throw ProtocolError("the peer speaks dtask protocol version " +
                            std::to_string(peer_version) + ", this build speaks version " +
                            std::to_string(version) + ": build both from the same dtask release");
    }
    Inbound message;
    message.command = static_cast<Command>(std::to_integer<std::uint8_t>(bytes[3]));
    Shape shape{};
    if (!shape_of(message.command, shape)) {
        throw ProtocolError("unknown dtask command 0x" + [&] {
            static const char digits[] = "0123456789abcdef";
            auto c = std::to_integer<unsigned>(bytes[3]);
            return std::string{digits[c >> 4], digits[c & 15]};
        }());
    }
    const std::size_t fixed = header_size(shape.fields);
    if (head.size() < fixed || (!shape.batch && head.size() != fixed)) {
        throw ProtocolError("malformed " + std::string(command_name(message.command)) +
                            " message: header frame of " + std::to_string(head.size()) +
                            " bytes, expected " + (shape.batch ? "at least " : "") +
                            std::to_string(fixed));
    }
    for (std::size_t i = 0; i < shape.fields; ++i)
        message.fields[i] = read_u64(bytes + 4 + 8 * i);
    message.body = std::span<zmq::message_t>(frames).subspan(first + 1);
    if (message.body.size() != shape.body_frames) {
        throw ProtocolError("malformed " + std::string(command_name(message.command)) +
                            " message: " + std::to_string(message.body.size()) +
                            " body frames, expected " + std::to_string(shape.body_frames));
    }
    if (shape.batch) {
        message.batch = std::span<const std::byte>(bytes + fixed, head.size() - fixed);
        message.frame = &frames[first];
    }
    return message;
}

zmq::message_t header(Command command, std::initializer_list<std::uint64_t> fields) {
    zmq::message_t frame(header_size(fields.size()));
    write_header({static_cast<std::byte*>(frame.data()), frame.size()}, command, fields);
    return frame;
}

void write_header(std::span<std::byte> bytes, Command command,
                  std::initializer_list<std::uint64_t> fields) {
    bytes[0] = std::byte{magic[0]};
    bytes[1] = std::byte{magic[1]};
    bytes[2] = std::byte{version};
    bytes[3] = static_cast<std::byte>(command);
    std::size_t offset = 4;
    for (std::uint64_t value : fields) {
        write_u64(bytes.data() + offset, value);
        offset += 8;
    }
}

std::uint64_t field(const zmq::message_t& frame, std::size_t index) noexcept {
    return read_u64(static_cast<const std::byte*>(frame.data()) + 4 + 8 * index);
}

void set_field(zmq::message_t& frame, std::size_t index, std::uint64_t value) {
    own_bytes(frame);
    write_u64(static_cast<std::byte*>(frame.data()) + 4 + 8 * index, value);
}

zmq::message_t text_frame(std::string_view text) {
    return zmq::message_t(text.data(), text.size());
}

zmq::message_t payload_frame(std::string&& bytes) {
    if (bytes.size() < 256)
        return zmq::message_t(bytes.data(), bytes.size());
    auto* owned = new std::string(std::move(bytes));
    return zmq::message_t(
        owned->data(), owned->size(),
        [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
}

void tune(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::linger, 200);
}

std::string_view as_text(const zmq::message_t& frame) noexcept {
    return {static_cast<const char*>(frame.data()), frame.size()};
}

std::span<const std::byte> as_bytes(const zmq::message_t& frame) noexcept {
    return {static_cast<const std::byte*>(frame.data()), frame.size()};
}

template <class T>
zmq::message_t encode_body(const T& value) {
    std::string bytes;
    save_to(bytes, value);
    return zmq::message_t(bytes.data(), bytes.size());
}

template <class T>
T decode_body(const zmq::message_t& frame, const char* what) {
    return load_from<T>(as_bytes(frame), what);
}

template zmq::message_t encode_body<Hello>(const Hello&);
template zmq::message_t encode_body<Failure>(const Failure&);
template zmq::message_t encode_body<JobSettings>(const JobSettings&);
template Hello decode_body<Hello>(const zmq::message_t&, const char*);
template JobSettings decode_body<JobSettings>(const zmq::message_t&, const char*);
template Failure decode_body<Failure>(const zmq::message_t&, const char*);

void poll(std::span<zmq::pollitem_t> items, std::chrono::milliseconds timeout) {
    try {
        zmq::poll(items.data(), items.size(), timeout);
    } catch (const zmq::error_t& e) {
        if (e.num() != EINTR)
            throw;
        for (auto& item : items)
            item.revents = 0;
    }
}

bool receive(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, bool wait) {
    for (;;) {
        frames.clear();
        try {
            const bool received =
                zmq::recv_multipart(socket, std::back_inserter(frames),
                                    wait ? zmq::recv_flags::none : zmq::recv_flags::dontwait)
                    .has_value();
            for (auto& frame : frames)
                acquired_from_sender(frame);
            return received;
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR)
                throw;
        }
    }
}

namespace {
thread_local std::uint64_t sent_on_this_thread = 0;
}  // namespace

std::uint64_t sends_on_this_thread() noexcept {
    return sent_on_this_thread;
}

void send(zmq::socket_t& socket, std::string_view to, std::span<zmq::message_t> frames) {
    ++sent_on_this_thread;
    if (!to.empty())
        socket.send(zmq::buffer(to.data(), to.size()), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i) {
        released_to_receiver(frames[i]);
        socket.send(frames[i],
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

}  // namespace dtask::detail::protocol
