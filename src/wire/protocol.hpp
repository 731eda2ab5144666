#pragma once
// The dtask wire protocol (docs/protocol.md): every message is a header frame (magic, version,
// command, fixed 64-bit fields) followed by body frames whose number the command fixes. The
// messages that carry subtasks and results, task and result, are one frame: a compact header
// (the job id, then varint fields) and their batch. Decoding validates all of it and throws
// ProtocolError naming what was wrong.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cereal/cereal.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <dtask/error.hpp>
#include <dtask/version.hpp>

namespace dtask::detail::protocol {

inline constexpr std::uint8_t version = 10;
inline constexpr std::array<std::uint8_t, 2> magic{'d', 't'};

/// A dtask release as a hello carries it: major << 32 | minor << 16 | patch.
constexpr std::uint64_t release_of(std::uint64_t major, std::uint64_t minor,
                                   std::uint64_t patch) noexcept {
    return major << 32 | minor << 16 | patch;
}
static_assert(DTASK_VERSION_MINOR < 65536 && DTASK_VERSION_PATCH < 65536);
/// This build's release (include/dtask/version.hpp): a peer must run the same one.
inline constexpr std::uint64_t this_release =
    release_of(DTASK_VERSION_MAJOR, DTASK_VERSION_MINOR, DTASK_VERSION_PATCH);

enum class Command : std::uint8_t {
    hello = 0x01,       // peer -> broker: my release, who I am, what I serve
    welcome = 0x02,     // broker -> peer: accepted; heartbeat settings, broker incarnation
    refuse = 0x03,      // broker -> peer: not accepted, and why
    heartbeat = 0x04,   // both ways, every interval
    bye = 0x05,         // peer -> broker: leaving; broker -> worker: dismissed, exit now
    status = 0x06,      // broker -> client: how many workers are connected
    reconnect = 0x07,   // broker -> peer: I do not know you (any more): say hello again
    pace = 0x08,        // broker -> peer: heartbeat at this interval from now on
    submit = 0x10,      // client -> broker: a new job (name, signature, job-wide data, settings)
    task = 0x11,        // client -> broker -> worker: a batch of a job's subtasks
    result = 0x12,      // worker -> broker -> client: a batch of partial results
    failure = 0x13,     // worker -> broker -> client: a subtask failed
    end = 0x14,         // client -> broker: job over, forget it; broker -> worker: drop its data
    cancel = 0x15,      // client -> broker: drop the job's queued subtasks
    job = 0x16,         // broker -> worker: a job's definition and data, before its first task
    revoke = 0x18,      // broker -> worker: another copy of this batch won; skip it
    split_done = 0x19,  // client -> broker: every subtask of the job has been sent
    notice = 0x17,      // broker -> peer: something the user should know about a job
    pulse = 0x1a,       // worker's pulse socket -> broker: alive (or leaving) while map runs
    hung = 0x1b,        // worker's pulse socket -> broker: a subtask ran past its timeout
    share = 0x1c,       // client -> broker -> worker: a shared object's id and bytes
    unshare = 0x1d,     // client -> broker -> worker: a shared object is released
};

std::string_view command_name(Command command) noexcept;

/// The role a peer states in its hello.
enum class Role : std::uint8_t { worker = 1, client = 2 };

/// Body of a hello: who the peer is and, for a worker, what it serves.
struct Hello {
    Role role = Role::worker;
    std::string name;      // host:pid, for messages a person reads
    std::string platform;  // byte order and type sizes: binary archives are not portable
    std::uint32_t credits = 0;
    bool local = false;  // started by this broker's cluster
    std::int64_t pid = 0;
    std::vector<std::pair<std::string, std::string>> jobs;  // name, signature
    bool same_process = false;  // a client in the broker's own process: never dropped for silence

