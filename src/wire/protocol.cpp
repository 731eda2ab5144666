#include "wire/protocol.hpp"

#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <type_traits>

#include <unistd.h>

#include <dtask/detail/archive.hpp>

#include "random_hex.hpp"

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
            shape = {1, 1};  // the sender's release; the Hello
            return true;
        case Command::welcome:
            shape = {4, 0};  // heartbeat interval, liveness, maximum frame, incarnation
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
        case Command::pace:
            shape = {1, 0};  // heartbeat interval
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
            shape = {3, 3};  // job, subtask timeout, shared object (0: the data frame)
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
        case Command::share:
            shape = {1, 1};  // the shared object's id; its bytes
            return true;
        case Command::unshare:
            shape = {1, 0};
            return true;
    }
    return false;
}

// Fields are little-endian: on a little-endian host, one unaligned load or store.
std::uint64_t read_u64(const std::byte* data) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        std::uint64_t value;
        std::memcpy(&value, data, sizeof value);
        return value;
    }
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i)
        value = (value << 8) | std::to_integer<std::uint64_t>(data[i]);
    return value;
}

void write_u64(std::byte* data, std::uint64_t value) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(data, &value, sizeof value);
        return;
    }
    for (int i = 0; i < 8; ++i)
        data[i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}

std::size_t varint_size(std::uint64_t value) noexcept {
    std::size_t size = 1;
    for (; value >= 0x80; value >>= 7)
        ++size;
    return size;
}

std::byte* write_varint(std::byte* out, std::uint64_t value) noexcept {
    for (; value >= 0x80; value >>= 7)
        *out++ = static_cast<std::byte>((value & 0x7f) | 0x80);
    *out++ = static_cast<std::byte>(value);
    return out;
}

void write_start(std::byte* out, Command command, std::uint8_t in_version = version) noexcept {
    out[0] = std::byte{magic[0]};
    out[1] = std::byte{magic[1]};
    out[2] = std::byte{in_version};
    out[3] = static_cast<std::byte>(command);
}

/// Bytes before the job id's and the varints of a task or result.
constexpr std::size_t batch_header_fixed = header_size(1);

/// The error for a message of a known command whose shape is wrong.
ProtocolError malformed(Command command, const std::string& what) {
    return ProtocolError("malformed " + std::string(command_name(command)) + " message: " + what);
}

/// A run of subtasks [first, first + count) in a task or result: at least one, and its end
/// an index (no wrap), so that every comparison of indexes downstream holds.
void check_run(Command command, std::uint64_t first, std::uint64_t count) {
    if (count == 0)
        throw malformed(command,
                        "a run of no subtasks (first index " + std::to_string(first) + ")");
    if (count > std::numeric_limits<std::uint64_t>::max() - first)
        throw malformed(command, "first index " + std::to_string(first) + " and count " +
                                     std::to_string(count) + " go past the last subtask index");
}

/// The fixed fields a peer sets that a receiver adds to its clocks or counts with: each
/// within the bounds docs/protocol.md gives.
void check_fields(Command command, const std::array<std::uint64_t, 4>& fields) {
    const auto out_of = [&](const char* what, std::uint64_t value, std::uint64_t low,
                            std::uint64_t high) {
        if (value < low || value > high)
            throw malformed(command, std::string(what) + " " + std::to_string(value) +
                                         " is out of range (" + std::to_string(low) + " to " +
                                         std::to_string(high) + ")");
    };
    switch (command) {
        case Command::welcome:
            out_of("heartbeat interval (ms)", fields[0], 1, max_heartbeat_interval_ms);
            out_of("heartbeat liveness", fields[1], 1, max_heartbeat_liveness);
            return;
        case Command::pace:
            out_of("heartbeat interval (ms)", fields[0], 1, max_heartbeat_interval_ms);
            return;
        case Command::job:
            out_of("subtask timeout (ms)", fields[1], 0, max_duration_ms);
            return;
        case Command::pulse:
            out_of("pulse state", fields[0], 0, 1);
            return;
        default:
            return;
    }
}

