// The wire protocol: encoding and decoding, and what happens to truncated, garbage and
// incompatible messages, in memory and on a live broker's socket.

#include <array>
#include <limits>
#include <optional>
#include <sstream>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <dtask/detail/archive.hpp>

#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"
#include "wire/release.hpp"

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
    // Its run would wrap past the last index: refused (docs/protocol.md, Validation).
    std::vector<zmq::message_t> largest_frames = frames_of({largest});
    CHECK_THROWS_AS(parse(largest_frames, 0), dtask::ProtocolError);
    const std::uint64_t half = std::uint64_t{1} << 63;
    std::vector<zmq::message_t> widest_frames =
        frames_of({batch_head(Command::result, most, {half, most - half, most})});
    const auto read_back = parse(widest_frames, 0);
    CHECK(read_back.fields == std::array<std::uint64_t, 4>{most, half, most - half, most});
    CHECK(read_back.batch.empty());

    Hello hello;
    hello.role = Role::worker;
    hello.name = "host:1";
    hello.platform = platform();
    hello.credits = 3;
    hello.pid = 1234;
    hello.jobs = {{"a", "sig-a"}, {"b", "sig-b"}};
    std::vector<zmq::message_t> hello_frames;
    hello_frames.push_back(hello_header());
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
    CHECK(parse_error(frames_of({std::string("dt\x0b\x01", 4)})).find("protocol version 11") !=
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
    CHECK(parse_error(frames_of({head(Command::hello, {this_release})}))
              .find("0 body frames, expected 1") != std::string::npos);
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
        RawPeer peer(context, endpoint, cluster.join_token());
        return peer.refusal_of(frames_of(std::move(parts)));
    };
    CHECK(exchange({"garbage"}).find("not a dtask message") != std::string::npos);
    CHECK(
        exchange({head(Command::hello, {this_release}), "\x01\x02"}).find("cannot decode hello") !=
        std::string::npos);
    CHECK(exchange({std::string("dt\x0b\x01", 4)}).find("protocol version 11") !=
          std::string::npos);

    // A 13-byte hello whose name claims 3 GB: refused, nothing allocated for it.
    std::string greedy("\x01", 1);
    greedy += std::string("\x00\x5e\xd0\xb2\x00\x00\x00\x00", 8) + "name";
    CHECK(
        exchange({head(Command::hello, {this_release}), greedy}).find("exceeds the 4 bytes left") !=
        std::string::npos);

    const std::string alien = hello_body(Role::worker, 1, {}, "big-endian, long 32 bits");
    CHECK(exchange({head(Command::hello, {this_release}), alien}).find("platform") !=
          std::string::npos);

    // The broker is unharmed.
    CHECK(run_within(cluster, test_jobs::squares, std::uint64_t{1000}) ==
          test_jobs::serial_squares(1000));
}

namespace {

/// The bytes a code block of docs/protocol.md shows in hex: the first block after the line
/// that holds `words`.
std::string bytes_shown_after(const std::string& doc, const std::string& words) {
    const auto said = doc.find(words);
    REQUIRE_MESSAGE(said != std::string::npos, "docs/protocol.md no longer says: " << words);
    const auto open = doc.find("```\n", said);
    REQUIRE(open != std::string::npos);
    const auto close = doc.find("```", open + 4);
    REQUIRE(close != std::string::npos);
    std::istringstream hex(doc.substr(open + 4, close - open - 4));
    std::string bytes;
    for (std::string pair; hex >> pair;) {
        REQUIRE_MESSAGE(pair.size() == 2, "not a byte in hex: '" << pair << "'");
        bytes += static_cast<char>(std::stoi(pair, nullptr, 16));
    }
    return bytes;
}

std::string hex_of(const std::string& bytes) {
    std::string text;
    for (const unsigned char byte : bytes) {
        const char digits[] = "0123456789abcdef";
        text += {digits[byte >> 4], digits[byte & 15], ' '};
    }
    return text;
}

/// `frame`, a header, in protocol version `other` instead of this build's.
zmq::message_t in_version(std::uint8_t other, zmq::message_t frame) {
    static_cast<std::uint8_t*>(frame.data())[2] = other;
    return frame;
}

/// A header frame of protocol version `other` with no field (a hello before version 8).
zmq::message_t header_of_version(std::uint8_t other, Command command) {
    return in_version(other, header(command));
}

/// What a broker of this build tells a peer of another release, after "the worker runs ...".
std::string refusal_naming(const std::string& role, const std::string& theirs,
                           bool protocols = false) {
    const std::string ours = release_name(this_release);
    return "this broker runs " + ours +
           (protocols ? " (protocol version " + std::to_string(version) + ")" : "") + "; the " +
           role + " runs " + theirs +
           ": run workers and clients of the same release as their broker";
}

std::string encoded(const auto& value) {
    std::string bytes;
    save_to(bytes, value);
    return bytes;
}

}  // namespace

