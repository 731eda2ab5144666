// The repro bundle's format (repro_bundle.hpp): written by the host, read back by replay with
// every length checked against what is left before anything is allocated.

#include "repro_bundle.hpp"

#include <cstring>

#include <dtask/error.hpp>

namespace dtask::detail {
namespace {

constexpr char magic[8] = {'D', 'T', 'A', 'S', 'K', 'R', 'P', 'L'};

std::uint64_t fnv1a(std::span<const std::byte> bytes) noexcept {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const std::byte b : bytes) {
        hash ^= static_cast<std::uint8_t>(b);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

void put(std::string& out, std::uint64_t value, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_field(std::string& out, const std::string& field) {
    put(out, field.size(), 8);
    out += field;
}

/// Reads the bundle front to back; every read names what it reads, for the error.
class Reader {
public:
    explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

    std::uint64_t number(std::size_t size, const char* what) {
        need(size, what);
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < size; ++i)
            value |= static_cast<std::uint64_t>(bytes_[offset_ + i]) << (8 * i);
        offset_ += size;
        return value;
    }
    std::string field(const char* what) {
        const std::uint64_t length = number(8, what);
        need(length, what);
        std::string value(reinterpret_cast<const char*>(bytes_.data() + offset_),
                          static_cast<std::size_t>(length));
        offset_ += static_cast<std::size_t>(length);
        return value;
    }
    std::size_t offset() const noexcept { return offset_; }
    std::size_t left() const noexcept { return bytes_.size() - offset_; }

private:
    void need(std::uint64_t size, const char* what) const {
        if (size > left())
            throw Error("the repro bundle is cut short: its " + std::string(what) + " needs " +
                        std::to_string(size) + " bytes, " + std::to_string(left()) +
                        " are left (of " + std::to_string(bytes_.size()) + ")");
    }

    std::span<const std::byte> bytes_;
    std::size_t offset_ = 0;
};

}  // namespace

const char* failure_name(ReproFailure failure) noexcept {
    switch (failure) {
        case ReproFailure::exception:
            return "exception";
        case ReproFailure::crash:
            return "crash";
        case ReproFailure::timeout:
            return "timeout";
    }
    return "unknown";
}

std::string encode_bundle(const ReproBundle& bundle) {
    std::string out(magic, sizeof magic);
    put(out, repro_bundle_version, 4);
    put(out, bundle.subtask, 8);
    put(out, static_cast<std::uint8_t>(bundle.failure), 1);
    for (const std::string* field :
         {&bundle.job, &bundle.signature, &bundle.worker, &bundle.exception_type, &bundle.error,
          &bundle.placed, &bundle.shared, &bundle.subtask_bytes})
        put_field(out, *field);
    put(out, fnv1a(std::as_bytes(std::span(out))), 8);
    return out;
}

ReproBundle decode_bundle(std::span<const std::byte> bytes) {
    if (bytes.size() < sizeof magic || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
        throw Error("not a dtask repro bundle: it does not begin with \"DTASKRPL\"");
    Reader reader(bytes.subspan(sizeof magic));
    const auto version = reader.number(4, "version");
    if (version != repro_bundle_version)
        throw Error("a repro bundle of format version " + std::to_string(version) +
                    ", which this build of dtask cannot read (it reads version " +
                    std::to_string(repro_bundle_version) +
                    "): replay it with the build that wrote it");
    ReproBundle bundle;
    bundle.subtask = reader.number(8, "subtask index");
    const auto failure = reader.number(1, "failure kind");
    if (failure > static_cast<std::uint8_t>(ReproFailure::timeout))
        throw Error("the repro bundle is damaged: unknown failure kind " + std::to_string(failure));
    bundle.failure = static_cast<ReproFailure>(failure);
    bundle.job = reader.field("job name");
    bundle.signature = reader.field("job signature");
    bundle.worker = reader.field("worker");
    bundle.exception_type = reader.field("exception type");
    bundle.error = reader.field("error message");
    bundle.placed = reader.field("placed data");
    bundle.shared = reader.field("job-wide data");
    bundle.subtask_bytes = reader.field("subtask");
    const std::size_t end = sizeof magic + reader.offset();
    const std::uint64_t checksum = reader.number(8, "checksum");
    if (reader.left() != 0)
        throw Error("the repro bundle is damaged: " + std::to_string(reader.left()) +
                    " bytes follow its end");
    if (checksum != fnv1a(bytes.first(end)))
        throw Error("the repro bundle is damaged: its checksum does not match its content");
    return bundle;
}

}  // namespace dtask::detail