/// Reads the compact header of a task or result (magic, version and command already
/// checked) of `fields` fields: the job id, then varints. Returns where the batch begins.
std::size_t read_batch_header(const std::byte* bytes, std::size_t size, Command command,
                              std::size_t fields, std::array<std::uint64_t, 4>& out) {
    if (size < batch_header_fixed + fields - 1) {
        throw malformed(command, "header frame of " + std::to_string(size) +
                                     " bytes, expected at least " +
                                     std::to_string(batch_header_fixed + fields - 1));
    }
    out[0] = read_u64(bytes + 4);
    std::size_t offset = batch_header_fixed;
    for (std::size_t i = 1; i < fields; ++i) {
        std::uint64_t value = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (offset == size)
                throw malformed(command, "header field " + std::to_string(i + 1) +
                                             " is cut off by the end of the frame");
            const auto byte = std::to_integer<std::uint64_t>(bytes[offset++]);
            if (shift == 63 && byte > 1)
                throw malformed(
                    command, "header field " + std::to_string(i + 1) + " does not fit in 64 bits");
            value |= (byte & 0x7f) << shift;
            if ((byte & 0x80) == 0)
                break;
        }
        out[i] = value;
    }
    return offset;
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
        case Command::pace:
            return "pace";
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
        case Command::share:
            return "share";
        case Command::unshare:
            return "unshare";
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
    Inbound message;
    message.command = static_cast<Command>(std::to_integer<std::uint8_t>(bytes[3]));
    const auto peer_version = std::to_integer<std::uint8_t>(bytes[2]);
    // A refuse reads the same in every version: a peer of another release hears why.
    const bool any_version_refuse =
        message.command == Command::refuse && head.size() == header_size(0);
    if (peer_version != version && !any_version_refuse) {
        throw ProtocolError("the peer speaks dtask protocol version " +
                            std::to_string(peer_version) + ", this build speaks version " +
                            std::to_string(version) + ": build both from the same dtask release");
    }
    Shape shape{};
    if (!shape_of(message.command, shape)) {
        throw ProtocolError("unknown dtask command 0x" + [&] {
            static const char digits[] = "0123456789abcdef";
            auto c = std::to_integer<unsigned>(bytes[3]);
            return std::string{digits[c >> 4], digits[c & 15]};
        }());
    }
    if (shape.batch) {
        const std::size_t offset =
            read_batch_header(bytes, head.size(), message.command, shape.fields, message.fields);
        check_run(message.command, message.fields[1], message.fields[2]);
        message.batch = std::span<const std::byte>(bytes + offset, head.size() - offset);
        message.frame = &frames[first];
    } else {
        const std::size_t fixed = header_size(shape.fields);
        if (head.size() != fixed) {
            throw malformed(message.command, "header frame of " + std::to_string(head.size()) +
                                                 " bytes, expected " + std::to_string(fixed));
        }
        for (std::size_t i = 0; i < shape.fields; ++i)
            message.fields[i] = read_u64(bytes + 4 + 8 * i);
    }
    check_fields(message.command, message.fields);
    message.body = std::span<zmq::message_t>(frames).subspan(first + 1);
    if (message.body.size() != shape.body_frames) {
        throw malformed(message.command, std::to_string(message.body.size()) +
                                             " body frames, expected " +
                                             std::to_string(shape.body_frames));
    }
    return message;
}

bool claims_command(const zmq::message_t& head, Command command) noexcept {
    const auto* bytes = static_cast<const std::byte*>(head.data());
    return head.size() >= 4 &&
           static_cast<Command>(std::to_integer<std::uint8_t>(bytes[3])) == command;
}

zmq::message_t header(Command command, std::initializer_list<std::uint64_t> fields) {
    zmq::message_t frame(header_size(fields.size()));
    auto* out = static_cast<std::byte*>(frame.data());
    write_start(out, command);
    out += 4;
    for (std::uint64_t value : fields) {
        write_u64(out, value);
        out += 8;
    }
    return frame;
}

zmq::message_t hello_header(std::uint64_t release) {
    return header(Command::hello, {release});
}

zmq::message_t refuse_header(std::uint8_t in_version) {
    zmq::message_t frame(header_size(0));
    write_start(static_cast<std::byte*>(frame.data()), Command::refuse, in_version);
    return frame;
}

std::size_t write_batch_header(std::span<std::byte> room, Command command, std::uint64_t job,
                               std::initializer_list<std::uint64_t> fields) {
    std::size_t size = batch_header_fixed;
    for (std::uint64_t value : fields)
        size += varint_size(value);
    const std::size_t start = room.size() - size;
    std::byte* out = room.data() + start;
    write_start(out, command);
    write_u64(out + 4, job);
    out += batch_header_fixed;
    for (std::uint64_t value : fields)
        out = write_varint(out, value);
    return start;
}

BatchFrame read_batch_frame(const zmq::message_t& frame) {
    const auto* bytes = static_cast<const std::byte*>(frame.data());
    const auto command = static_cast<Command>(std::to_integer<std::uint8_t>(bytes[3]));
    Shape shape{};
    shape_of(command, shape);  // parse() accepted the frame: a task or a result
    BatchFrame out;
    const std::size_t offset =
        read_batch_header(bytes, frame.size(), command, shape.fields, out.fields);
    out.batch = std::span<const std::byte>(bytes + offset, frame.size() - offset);
    return out;
}

void set_job_id(zmq::message_t& frame, std::uint64_t job) {
    own_bytes(frame);
    write_u64(static_cast<std::byte*>(frame.data()) + 4, job);
}

zmq::message_t text_frame(std::string_view text) {
    return zmq::message_t(text.data(), text.size());
}