TEST_CASE("Protocol.encoder_writes_the_bytes_shown_in_protocol_md" * doctest::timeout(10)) {
    // docs/protocol.md shows, in hex, the header of a task for job 3 with subtasks 16 and 17,
    // and its batch of the uint64_t subtasks 5 and 300. The encoder must write those bytes.
    const std::string doc = read_file(std::string(DTASK_TEST_SOURCE_DIR) + "/docs/protocol.md");
    const std::string shown_header = bytes_shown_after(
        doc, "For example, the header of a `task` for job 3 that carries subtasks 16 and 17");
    const std::string shown_batch =
        bytes_shown_after(doc, "For example, two subtasks of type `std::uint64_t`, 5 and 300");
    CHECK(shown_header.size() == 14);
    CHECK(shown_batch.size() == 24);

    std::string frame(task_header_room, '\0');
    BatchWriter writer(frame);
    for (const std::uint64_t subtask : {5, 300}) {
        writer.begin();
        save_to(frame, subtask);
        writer.end();
    }
    const std::size_t start =
        write_batch_header(std::as_writable_bytes(std::span(frame).first(task_header_room)),
                           Command::task, 3, {16, 2});
    const std::string written = frame.substr(start);
    CHECK_MESSAGE(written == shown_header + shown_batch,
                  "the encoder writes " << hex_of(written) << "\ndocs/protocol.md shows "
                                        << hex_of(shown_header + shown_batch));
    // And the bytes shown read back as what the text says they are.
    std::vector<zmq::message_t> frames = frames_of({shown_header + shown_batch});
    const auto message = parse(frames, 0);
    CHECK(message.command == Command::task);
    CHECK(message.fields[0] == 3);
    CHECK(message.fields[1] == 16);
    CHECK(message.fields[2] == 2);
    BatchReader reader(message.batch);
    std::span<const std::byte> record;
    for (const std::uint64_t subtask : {5, 300}) {
        REQUIRE(reader.next(record, "task batch"));
        CHECK(load_from<std::uint64_t>(record, "subtask") == subtask);
    }
}

TEST_CASE("Protocol.broker_forwards_a_result_only_from_the_worker_holding_its_batch" *
          doctest::timeout(60)) {
    // A worker and a client by hand at a real broker. The worker answers the first of its two
    // batches twice: the second answer comes from a worker that no longer holds the batch,
    // and must not reach the client. The answer to the second batch, behind it, tells when
    // everything has come.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    RawPeer worker(context, endpoint, cluster.join_token());
    worker.send(message_of(hello_header(),
                           {hello_body(Role::worker, 2, {{"by-hand.echo", "by-hand-signature"}})}));
    worker.expect(Command::welcome);
    RawPeer client(context, endpoint, cluster.client_token());
    client.send(message_of(hello_header(), {hello_body(Role::client)}));
    client.expect(Command::welcome);
    JobSettings settings;
    settings.backup_tasks = false;
    client.send(message_of(header(Command::submit, {1}),
                           {"by-hand.echo", "by-hand-signature", "", encoded(settings)}));
    std::vector<zmq::message_t> tasks;
    for (std::uint64_t index : {0, 1}) {
        std::vector<zmq::message_t> task;
        task.push_back(batch_frame(Command::task, 1, {index, 1}, {"subtask"}));
        client.send(std::move(task));
    }
    std::uint64_t job = 0;
    for (int batches = 0; batches < 2;) {
        auto message = worker.next(10s);
        REQUIRE(message.has_value());
        if (message->command == Command::job)
            job = message->fields[0];
        batches += message->command == Command::task ? 1 : 0;
    }
    REQUIRE(job != 0);
    for (std::uint64_t index : {0, 0, 1}) {
        std::vector<zmq::message_t> result;
        result.push_back(batch_frame(Command::result, job, {index, 1, 1000}, {"partial"}));
        worker.send(std::move(result));
    }
    int results_for_first = 0;
    for (bool last = false; !last;) {
        auto message = client.next(10s);
        REQUIRE_MESSAGE(message.has_value(), "the client never got the second batch's result");
        if (message->command != Command::result)
            continue;  // the worker count
        results_for_first += message->fields[1] == 0 ? 1 : 0;
        last = message->fields[1] == 1;
    }
    CHECK_MESSAGE(results_for_first == 1,
                  "the client got the first batch's result " << results_for_first << " times");
}

