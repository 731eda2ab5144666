#pragma once
/// \file Turning values into bytes and back with cereal's binary archive, without copying
/// through std::stringstream: a value is written straight into the buffer that becomes the
/// message, and read straight out of the received message.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <forward_list>
#include <list>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <valarray>
#include <vector>

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

/// Cereal's save takes &valarray[0], undefined for an empty valarray.
template <class T>
requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& archive, const std::valarray<T>& valarray) {
    archive(cereal::make_size_tag(static_cast<cereal::size_type>(valarray.size())));
    if (valarray.size() != 0)
        archive(cereal::binary_data(&valarray[0], valarray.size() * sizeof(T)));
}

/// Reads cereal's binary format straight from received bytes, never trusting a length it
/// reads. The bound, for any type: decoding n bytes allocates at most about
///   - for a container of arithmetic elements (strings too): its bytes, after checking that
///     length * sizeof(element) fits in the bytes left;
///   - for any other container: a first reservation of at most the bytes left, then growth
///     as elements are actually decoded (each takes at least one byte, as its length is
///     checked against the bytes left), geometric for a vector: at most about three times
///     sizeof(element) per element decoded while it grows;
/// so a few bytes claiming 2^40 elements fail at once, and a large message claiming more
/// elements than it holds fails when its bytes run out, having allocated in proportion to
/// what it held. A bool is a byte 0 or 1, anything else is refused.
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
        if (size == 0)
            return;  // an empty container's data() may be null, which memcpy must not see
        std::memcpy(data, next_, size);
        next_ += size;
    }

    /// Reads `size` bytes that are to be bools: each must be 0 or 1.
    void loadBools(bool* data, std::size_t size) {
        if (size > remaining())
            loadBinary(data, size);  // throws
        for (std::size_t i = 0; i < size; ++i) {
            const auto byte = std::to_integer<unsigned>(next_[i]);
            if (byte > 1) {
                throw cereal::Exception("a bool must be a byte 0 or 1, found " +
                                        std::to_string(byte));
            }
        }
        loadBinary(data, size);
    }

    /// `length` elements of at least `element_bytes` bytes each must fit in the bytes left.
    void check_length(std::uint64_t length, std::size_t element_bytes = 1) const {
        if (length > remaining() / element_bytes) {
            throw cereal::Exception(
                "a length of " + std::to_string(length) +
                (element_bytes == 1 ? std::string()
                                    : " elements of " + std::to_string(element_bytes) + " bytes") +
                " exceeds the " + std::to_string(remaining()) + " bytes left");
        }
    }

    /// How many elements of type T to reserve for a container that claims `length`: no
    /// more than the bytes left would hold. Growth past it follows the elements decoded.
    template <class T>
    std::size_t first_reservation(std::uint64_t length) const noexcept {
        const std::size_t fit = remaining() / sizeof(T);
        return static_cast<std::size_t>(std::min<std::uint64_t>(length, fit == 0 ? 1 : fit));
    }

private:
    const std::byte* next_;
    const std::byte* end_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>> CEREAL_LOAD_FUNCTION_NAME(
    BoundedInputArchive& archive, T& value) {
    archive.loadBinary(std::addressof(value), sizeof(value));
}

inline void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, bool& value) {
    archive.loadBools(&value, 1);
}

