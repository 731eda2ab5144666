// The wire protocol: encoding and decoding, and what happens to truncated, garbage and
// incompatible messages, in memory and on a live broker's socket.

#include <array>
#include <limits>

#include <doctest/doctest.h>

#include <dtask/detail/archive.hpp>

#include "batch.hpp"
#include "jobs.hpp"
#include "protocol.hpp"
#include "support.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using namespace test_support;
using namespace std::chrono_literals;

namespace {

std::vector<zmq::message_t> frames_of(std::vector<std::string> parts) {
    std::vector<zmq::message_t> frames;
    for (auto& part : parts)
        frames.emplace_back(part.data(), part.size());
    return frames;
}

std::string parse_error(std::vector<zmq::message_t> frames) {
    try {
        parse(frames, 0);
    } catch (const dtask::ProtocolError& e) {
        return e.what();
    }
    return "(no error)";
}

std::string head(Command command, std::initializer_list<std::uint64_t> fields = {}) {
    auto frame = header(command, fields);
    return std::string(as_text(frame));
}

/// The compact header of a task or result, alone.
std::string batch_head(Command command, std::uint64_t job,
                       std::initializer_list<std::uint64_t> fields) {
    std::array<std::byte, result_header_room> room;
    const std::size_t start = write_batch_header(room, command, job, fields);
    return std::string(reinterpret_cast<const char*>(room.data()) + start, room.size() - start);
}

}  // namespace