TEST_CASE("Protocol.client_folds_a_subtask_once_when_its_result_comes_twice" *
          doctest::timeout(60)) {
    // A broker by hand sends a real client the result of subtask 0 twice (as when a
    // requeued subtask and its first run both answer), in a job folded in arrival order,
    // where nothing but the client's record of what arrived stops a second fold.
    FakeBroker broker;
    dtask::Client client(broker.endpoint(), broker.client_options());
    constexpr std::uint64_t n = 3;
    auto handle = client.submit(test_jobs::concat_unordered, n);
    broker.expect(Command::hello);
    const std::string peer = broker.peer();
    broker.send(peer, message_of(header(Command::welcome, {250, 1000, 0, 1})));
    broker.send(peer, message_of(header(Command::status, {1})));
    const std::uint64_t job = broker.expect(Command::submit).fields[0];
    std::vector<std::uint64_t> subtasks;
    while (subtasks.size() < n) {
        auto message = broker.next(30s);
        REQUIRE_MESSAGE(message.has_value(), "the client sent " << subtasks.size() << " subtasks");
        if (message->command != Command::task)
            continue;
        BatchReader reader(message->batch);
        std::span<const std::byte> record;
        while (reader.next(record, "task batch"))
            subtasks.push_back(load_from<std::uint64_t>(record, "subtask"));
    }
    CHECK(subtasks == std::vector<std::uint64_t>{0, 1, 2});
    for (std::uint64_t index : {0, 0, 1, 2}) {
        const std::string partial = std::to_string(index) + ",";
        std::vector<zmq::message_t> result;
        result.push_back(batch_frame(Command::result, job, {index, 1, 1000}, {encoded(partial)}));
        broker.send(peer, std::move(result));
    }
    CHECK(get_within(handle, 30s) == "0,1,2,");
}

TEST_CASE(
    "Protocol.broker_refuses_peers_of_another_version_or_platform_and_keeps_jobs_from_"
    "another_definition" *
    doctest::timeout(60)) {
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    // A worker and a client of protocol version 4, whose hello carried no release, are
    // refused with both versions named, in version 4: what they can read.
    for (const Role role : {Role::worker, Role::client}) {
        RawPeer old(context, endpoint, token_for(cluster, role));
        CHECK(old.refusal_of(
                  message_of(header_of_version(4, Command::hello), {hello_body(role, 1)})) ==
              refusal_naming(role == Role::worker ? "worker" : "client",
                             "an earlier dtask (protocol version 4)", true));
        CHECK(old.version_heard() == 4);
    }
    // Peers of another platform, whose binary data this one cannot read.
    for (const Role role : {Role::worker, Role::client}) {
        RawPeer alien(context, endpoint, token_for(cluster, role));
        const std::string why = alien.refusal_of(
            message_of(hello_header(), {hello_body(role, 1, {}, "big-endian, long 32 bits")}));
        CHECK_MESSAGE(contains(why,
                               "the peer's platform (big-endian, long 32 bits) differs from "
                               "the broker's"),
                      why);
    }
    // A worker with another definition (signature) of tests.squares is told so, and gets
    // none of its subtasks; the job fails after its wait, saying why.
    RawPeer other(context, endpoint, cluster.join_token());
    other.send(message_of(hello_header(),
                          {hello_body(Role::worker, 4, {{"tests.squares", "another signature"}})}));
    other.expect(Command::welcome);
    REQUIRE(cluster.wait_for_workers(1, 10s));
    dtask::RunOptions options;
    options.worker_wait = 500ms;
    auto handle = cluster.submit(test_jobs::squares, std::uint64_t{10}, options);
    const std::string what = error_of<dtask::TimeoutError>(handle).what();
    CHECK_MESSAGE(contains(what, "different definition of job 'tests.squares'"), what);
    std::vector<std::string> heard;
    while (auto message = other.next(300ms)) {
        heard.emplace_back(command_name(message->command));
        if (message->command == Command::notice) {
            const std::string text(as_text(message->body[0]));
            CHECK_MESSAGE(contains(text, "different definition of job 'tests.squares'"), text);
        }
    }
    CHECK_MESSAGE(heard == std::vector<std::string>{"notice"},
                  "the worker heard " << heard.size() << " message(s), not one notice");
}