/// A name's value; an error inside it says the name (for the structs that give names).
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedInputArchive& archive, cereal::NameValuePair<T>& pair) {
    try {
        archive(pair.value);
    } catch (const cereal::Exception& e) {
        throw cereal::Exception(std::string(e.what()) + " (in '" + pair.name + "')");
    }
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedInputArchive& archive, cereal::SizeTag<T>& tag) {
    archive(tag.size);
    archive.check_length(static_cast<std::uint64_t>(tag.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, cereal::BinaryData<T>& data) {
    if constexpr (std::is_same_v<std::remove_cv_t<std::remove_pointer_t<T>>, bool>)
        archive.loadBools(static_cast<bool*>(data.data), static_cast<std::size_t>(data.size));
    else
        archive.loadBinary(data.data, static_cast<std::size_t>(data.size));
}

namespace archive_detail {

/// A container's length, checked against the bytes left.
inline std::uint64_t load_length(BoundedInputArchive& archive) {
    cereal::size_type length = 0;
    archive(cereal::make_size_tag(length));
    return static_cast<std::uint64_t>(length);
}

/// Elements loaded straight into the bytes of a contiguous container, once their bytes
/// are known to be there.
template <class T, class Container>
void load_contiguous(BoundedInputArchive& archive, Container& container, std::uint64_t length) {
    archive.check_length(length, sizeof(T));
    container.resize(static_cast<std::size_t>(length));
    if (length != 0)
        archive(cereal::binary_data(&container[0], static_cast<std::size_t>(length) * sizeof(T)));
}

/// Elements appended one by one as they are decoded: the container grows only as bytes
/// are actually read.
template <class Container>
void load_appending(BoundedInputArchive& archive, Container& container, std::uint64_t length) {
    container.clear();
    for (std::uint64_t i = 0; i < length; ++i)
        archive(container.emplace_back());
}

}  // namespace archive_detail

// Cereal's own loads resize a container to the length read before decoding any element;
// these, chosen over cereal's for this archive (more specialized), grow as decoded.

template <class T, class A>
requires(!std::is_same_v<T, bool>) void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive,
                                                                  std::vector<T, A>& vector) {
    const std::uint64_t length = archive_detail::load_length(archive);
    if constexpr (std::is_arithmetic_v<T>) {
        archive_detail::load_contiguous<T>(archive, vector, length);
    } else {
        vector.clear();
        vector.reserve(archive.first_reservation<T>(length));
        archive_detail::load_appending(archive, vector, length);
    }
}

template <class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::vector<bool, A>& vector) {
    const std::uint64_t length = archive_detail::load_length(archive);
    vector.clear();
    vector.reserve(static_cast<std::size_t>(length));  // a bit each, and one byte each to come
    for (std::uint64_t i = 0; i < length; ++i) {
        bool value = false;
        archive(value);
        vector.push_back(value);
    }
}

template <class C, class Traits, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive,
                               std::basic_string<C, Traits, A>& string) {
    archive_detail::load_contiguous<C>(archive, string, archive_detail::load_length(archive));
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::deque<T, A>& deque) {
    archive_detail::load_appending(archive, deque, archive_detail::load_length(archive));
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::list<T, A>& list) {
    archive_detail::load_appending(archive, list, archive_detail::load_length(archive));
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::forward_list<T, A>& list) {
    const std::uint64_t length = archive_detail::load_length(archive);
    list.clear();
    auto last = list.before_begin();
    for (std::uint64_t i = 0; i < length; ++i) {
        last = list.emplace_after(last);
        archive(*last);
    }
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::valarray<T>& valarray) {
    const std::uint64_t length = archive_detail::load_length(archive);
    if constexpr (std::is_arithmetic_v<T>) {
        archive_detail::load_contiguous<T>(archive, valarray, length);
    } else {
        std::vector<T> elements;  // a valarray cannot grow: decoded first, then copied
        elements.reserve(archive.first_reservation<T>(length));
        archive_detail::load_appending(archive, elements, length);
        valarray = std::valarray<T>(elements.data(), elements.size());
    }
}

/// Cereal reserves the length read for the unordered sets (a bucket per element); here the
/// table grows as keys are decoded.
template <class Set>
void load_unordered_set(BoundedInputArchive& archive, Set& set) {
    const std::uint64_t length = archive_detail::load_length(archive);
    set.clear();
    for (std::uint64_t i = 0; i < length; ++i) {
        typename Set::key_type key;
        archive(key);
        set.emplace(std::move(key));
    }
}

template <class K, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive, std::unordered_set<K, H, E, A>& set) {
    load_unordered_set(archive, set);
}

template <class K, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& archive,
                               std::unordered_multiset<K, H, E, A>& set) {
    load_unordered_set(archive, set);
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

/// A decoder that ran out of memory: said as such, not as a disagreement on the type.
inline Error out_of_memory_decoding(const std::string& what, const std::string& type,
                                    std::size_t bytes) {
    return Error("dtask: out of memory decoding " + what + " as " + type + " from " +
                 std::to_string(bytes) + " bytes");
}

/// Reads a T from `bytes`; `describe()` names the value in an error ("subtask 12 of job
/// 'x'"), called only on failure so the hot path builds no strings. All bytes must be
/// consumed: leftovers mean the two sides disagree on the type.
template <class T, class Describe>
requires std::is_invocable_r_v<std::string, Describe> T load_from(std::span<const std::byte> bytes,
                                                                  Describe describe) {
    T value{};
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
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
    } catch (const std::bad_alloc&) {
        throw out_of_memory_decoding(describe(), type_name<T>(), bytes.size());
    } catch (const std::length_error&) {
        throw out_of_memory_decoding(describe(), type_name<T>(), bytes.size());
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