    template <class Archive>
    void serialize(Archive& archive) {
        // Named, so that a decoding error says which field (the bytes are the same).
        archive(CEREAL_NVP(role), CEREAL_NVP(name), CEREAL_NVP(platform), CEREAL_NVP(credits),
                CEREAL_NVP(local), CEREAL_NVP(pid), CEREAL_NVP(jobs), CEREAL_NVP(same_process));
    }
};

/// Why a job failed, so the client throws the matching dtask exception (wire/failure.hpp).
enum class FailureKind : std::uint8_t {
    exception = 1,    // map threw: TaskError
    worker_lost = 2,  // the subtask kept killing its workers: PoisonSubtaskError
    no_worker = 3,    // no worker serves the job: TimeoutError, reason no_worker
    definition = 4,   // the worker's job definition differs: JobDefinitionError
    protocol = 5,     // a peer broke the protocol: ProtocolError
    shutdown = 6,     // the broker is shutting down: BrokerShutdownError
    timeout = 7,  // a subtask ran past its timeout on every attempt: TimeoutError, subtask_timeout
    transient = 8,    // map threw a TransientError: retried if the job allows, else TaskError
    shared_data = 9,  // the job's shared object is unknown or over the bound: Error
    limit = 10,       // the job would take its client past a broker limit: LimitError
};
/// The last kind: a decoder refuses any value past it. Move it when a kind is added.
inline constexpr FailureKind last_failure_kind = FailureKind::limit;

/// Body of a submit's last frame: how the broker runs the job (from RunOptions).
struct JobSettings {
    std::uint64_t worker_wait_ms = 60000;
    std::uint32_t priority = 1;
    std::uint32_t max_attempts = 3;
    std::uint64_t subtask_timeout_ms = 0;  // 0: none
    bool backup_tasks = true;
    bool retry_transient = false;
    std::uint64_t shared_object = 0;  // the job-wide data is this shared object; 0: the data frame

    template <class Archive>
    void serialize(Archive& archive) {
        archive(CEREAL_NVP(worker_wait_ms), CEREAL_NVP(priority), CEREAL_NVP(max_attempts),
                CEREAL_NVP(subtask_timeout_ms), CEREAL_NVP(backup_tasks),
                CEREAL_NVP(retry_transient), CEREAL_NVP(shared_object));
    }
};

/// Bounds of the numbers a peer sets (docs/protocol.md, "Validation"): decoding refuses a
/// message outside them, so that no receiver adds an absurd duration to its clock.
inline constexpr std::uint64_t max_heartbeat_interval_ms = 3'600'000;  // an hour
inline constexpr std::uint64_t max_heartbeat_liveness = 1000;
/// Longest worker_wait or subtask timeout: ten years, "for ever" to a user, and far from
/// overflowing a clock. The client saturates its RunOptions to it.
inline constexpr std::uint64_t max_duration_ms = 315'360'000'000;
inline constexpr std::uint32_t max_priority = 1000;
inline constexpr std::uint32_t max_job_attempts = 1000;

/// Checks a job's settings against those bounds. Throws ProtocolError naming the field.
void check_settings(const JobSettings& settings, const char* what);

/// Body of a failure: what went wrong with one subtask (or a whole job) and where.
struct Failure {
    FailureKind kind = FailureKind::exception;
    std::string worker;
    std::string exception_type;
    std::string message;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(CEREAL_NVP(kind), CEREAL_NVP(worker), CEREAL_NVP(exception_type),
                CEREAL_NVP(message));
    }
};

/// This build's platform tag, compared at hello.
const std::string& platform();
/// "host:pid" of this process.
std::string process_name();

/// Bytes of a header with `fields` fields: magic, version, command, then each field.
constexpr std::size_t header_size(std::size_t fields) noexcept {
    return 4 + 8 * fields;
}
/// Most bytes an unsigned LEB128 varint of 64 bits takes.
inline constexpr std::size_t max_varint_size = 10;
/// Room a task or result frame being built leaves in front of its batch: the most its
/// compact header can take (magic, version, command, job id, then varints). The header is
/// written at the end of that room, and the frame begins where the header does.
inline constexpr std::size_t task_header_room = 4 + 8 + 2 * max_varint_size;    // first, count
inline constexpr std::size_t result_header_room = 4 + 8 + 3 * max_varint_size;  // ..., ns

/// A received message, validated: its command, header fields and body frames; for task and
/// result, the batch after the fields, and the frame itself (to forward or keep). The bytes
/// of a small frame live inside its zmq::message_t: moving the frame moves them, and
/// `batch` no longer points at them.
struct Inbound {
    Command command{};
    std::array<std::uint64_t, 4> fields{};
    std::span<zmq::message_t> body;
    std::span<const std::byte> batch;
    zmq::message_t* frame = nullptr;
};

/// Validates frames[first...] as a dtask message. Throws ProtocolError. A refuse is taken
/// whatever protocol version its header says (its shape is the same in every version).
Inbound parse(std::vector<zmq::message_t>& frames, std::size_t first);
/// Whether `head`, a header frame parse() refused, says it is a `command`: a peer that
/// cannot read its broker's welcome has no session to go on with.
bool claims_command(const zmq::message_t& head, Command command) noexcept;