TEST_CASE("Protocol.refused_worker_exits_with_status_3_and_says_why" * doctest::timeout(60)) {
    FakeBroker broker;
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, log,
                   broker.worker_environment());
    broker.expect(Command::hello);
    const std::string reason = "the peer's platform (test) differs from the broker's (test)";
    broker.send(broker.peer(), message_of(header(Command::refuse), {reason}));
    const auto status = worker.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), "the refused worker did not exit");
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 3),
                  "wait status " << *status << ", expected exit status 3");
    const std::string said = read_file(log);
    CHECK_MESSAGE(contains(said, "refused by the broker at " + broker.endpoint() + ": " + reason),
                  said);
}

TEST_CASE("Protocol.worker_refused_by_a_broker_of_another_release_exits_3_saying_why" *
          doctest::timeout(60)) {
    // A broker of protocol version 7 (a dtask from before hellos carried the release) refuses
    // this worker in its own version. The worker reads it all the same, since a refuse has
    // the same shape in every version, and stops instead of trying again for ever.
    FakeBroker broker;
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    Process worker(self_executable(),
                   {"--dtask-worker", broker.endpoint(), "--dtask-give-up", "600"}, log,
                   broker.worker_environment());
    broker.expect(Command::hello);
    const std::string reason = "malformed message: the peer speaks dtask protocol version " +
                               std::to_string(version) +
                               ", this build speaks version 7: build both from the same dtask "
                               "release";
    broker.send(broker.peer(), message_of(refuse_header(7), {reason}));
    const auto status = worker.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), "the refused worker still runs:\n" << read_file(log));
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 3),
                  "wait status " << *status << ", expected exit status 3");
    const std::string said = read_file(log);
    CHECK_MESSAGE(contains(said, "refused by the broker at " + broker.endpoint() + ": " + reason),
                  said);
}

TEST_CASE("Protocol.worker_answers_subtasks_of_another_job_definition_with_a_definition_failure" *
          doctest::timeout(60)) {
    // The worker checks the signature of the job it is sent, in case its broker did not.
    FakeBroker broker;
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    broker.expect(Command::hello);
    const std::string peer = broker.peer();
    broker.send(peer, message_of(header(Command::welcome, {250, 1000, 0, 1})));
    broker.send(peer, message_of(header(Command::job, {7, 0, 0}),
                                 {"tests.squares", "another signature", ""}));
    std::vector<zmq::message_t> task;
    task.push_back(batch_frame(Command::task, 7, {0, 1}, {encoded(std::uint64_t{5})}));
    broker.send(peer, std::move(task));
    auto answer = broker.expect(Command::failure);
    CHECK(answer.fields[0] == 7);
    CHECK(answer.fields[1] == 0);
    const auto failure = decode_body<Failure>(answer.body[0], "failure");
    CHECK(failure.kind == FailureKind::definition);
    CHECK_MESSAGE(contains(failure.message, "different definition of job 'tests.squares'"),
                  failure.message);
}

TEST_CASE("Protocol.refused_client_fails_its_jobs_with_the_reason_for_good" *
          doctest::timeout(60)) {
    FakeBroker broker;
    dtask::Client client(broker.endpoint(), broker.client_options());
    auto first = client.submit(test_jobs::squares, std::uint64_t{10});
    broker.expect(Command::hello);
    broker.send(broker.peer(), message_of(header(Command::refuse), {"no clients today"}));
    const std::string refusal =
        "the broker at " + broker.endpoint() + " refused this client: no clients today";
    const std::string what = error_of<dtask::TransportError>(first).what();
    CHECK_MESSAGE(contains(what, refusal), what);
    auto second = client.submit(test_jobs::squares, std::uint64_t{10});
    const std::string again = error_of<dtask::TransportError>(second).what();
    CHECK_MESSAGE(contains(again, refusal), again);
}

TEST_CASE("Protocol.client_refused_by_a_broker_of_another_release_fails_its_jobs_saying_why" *
          doctest::timeout(60)) {
    // A broker of a later release, and protocol version, refuses this client in its own
    // version: the client reads why, and its jobs fail with it at once.
    FakeBroker broker;
    dtask::Client client(broker.endpoint(), broker.client_options());
    auto handle = client.submit(test_jobs::squares, std::uint64_t{10});
    broker.expect(Command::hello);
    const std::uint8_t later = version + 1;
    const std::string reason =
        "this broker runs dtask 9.0.0 (protocol version " + std::to_string(later) +
        "); the client runs " + release_name(this_release) + " (protocol version " +
        std::to_string(version) + "): run workers and clients of the same release as their broker";
    broker.send(broker.peer(), message_of(refuse_header(later), {reason}));
    const std::string what = error_of<dtask::TransportError>(handle, 60s).what();
    CHECK_MESSAGE(
        contains(what, "the broker at " + broker.endpoint() + " refused this client: " + reason),
        what);
}

