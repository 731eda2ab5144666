#pragma once
/// \file Turning values into bytes and back with cereal's binary archive, without copying
/// through std::stringstream: a value is written straight into the buffer that becomes the
/// message, and read straight out of the received message.

#include <cstddef>
#include <istream>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <type_traits>

#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>
#include <dtask/serialization.hpp>

namespace dtask::detail {

/// A streambuf that appends to a std::string.
class StringSink final : public std::streambuf {
public:
    explicit StringSink(std::string& out) : out_(out) {}

protected:
    int_type overflow(int_type ch) override {
        if (!traits_type::eq_int_type(ch, traits_type::eof()))
            out_.push_back(static_cast<char>(ch));
        return ch;
    }
    std::streamsize xsputn(const char* data, std::streamsize count) override {
        out_.append(data, static_cast<std::size_t>(count));
        return count;
    }

private:
    std::string& out_;
};

/// A streambuf that reads from bytes it does not own.
class SpanSource final : public std::streambuf {
public:
    explicit SpanSource(std::span<const std::byte> bytes) {
        auto* begin = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
        setg(begin, begin, begin + bytes.size());
    }
    std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

/// Appends the cereal binary encoding of `value` to `out`.
template <class T>
void save_to(std::string& out, const T& value) {
    StringSink sink(out);
    std::ostream stream(&sink);
    cereal::BinaryOutputArchive archive(stream);
    archive(value);
}

/// Reads a T from `bytes`; `describe()` names the value in an error ("subtask 12 of job
/// 'x'"), called only on failure so the hot path builds no strings. All bytes must be
/// consumed: leftovers mean the two sides disagree on the type.
template <class T, class Describe>
requires std::is_invocable_r_v<std::string, Describe> T load_from(std::span<const std::byte> bytes,
                                                                  Describe describe) {
    SpanSource source(bytes);
    std::istream stream(&source);
    T value{};
    try {
        cereal::BinaryInputArchive archive(stream);
        archive(value);
    } catch (const std::exception& e) {
        throw ProtocolError("cannot decode " + describe() + " as " + type_name<T>() + " from " +
                            std::to_string(bytes.size()) + " bytes: " + e.what() +
                            " (were host and worker built from the same source?)");
    }
    if (source.remaining() != 0) {
        throw ProtocolError("decoding " + describe() + " as " + type_name<T>() + " left " +
                            std::to_string(source.remaining()) + " of " +
                            std::to_string(bytes.size()) +
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