/// A header frame for `command` with its fixed fields.
zmq::message_t header(Command command, std::initializer_list<std::uint64_t> fields = {});
/// The header of a hello: its one field is the sender's release.
zmq::message_t hello_header(std::uint64_t release = this_release);
/// The header of a refuse in protocol version `in_version`: a refuse has no field and one
/// text frame in every version, so that a peer of any version reads why it was refused.
zmq::message_t refuse_header(std::uint8_t in_version = version);
/// Writes the compact header of a task or result (`command`) for `job`, with `fields` as
/// varints, at the end of `room` (a frame being built: task_header_room or
/// result_header_room bytes, then the batch). Returns where in `room` the header begins.
std::size_t write_batch_header(std::span<std::byte> room, Command command, std::uint64_t job,
                               std::initializer_list<std::uint64_t> fields);
/// The header fields and the batch of a task or result frame that parse() accepted.
struct BatchFrame {
    std::array<std::uint64_t, 4> fields{};
    std::span<const std::byte> batch;
};
BatchFrame read_batch_frame(const zmq::message_t& frame);
/// Overwrites the job id of a task or result frame this process owns, on its way through
/// the broker (the job id has a fixed width for this). Under ThreadSanitizer the frame gets
/// bytes of its own first, so spans into the frame (Inbound::batch) are not to be used after.
void set_job_id(zmq::message_t& frame, std::uint64_t job);
zmq::message_t text_frame(std::string_view text);
/// A frame of `bytes` from `offset` on that takes them over without copying; a small one
/// (under 256 bytes) is copied instead, cheaper than a hand-over, and `bytes` is left as it
/// was. One of at most 33 bytes then lives inside the ZeroMQ message itself: no allocation.
zmq::message_t payload_frame(std::string&& bytes, std::size_t offset = 0);
/// Socket options every dtask socket uses: no high-water mark (dtask bounds its queues with
/// credits and split windows; the broker's listen endpoints set theirs against peers that do
/// not read, Broker::bound_for_the_network) and a short linger so that closing never blocks.
void tune(zmq::socket_t& socket);
std::string_view as_text(const zmq::message_t& frame) noexcept;

/// A DEALER's routing id: `prefix` and 128 random bits in hex. The broker keys its records by
/// routing id, so no peer may guess another's (ZeroMQ's own ids are a counter).
std::string random_routing_id(char prefix);
std::span<const std::byte> as_bytes(const zmq::message_t& frame) noexcept;

template <class T>
zmq::message_t encode_body(const T& value);
template <class T>
T decode_body(const zmq::message_t& frame, const char* what);

/// Runs a ZeroMQ call again for as long as a signal interrupts it (EINTR). libzmq looks at a
/// socket's commands, with a poll(2) that a signal interrupts even with a zero timeout, at
/// the start of a connect, a bind, a send, a receive and a read of ZMQ_EVENTS: a host with a
/// SIGCHLD or profiling handler must not see dtask fail for it.
template <class Call>
decltype(auto) retry_interrupted(Call&& call) {
    for (;;) {
        try {
            return call();
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR)
                throw;
        }
    }
}

/// zmq::poll that treats a signal arriving (EINTR) as "nothing ready" instead of throwing:
/// a host with a SIGCHLD or profiling handler must not lose its broker to a signal.
void poll(std::span<zmq::pollitem_t> items, std::chrono::milliseconds timeout);
/// Receives one whole message, retrying after EINTR. False if none is waiting (dontwait).
bool receive(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, bool wait);

/// Sends frames as one message, prefixed with the routing id `to` unless it is empty (ROUTER).
/// Throws TransportError, instead of blocking, on a DEALER whose connection ZeroMQ ended.
void send(zmq::socket_t& socket, std::string_view to, std::span<zmq::message_t> frames);
/// What became of a message a ROUTER with ZMQ_ROUTER_MANDATORY sent to a peer.
enum class Delivery {
    queued,  // taken, for the peer to read
    full,    // not sent: the peer has left that many messages unread (ZMQ_SNDHWM)
    gone,    // not sent: no connection has the message's routing id (any more)
};
/// Sends `frames`, the first of them the routing id, from a ROUTER with ZMQ_ROUTER_MANDATORY
/// set, never blocking: a peer that reads nothing must not stop the loop that sends.
Delivery send_routed(zmq::socket_t& socket, std::span<zmq::message_t> frames);
/// How many messages send() has sent from the calling thread: a send may take a socket's
/// pending signal, which SocketPoll must know of.
std::uint64_t sends_on_this_thread() noexcept;

}  // namespace dtask::detail::protocol