TEST_CASE("Protocol.release_is_read_from_what_every_protocol_version_keeps" *
          doctest::timeout(10)) {
    const auto other = [](std::vector<zmq::message_t> frames) { return other_release(frames, 0); };
    // This release, or no dtask message at all: nothing to say (parse() judges the rest).
    CHECK_FALSE(other(message_of(hello_header(), {hello_body(Role::worker, 1)})));
    CHECK_FALSE(other(message_of(header(Command::heartbeat))));
    CHECK_FALSE(other(frames_of({"garbage"})));
    CHECK_FALSE(other(frames_of({head(Command::hello)})));  // no release field: malformed

    // The same protocol, another release: named both.
    const std::uint64_t next_patch = this_release + 1;
    const auto patch = other(message_of(hello_header(next_patch), {hello_body(Role::client)}));
    REQUIRE(patch.has_value());
    CHECK(patch->version == version);
    CHECK(patch->reason == refusal_naming("client", release_name(next_patch)));

    // A later protocol version: its hello keeps the release in the first field.
    const std::uint64_t later = release_of(DTASK_VERSION_MAJOR, DTASK_VERSION_MINOR + 1, 0);
    const auto newer = other(
        message_of(in_version(version + 1, hello_header(later)), {hello_body(Role::worker, 1)}));
    REQUIRE(newer.has_value());
    CHECK(newer->version == version + 1);
    CHECK(newer->reason == refusal_naming("worker",
                                          release_name(later) + " (protocol version " +
                                              std::to_string(version + 1) + ")",
                                          true));

    // An earlier version's hello has no release; any other message names no role.
    const auto older =
        other(message_of(header_of_version(7, Command::hello), {hello_body(Role::worker, 1)}));
    REQUIRE(older.has_value());
    CHECK(older->version == 7);
    CHECK(older->reason == refusal_naming("worker", "an earlier dtask (protocol version 7)", true));
    const auto beat = other(message_of(header_of_version(version + 1, Command::heartbeat)));
    REQUIRE(beat.has_value());
    CHECK(beat->reason ==
          refusal_naming("peer",
                         "a later dtask (protocol version " + std::to_string(version + 1) + ")",
                         true));

    // Any 64 bits print as a bounded text.
    CHECK(release_name(~std::uint64_t{0}) == "dtask 4294967295.65535.65535");

    // A refuse reads the same in every version; with a field, it is no refuse of any.
    std::vector<zmq::message_t> refusal = message_of(refuse_header(3), {"why"});
    CHECK(parse(refusal, 0).command == Command::refuse);
    CHECK(contains(parse_error(message_of(in_version(3, header(Command::refuse, {1})), {"why"})),
                   "protocol version 3"));
}

TEST_CASE("Protocol.listening_host_refuses_a_peer_of_another_release_naming_both" *
          doctest::timeout(60)) {
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    // The next patch release, of the same protocol version: refused all the same.
    const std::uint64_t next_patch = this_release + 1;
    for (const Role role : {Role::worker, Role::client}) {
        RawPeer peer(context, endpoint, token_for(cluster, role));
        CHECK(peer.refusal_of(message_of(hello_header(next_patch), {hello_body(role, 1)})) ==
              refusal_naming(role == Role::worker ? "worker" : "client", release_name(next_patch)));
        CHECK(peer.version_heard() == version);
    }
    // A later release and protocol version: refused in its own version, which it reads.
    const std::uint64_t later = release_of(DTASK_VERSION_MAJOR + 1, 0, 0);
    RawPeer newer(context, endpoint, cluster.join_token());
    CHECK(newer.refusal_of(message_of(in_version(version + 1, hello_header(later)),
                                      {hello_body(Role::worker, 1)})) ==
          refusal_naming(
              "worker",
              release_name(later) + " (protocol version " + std::to_string(version + 1) + ")",
              true));
    CHECK(newer.version_heard() == version + 1);
    // None of them joined; a worker of this release does.
    CHECK(cluster.workers() == 0);
    RawPeer same(context, endpoint, cluster.join_token());
    same.send(message_of(hello_header(), {hello_body(Role::worker, 1)}));
    same.expect(Command::welcome);
    CHECK(cluster.wait_for_workers(1, 10s));
}
