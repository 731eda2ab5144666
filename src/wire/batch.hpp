#pragma once
// A batch: the payloads of consecutive subtasks (or of their partial results) packed into one
// frame behind the task or result header, each as a 32-bit little-endian length followed by
// that many bytes. One frame per batch costs one allocation and one ZeroMQ message however
// many subtasks it carries, and a subtask's bytes are serialized straight into it: they are
// never copied again on their way to the worker's map.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <zmq.hpp>

namespace dtask::detail {

/// Bytes in front of each record: its length.
inline constexpr std::size_t record_header_size = 4;

/// Appends records to a string that becomes a task or result frame (the caller leaves room
/// for the header in front).
class BatchWriter {
public:
    explicit BatchWriter(std::string& out) : out_(out) {}

    /// Starts a record: the caller then appends its bytes to out().
    void begin() {
        start_ = out_.size();
        out_.append(record_header_size, '\0');
    }
    /// Ends the record begun last: its length is what was appended since.
    void end();
    /// Drops the record begun last.
    void abandon() { out_.resize(start_); }

    std::string& out() noexcept { return out_; }

private:
    std::string& out_;
    std::size_t start_ = 0;
};

/// Walks the records of a batch frame, checking each length against what is left.
class BatchReader {
public:
    explicit BatchReader(std::span<const std::byte> frame) : frame_(frame) {}

    /// The next record's bytes. Throws ProtocolError, naming `what`, if the frame is cut
    /// short. False at the end of the frame.
    bool next(std::span<const std::byte>& record, const char* what);
    /// Offset of the next record in the frame.
    std::size_t offset() const noexcept { return offset_; }
    void seek(std::size_t offset) noexcept { offset_ = offset; }

private:
    std::span<const std::byte> frame_;
    std::size_t offset_ = 0;
};

/// Checks that `batch` holds exactly `count` whole records. Throws ProtocolError.
void check_batch(std::span<const std::byte> batch, std::uint64_t count, const char* what);

/// A new task frame with records [from, to) of the task frame `task` (which holds at least
/// `to`), its header saying so: for the rare paths that split a batch (a retry, a
/// quarantine), which may copy.
zmq::message_t slice_batch(const zmq::message_t& task, std::uint64_t from, std::uint64_t to);

}  // namespace dtask::detail