zmq::message_t payload_frame(std::string&& bytes, std::size_t offset) {
    if (bytes.size() - offset < 256)
        return zmq::message_t(bytes.data() + offset, bytes.size() - offset);
    auto* owned = new std::string(std::move(bytes));
    return zmq::message_t(
        owned->data() + offset, owned->size() - offset,
        [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
}

void tune(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::linger, 200);
}

std::string random_routing_id(char prefix) {
    return std::string(1, prefix) + random_hex(16, "a routing id");
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

namespace {

// The enums of a body are loaded as their underlying byte: a value no enumerator has is
// refused where it is decoded.
void check_decoded(const Hello& hello) {
    if (hello.role != Role::worker && hello.role != Role::client)
        throw ProtocolError("malformed hello: role " +
                            std::to_string(static_cast<int>(hello.role)) +
                            " is neither a worker (1) nor a client (2)");
}

void check_decoded(const Failure& failure) {
    const auto kind = static_cast<int>(failure.kind);
    if (kind < static_cast<int>(FailureKind::exception) ||
        kind > static_cast<int>(last_failure_kind))
        throw ProtocolError("malformed failure report: unknown kind " + std::to_string(kind));
}

}  // namespace

template <class T>
T decode_body(const zmq::message_t& frame, const char* what) {
    T value;
    try {
        value = load_from<T>(as_bytes(frame), what);
    } catch (const ProtocolError&) {
        throw;
    } catch (const Error& e) {
        throw ProtocolError(e.what());  // out of memory: the peer is dropped, said as such
    }
    if constexpr (std::is_same_v<T, JobSettings>)
        check_settings(value, what);
    else
        check_decoded(value);
    return value;
}

void check_settings(const JobSettings& settings, const char* what) {
    const auto out_of = [&](const char* field, std::uint64_t value, std::uint64_t low,
                            std::uint64_t high) {
        if (value < low || value > high)
            throw ProtocolError(std::string("malformed ") + what + ": " + field + " " +
                                std::to_string(value) + " is out of range (" + std::to_string(low) +
                                " to " + std::to_string(high) + ")");
    };
    out_of("worker_wait (ms)", settings.worker_wait_ms, 0, max_duration_ms);
    out_of("priority", settings.priority, 1, max_priority);
    out_of("max_attempts", settings.max_attempts, 1, max_job_attempts);
    out_of("subtask_timeout (ms)", settings.subtask_timeout_ms, 0, max_duration_ms);
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
    // Into the messages of the last receive: zmq_msg_recv frees what they held, and nearly
    // every message has as many frames as the one before, so within a burst none is created
    // or destroyed.
    std::size_t count = 0;
    for (;;) {
        if (count == frames.size())
            frames.emplace_back();
        const auto flags = count == 0 && !wait ? zmq::recv_flags::dontwait : zmq::recv_flags::none;
        // Retried at the frame it stopped at: a receive of any frame may look at the
        // socket's commands first (libzmq does every 100 frames).
        if (!retry_interrupted([&] { return socket.recv(frames[count], flags); })) {
            frames.clear();
            return false;
        }
        acquired_from_sender(frames[count]);
        if (!frames[count++].more())
            break;
    }
    frames.resize(count);
    return true;
}

namespace {
thread_local std::uint64_t sent_on_this_thread = 0;
}  // namespace

std::uint64_t sends_on_this_thread() noexcept {
    return sent_on_this_thread;
}

void send(zmq::socket_t& socket, std::string_view to, std::span<zmq::message_t> frames) {
    ++sent_on_this_thread;
    // A send interrupted by a signal has taken nothing (libzmq returns before it looks at
    // the frame): it is sent again, and the frames before it stay queued in the message.
    if (!to.empty()) {
        retry_interrupted([&] {
            return socket.send(zmq::buffer(to.data(), to.size()), zmq::send_flags::sndmore);
        });
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
        released_to_receiver(frames[i]);
        auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        // Every dtask socket queues without limit (tune), so a send would block only on a
        // socket with no connection left: ZeroMQ ends a connection for good when its
        // handshake is refused (a stale or foreign token). Fail instead of blocking for ever.
        if (i == 0 && to.empty())
            flags = flags | zmq::send_flags::dontwait;
        if (!retry_interrupted([&] { return socket.send(frames[i], flags); }))
            throw TransportError(
                "dtask: the connection to the broker ended for good (the broker "
                "refused its handshake): nothing more can be sent on it");
    }
}

Delivery send_routed(zmq::socket_t& socket, std::span<zmq::message_t> frames) {
    ++sent_on_this_thread;
    if (frames.empty())
        return Delivery::queued;
    // ZeroMQ decides at the routing id: whether its peer exists and has room. The frames
    // after it are then always taken.
    try {
        released_to_receiver(frames[0]);
        if (!retry_interrupted([&] {
                return socket.send(frames[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait);
            }))
            return Delivery::full;
    } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH)
            return Delivery::gone;
        throw;
    }
    for (std::size_t i = 1; i < frames.size(); ++i) {
        released_to_receiver(frames[i]);
        const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        retry_interrupted([&] { return socket.send(frames[i], flags); });
    }
    return Delivery::queued;
}

}  // namespace dtask::detail::protocol
