#pragma once
// What each role does with the bytes of a message from a peer, up to where its own logic
// takes over: parse() checks the shape, then the bodies that role reads are decoded. A
// ProtocolError is the expected answer to a malformed message; anything else is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <dtask/detail/archive.hpp>
#include <dtask/error.hpp>

#include "frames.hpp"
#include "wire/batch.hpp"
#include "wire/failure.hpp"
#include "wire/protocol.hpp"
#include "wire/release.hpp"

namespace dtask::fuzz {

using namespace dtask::detail;
using namespace dtask::detail::protocol;

enum class Role { broker, worker, client };

/// decode → encode → decode must give the same bytes again.
template <class T>
void round_trip(const T& value) {
    const zmq::message_t once = encode_body(value);
    const T again = decode_body<T>(once, "round trip");
    const zmq::message_t twice = encode_body(again);
    if (as_string(once) != as_string(twice))
        std::abort();
}

/// Walks a batch as its reader does, and checks it against its header.
inline void read_batch(const Inbound& message, const char* what) {
    BatchReader reader(message.batch);
    std::span<const std::byte> record;
    std::uint64_t records = 0;
    while (reader.next(record, what))
        ++records;
    check_batch(message.batch, message.fields[2], what);
    if (records != message.fields[2])
        std::abort();  // check_batch accepted a count that is not the batch's
}

inline void decode_as(Role role, const std::uint8_t* data, std::size_t size) {
    std::vector<zmq::message_t> frames = split_frames(data, size);
    if (role == Role::broker && other_release(frames, 0))
        return;  // refused as a peer of another release, before parse()
    try {
        Inbound message = parse(frames, 0);
        switch (message.command) {
            case Command::hello:
                if (role == Role::broker)
                    round_trip(decode_body<Hello>(message.body[0], "hello"));
                break;
            case Command::submit:
                if (role == Role::broker)
                    round_trip(decode_body<JobSettings>(message.body[3], "the job's settings"));
                break;
            case Command::failure:
                if (role == Role::client) {
                    (void)failure_error(message.body[0], "job", message.fields[1], {});
                } else {
                    round_trip(decode_body<Failure>(message.body[0], "a failure report"));
                }
                break;
            case Command::hung:
                round_trip(decode_body<Failure>(message.body[1], "a timeout report"));
                break;
            case Command::task:
                read_batch(message, "task batch");
                if (role == Role::broker && message.fields[2] > 0 && message.fields[2] < 64) {
                    // The broker's retry path cuts a batch in two.
                    const auto half = message.fields[2] / 2;
                    (void)slice_batch(*message.frame, 0, half);
                    (void)slice_batch(*message.frame, half, message.fields[2]);
                }
                break;
            case Command::result:
                read_batch(message, "result batch");
                break;
            case Command::job:
            case Command::notice:
            case Command::refuse:
            case Command::pulse:
            case Command::share:
                for (const auto& frame : message.body)
                    (void)as_text(frame);
                break;
            default:
                break;
        }
    } catch (const ProtocolError&) {
    }
}

}  // namespace dtask::fuzz