TEST_CASE("Protocol.round_trip_of_every_message_shape" * doctest::timeout(10)) {
    // A task of two subtasks, a short one and one of 1000 bytes: one frame, the header and
    // then the batch.
    std::string batch(task_header_room, '\0');
    BatchWriter writer(batch);
    writer.begin();
    batch += "payload-7";
    writer.end();
    writer.begin();
    batch += std::string(1000, 'x');
    writer.end();
    const std::size_t start =
        write_batch_header(std::as_writable_bytes(std::span(batch).first(task_header_room)),
                           Command::task, 42, {1ULL << 40, 2});
    // magic, version, command, the job id's 8 bytes, then 6 bytes of varint for 2^40 and
    // one for the count.
    CHECK(task_header_room - start == 4 + 8 + 6 + 1);
    std::vector<zmq::message_t> frames;
    frames.push_back(payload_frame(std::move(batch), start));
    auto message = parse(frames, 0);
    CHECK(message.command == Command::task);
    CHECK(message.fields[0] == 42);
    CHECK(message.fields[1] == (1ULL << 40));
    CHECK(message.fields[2] == 2);
    CHECK(message.body.empty());
    REQUIRE(message.frame == &frames[0]);
    check_batch(message.batch, 2, "task batch");
    BatchReader reader(message.batch);
    std::span<const std::byte> record;
    REQUIRE(reader.next(record, "task batch"));
    CHECK(std::string(reinterpret_cast<const char*>(record.data()), record.size()) == "payload-7");
    REQUIRE(reader.next(record, "task batch"));
    CHECK(record.size() == 1000);
    CHECK_FALSE(reader.next(record, "task batch"));
    // The broker rewrites the job id in place.
    set_job_id(*message.frame, 7);
    CHECK(parse(frames, 0).fields[0] == 7);
    // The second record alone, as a retry sends it: a task of its own.
    std::vector<zmq::message_t> second;
    second.push_back(slice_batch(frames[0], 1, 2));
    CHECK(second[0].size() == 4 + 8 + 6 + 1 + 4 + 1000);
    auto retry = parse(second, 0);
    CHECK(retry.command == Command::task);
    CHECK(retry.fields[0] == 7);
    CHECK(retry.fields[1] == (1ULL << 40) + 1);
    CHECK(retry.fields[2] == 1);
    check_batch(retry.batch, 1, "task batch");

    // A result: the same shape with one field more.
    std::string results(result_header_room, '\0');
    BatchWriter result_writer(results);
    result_writer.begin();
    results += "8";
    result_writer.end();
    const std::size_t result_start =
        write_batch_header(std::as_writable_bytes(std::span(results).first(result_header_room)),
                           Command::result, 3, {5, 1, 99});
    std::vector<zmq::message_t> result_frames;
    result_frames.push_back(payload_frame(std::move(results), result_start));
    auto result = parse(result_frames, 0);
    CHECK(result.fields[0] == 3);
    CHECK(result.fields[1] == 5);
    CHECK(result.fields[2] == 1);
    CHECK(result.fields[3] == 99);
    CHECK(result.batch.size() == 4 + 1);
    check_batch(result.batch, 1, "result batch");

    // With batching off, a task of one 8-byte subtask and its result fit in ZeroMQ's
    // 33 bytes held inside a message: neither is an allocation, nor shared between threads.
    CHECK(batch_head(Command::task, 1ULL << 40, {2'000'000, 1}).size() + 4 + 8 <= 33);
    CHECK(batch_head(Command::result, 1ULL << 40, {2'000'000, 1, 16'000}).size() + 4 + 8 <= 33);
    // Such a frame, sent from its offset in the buffer it was built in; and the largest
    // values, in varints of 10 bytes.
    std::string small(result_header_room, '\0');
    small += std::string(
        "\x08\x00\x00\x00"
        "12345678",
        12);
    const std::size_t small_start =
        write_batch_header(std::as_writable_bytes(std::span(small).first(result_header_room)),
                           Command::result, 9, {2'000'000, 1, 16'000});
    std::vector<zmq::message_t> small_frames;
    small_frames.push_back(payload_frame(std::move(small), small_start));
    CHECK(small_frames[0].size() == 30);
    const auto small_result = parse(small_frames, 0);
    CHECK(small_result.fields[1] == 2'000'000);
    CHECK(small_result.fields[3] == 16'000);
    CHECK(std::string(reinterpret_cast<const char*>(small_result.batch.data()) + 4, 8) ==
          "12345678");
    constexpr auto most = std::numeric_limits<std::uint64_t>::max();
    const std::string largest = batch_head(Command::result, most, {most, most, most});
    CHECK(largest.size() == result_header_room);
    std::vector<zmq::message_t> largest_frames = frames_of({largest});
    const auto read_back = parse(largest_frames, 0);
    CHECK(read_back.fields == std::array<std::uint64_t, 4>{most, most, most, most});
    CHECK(read_back.batch.empty());

    Hello hello;
    hello.role = Role::worker;
    hello.name = "host:1";
    hello.platform = platform();
    hello.credits = 3;
    hello.pid = 1234;
    hello.jobs = {{"a", "sig-a"}, {"b", "sig-b"}};
    std::vector<zmq::message_t> hello_frames;
    hello_frames.push_back(header(Command::hello));
    hello_frames.push_back(encode_body(hello));
    auto decoded = decode_body<Hello>(parse(hello_frames, 0).body[0], "hello");
    CHECK(decoded.name == "host:1");
    CHECK(decoded.credits == 3);
    CHECK(decoded.pid == 1234);
    CHECK(decoded.jobs == hello.jobs);

    std::vector<zmq::message_t> failure_frames;
    failure_frames.push_back(header(Command::failure, {9, 11}));
    failure_frames.push_back(
        encode_body(Failure{FailureKind::exception, "w", "std::logic_error", "why"}));
    auto failure_message = parse(failure_frames, 0);
    CHECK(failure_message.fields[1] == 11);
    auto failure = decode_body<Failure>(failure_message.body[0], "failure");
    CHECK(failure.kind == FailureKind::exception);
    CHECK(failure.message == "why");
}

TEST_CASE("Protocol.garbage_and_truncated_frames_are_named" * doctest::timeout(10)) {
    CHECK(parse_error({}).find("empty message") != std::string::npos);
    CHECK(parse_error(frames_of({"GET / HTTP/1.1"})).find("not a dtask message") !=
          std::string::npos);
    CHECK(parse_error(frames_of({"dt"})).find("not a dtask message") != std::string::npos);
    CHECK(parse_error(frames_of({std::string("dt\x09\x01", 4)})).find("protocol version 9") !=
          std::string::npos);
    CHECK(parse_error(frames_of({std::string("dt") + char(protocol::version) + "\x7f"}))
              .find("unknown dtask command 0x7f") != std::string::npos);
    // A task header cut short, a task with a frame after it (its batch belongs in the header
    // frame), and a header with a field too many.
    const std::string task = batch_head(Command::task, 1, {0, 1});
    CHECK(parse_error(frames_of({task.substr(0, 9)}))
              .find("malformed task message: header frame of 9 bytes, expected at least 14") !=
          std::string::npos);
    // A varint field that runs off the end of the frame, and one of more than 64 bits.
    const std::string job_only = task.substr(0, 12);
    CHECK(parse_error(frames_of({job_only + "\x80\x80"}))
              .find("malformed task message: header field 2 is cut off by the end of the frame") !=
          std::string::npos);
    CHECK(parse_error(frames_of({job_only + std::string(9, '\xff') + "\x02\x01"}))
              .find("malformed task message: header field 2 does not fit in 64 bits") !=
          std::string::npos);
    // The same for a result's last field, the time spent in map.
    const std::string result = batch_head(Command::result, 1, {0, 1, 300});
    CHECK(parse_error(frames_of({result.substr(0, result.size() - 1)}))
              .find("malformed result message: header field 4 is cut off by the end of the "
                    "frame") != std::string::npos);
    CHECK(parse_error(frames_of({task, "x"})).find("1 body frames, expected 0") !=
          std::string::npos);
    CHECK(parse_error(frames_of({head(Command::end, {1}) + "12345678"}))
              .find("header frame of 20 bytes, expected 12") != std::string::npos);
    // Batches whose records do not add up: a length cut off, a record longer than the frame,
    // and fewer records than the header says.
    auto batch_error = [](std::string bytes, std::uint64_t count) {
        try {
            check_batch(std::as_bytes(std::span(bytes)), count, "task batch");
        } catch (const dtask::ProtocolError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    CHECK(batch_error(std::string("\x01\x00", 2), 1).find("length is cut off") !=
          std::string::npos);
    CHECK(batch_error(std::string("\x09\x00\x00\x00"
                                  "abc",
                                  7),
                      1)
              .find("a record of 9 bytes, but only 3 are left") != std::string::npos);
    CHECK(batch_error(std::string("\x01\x00\x00\x00"
                                  "a",
                                  5),
                      2)
              .find("the header says 2 subtasks, the frame holds 1") != std::string::npos);
    // Body frames missing or extra.
    CHECK(parse_error(frames_of({head(Command::hello)})).find("0 body frames, expected 1") !=
          std::string::npos);
    CHECK(parse_error(frames_of({head(Command::heartbeat), "extra"}))
              .find("1 body frames, expected 0") != std::string::npos);
}

TEST_CASE("Protocol.undecodable_payloads_name_type_and_size" * doctest::timeout(10)) {
    std::string bytes;
    save_to(bytes, std::string("hello, world"));
    std::span<const std::byte> all(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
    CHECK(load_from<std::string>(all, "x") == "hello, world");
    try {
        load_from<std::string>(all.first(5), "subtask 3 of job 'j'");
        FAIL("a truncated payload must not decode");
    } catch (const dtask::ProtocolError& e) {
        const std::string what = e.what();
        CHECK(what.find("subtask 3 of job 'j'") != std::string::npos);
        CHECK(what.find("from 5 bytes") != std::string::npos);
    }
    // A length prefix of 2^40 in a message of 12 bytes: refused before any allocation.
    std::string huge(8, '\0');
    huge[5] = 1;
    huge += "abcd";
    std::span<const std::byte> huge_bytes(reinterpret_cast<const std::byte*>(huge.data()),
                                          huge.size());
    try {
        load_from<std::string>(huge_bytes, "a hostile string");
        FAIL("a length beyond the message must not decode");
    } catch (const dtask::ProtocolError& e) {
        CHECK(std::string(e.what()).find("a length of 1099511627776 exceeds the 4 bytes left") !=
              std::string::npos);
    }
    try {
        load_from<std::uint32_t>(all, "partial");  // leftovers: the types disagree
        FAIL("leftover bytes must be an error");
    } catch (const dtask::ProtocolError& e) {
        CHECK(std::string(e.what()).find("unread") != std::string::npos);
    }
}

TEST_CASE("Protocol.live_broker_refuses_garbage_and_carries_on" * doctest::timeout(60)) {
    auto options = small_cluster(1);
    options.listen.push_back("tcp://127.0.0.1:*");
    dtask::Cluster cluster(options);
    const std::string endpoint = cluster.endpoints().back();

    zmq::context_t context(1);
    auto exchange = [&](std::vector<std::string> parts) {
        zmq::socket_t peer(context, zmq::socket_type::dealer);
        peer.set(zmq::sockopt::linger, 0);
        peer.connect(endpoint);
        auto frames = frames_of(std::move(parts));
        zmq::send_multipart(peer, frames);
        zmq::pollitem_t item{peer.handle(), 0, ZMQ_POLLIN, 0};
        REQUIRE(zmq::poll(&item, 1, 10s) == 1);
        std::vector<zmq::message_t> reply;
        REQUIRE(zmq::recv_multipart(peer, std::back_inserter(reply)));
        auto message = parse(reply, 0);
        REQUIRE(message.command == Command::refuse);
        return std::string(as_text(message.body[0]));
    };
    CHECK(exchange({"garbage"}).find("not a dtask message") != std::string::npos);
    CHECK(exchange({head(Command::hello), "\x01\x02"}).find("cannot decode hello") !=
          std::string::npos);
    CHECK(exchange({std::string("dt\x09\x01", 4)}).find("protocol version 9") != std::string::npos);

    // A 13-byte hello whose name claims 3 GB: refused, nothing allocated for it.
    std::string greedy("\x01", 1);
    greedy += std::string("\x00\x5e\xd0\xb2\x00\x00\x00\x00", 8) + "name";
    CHECK(exchange({head(Command::hello), greedy}).find("exceeds the 4 bytes left") !=
          std::string::npos);

    Hello alien;
    alien.role = Role::worker;
    alien.name = "elsewhere:1";
    alien.platform = "big-endian, long 32 bits";
    alien.credits = 1;
    std::string alien_body;
    save_to(alien_body, alien);
    CHECK(exchange({head(Command::hello), alien_body}).find("platform") != std::string::npos);

    // The broker is unharmed.
    CHECK(run_within(cluster, test_jobs::squares, std::uint64_t{1000}) ==
          test_jobs::serial_squares(1000));
}
