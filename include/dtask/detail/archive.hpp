#pragma once
/// \file Turning values into bytes and back with cereal's binary archive, without copying
/// through std::stringstream: a value is written straight into the buffer that becomes the
/// message, and read straight out of the received message.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>
#include <dtask/serialization.hpp>

namespace dtask::detail {

/// Writes cereal's binary format (the same bytes as cereal::BinaryOutputArchive) straight
/// onto the end of a std::string: no std::ostream, whose construction alone would cost
/// more than encoding a small subtask.
class StringOutputArchive
    : public cereal::OutputArchive<StringOutputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit StringOutputArchive(std::string& out)
        : cereal::OutputArchive<StringOutputArchive, cereal::AllowEmptyClassElision>(this),
          out_(out) {}

    void saveBinary(const void* data, std::size_t size) {
        out_.append(static_cast<const char*>(data), size);
    }

private:
    std::string& out_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& archive,
                                                                    const T& value) {
    archive.saveBinary(std::addressof(value), sizeof(value));
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(StringOutputArchive& archive, cereal::NameValuePair<T>& pair) {
    archive(pair.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(StringOutputArchive& archive, cereal::SizeTag<T>& tag) {
    archive(tag.size);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& archive, const cereal::BinaryData<T>& data) {
    archive.saveBinary(data.data, static_cast<std::size_t>(data.size));
}

/// Reads cereal's binary format straight from received bytes, with every length prefix
/// checked against the bytes left before anything is allocated for it: a malformed or
/// hostile message of a few bytes cannot make a process allocate gigabytes.
class BoundedInputArchive
    : public cereal::InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit BoundedInputArchive(std::span<const std::byte> bytes)
        : cereal::InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision>(this),
          next_(bytes.data()),
          end_(bytes.data() + bytes.size()) {}

    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - next_); }

    void loadBinary(void* data, std::size_t size) {
        if (size > remaining()) {
            throw cereal::Exception("needs " + std::to_string(size) + " more bytes, " +
                                    std::to_string(remaining()) + " left");
        }
        std::memcpy(data, next_, size);
        next_ += size;
    }

    /// A container cannot have more elements than there are bytes left to read them from.
    void check_length(std::uint64_t length) const {
        if (length > remaining()) {
            throw cereal::Exception("a length of " + std::to_string(length) + " exceeds the " +
                                    std::to_string(remaining()) + " bytes left");
        }
    }

private:
    const std::byte* next_;
    const std::byte* end_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive,
                                                                    T& value) {
    archive.loadBinary(std::addressof(value), sizeof(value));
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedInputArchive& archive, cereal::NameValuePair<T>& pair) {
    archive(pair.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedInputArchive& archive, cereal::SizeTag<T>& tag) {
    archive(tag.size);
    archive.check_length(static_cast<std::uint64_t>(tag.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, cereal::BinaryData<T>& data) {
    archive.loadBinary(data.data, static_cast<std::size_t>(data.size));
}

/// Appends the cereal binary encoding of `value` to `out`.
template <class T>
void save_to(std::string& out, const T& value) {
    if constexpr (std::is_arithmetic_v<T>) {
        // The same bytes as the archive writes, without building one: an archive costs
        // more than the rest of the work for a subtask of one number.
        out.append(reinterpret_cast<const char*>(std::addressof(value)), sizeof value);
    } else {
        StringOutputArchive archive(out);
        archive(value);
    }
}

/// Reads a T from `bytes`; `describe()` names the value in an error ("subtask 12 of job
/// 'x'"), called only on failure so the hot path builds no strings. All bytes must be
/// consumed: leftovers mean the two sides disagree on the type.
template <class T, class Describe>
requires std::is_invocable_r_v<std::string, Describe> T load_from(std::span<const std::byte> bytes,
                                                                  Describe describe) {
    T value{};
    if constexpr (std::is_arithmetic_v<T>) {
        if (bytes.size() == sizeof value) {  // as save_to: no archive for one number
            std::memcpy(std::addressof(value), bytes.data(), sizeof value);
            return value;
        }
    }
    std::size_t left = 0;
    try {
        BoundedInputArchive archive(bytes);
        archive(value);
        left = archive.remaining();
    } catch (const std::exception& e) {
        throw ProtocolError("cannot decode " + describe() + " as " + type_name<T>() + " from " +
                            std::to_string(bytes.size()) + " bytes: " + e.what() +
                            " (were host and worker built from the same source?)");
    }
    if (left != 0) {
        throw ProtocolError("decoding " + describe() + " as " + type_name<T>() + " left " +
                            std::to_string(left) + " of " + std::to_string(bytes.size()) +
                            " bytes unread (were host and worker built from the same source?)");
    }
    return value;
}

/// load_from with a fixed description.
template <class T>
T load_from(std::span<const std::byte> bytes, const std::string& what) {
    return load_from<T>(bytes, [&] { return what; });
}

}  // namespace dtask::detail

CEREAL_REGISTER_ARCHIVE(dtask::detail::StringOutputArchive)
CEREAL_REGISTER_ARCHIVE(dtask::detail::BoundedInputArchive)
// What one writes the other reads: cereal checks that a type saves and loads alike.
CEREAL_SETUP_ARCHIVE_TRAITS(dtask::detail::BoundedInputArchive, dtask::detail::StringOutputArchive)
