// Decoding bytes from a hostile or buggy peer (issue 18), without sockets: memory in
// proportion to the bytes received whatever a length claims, defined behaviour for every
// byte (bools, empty containers, enums), and out of memory said as such.
#include <array>
#include <cstdint>
#include <deque>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <valarray>
#include <vector>

#include <cereal/types/forward_list.hpp>
#include <cereal/types/valarray.hpp>
#include <doctest/doctest.h>

#include <dtask/detail/archive.hpp>

#include "support.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using test_support::contains;

namespace {

/// Bytes that an allocator of this kind holds now, and the most it ever held.
struct Counted {
    static inline std::size_t now = 0;
    static inline std::size_t peak = 0;
    static void reset() { now = peak = 0; }
};

template <class T>
struct CountingAllocator {
    using value_type = T;
    CountingAllocator() = default;
    template <class U>
    CountingAllocator(const CountingAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        Counted::now += n * sizeof(T);
        Counted::peak = std::max(Counted::peak, Counted::now);
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        Counted::now -= n * sizeof(T);
        std::allocator<T>().deallocate(p, n);
    }
    template <class U>
    bool operator==(const CountingAllocator<U>&) const noexcept {
        return true;
    }
};

using Pair = std::pair<std::string, std::string>;

std::span<const std::byte> bytes_of(const std::string& bytes) {
    return std::as_bytes(std::span(bytes));
}

/// `size` bytes: a length prefix claiming `length` elements, then 0xff (a string length
/// beyond anything, so the first element that is not arithmetic fails).
std::string claiming(std::uint64_t length, std::size_t size) {
    std::string bytes;
    save_to(bytes, length);
    bytes.resize(size, '\xff');
    return bytes;
}

/// Decoding a 1 KiB message that claims `length` elements of T fails with a message, and
/// T's allocator never held more than twice the message.
template <class T>
void refused_within_bound(std::uint64_t length, const std::string& expected) {
    const std::string bytes = claiming(length, 1024);
    Counted::reset();
    try {
        (void)load_from<T>(bytes_of(bytes), "a hostile message");
        FAIL("a message claiming " << length << " elements decoded as " << type_name<T>());
    } catch (const dtask::ProtocolError& e) {
        CHECK_MESSAGE(contains(e.what(), expected), std::string(e.what()));
    }
    CHECK_MESSAGE(Counted::peak <= 2 * bytes.size(),
                  type_name<T>() << " allocated " << Counted::peak << " bytes for a message of "
                                 << bytes.size());
    CHECK(Counted::now == 0);
}

template <class T>
void refused_within_bound() {
    CAPTURE(type_name<T>());
    // More elements than bytes: refused before anything is allocated.
    refused_within_bound<T>(std::uint64_t{1} << 40, "a length of 1099511627776 exceeds");
    // As many as the bytes left: allowed by the count, so it fails on the elements.
    refused_within_bound<T>(1016, "left");
}

}  // namespace

TEST_CASE("Decoding.hostile_lengths_allocate_at_most_the_bytes_received" * doctest::timeout(30)) {
    refused_within_bound<std::vector<Pair, CountingAllocator<Pair>>>();
    refused_within_bound<std::vector<double, CountingAllocator<double>>>();
    refused_within_bound<std::vector<std::vector<int>, CountingAllocator<std::vector<int>>>>();
    refused_within_bound<std::deque<std::string, CountingAllocator<std::string>>>();
    refused_within_bound<std::list<std::string, CountingAllocator<std::string>>>();
    refused_within_bound<std::forward_list<std::string, CountingAllocator<std::string>>>();
    refused_within_bound<std::unordered_set<std::string, std::hash<std::string>, std::equal_to<>,
                                            CountingAllocator<std::string>>>();
    refused_within_bound<std::unordered_multiset<
        std::string, std::hash<std::string>, std::equal_to<>, CountingAllocator<std::string>>>();
    refused_within_bound<std::map<std::string, std::string, std::less<>,
                                  CountingAllocator<std::pair<const std::string, std::string>>>>();
    using CountedString = std::basic_string<char, std::char_traits<char>, CountingAllocator<char>>;
    refused_within_bound<std::vector<CountedString, CountingAllocator<CountedString>>>();
    // A string of 2^40 characters in 1 KiB.
    refused_within_bound<CountedString>(std::uint64_t{1} << 40, "a length of 1099511627776");
}

TEST_CASE("Decoding.empty_containers_and_bools_are_defined_behaviour" * doctest::timeout(30)) {
    auto round_trip = [](const auto& value) {
        std::string bytes;
        save_to(bytes, value);
        return load_from<std::decay_t<decltype(value)>>(bytes_of(bytes), "a value");
    };
    CHECK(round_trip(std::vector<double>{}).empty());
    CHECK(round_trip(std::string()).empty());
    CHECK(round_trip(std::vector<bool>{true, false}) == std::vector<bool>{true, false});
    CHECK(round_trip(std::valarray<double>{}).size() == 0);
    CHECK(round_trip(std::array<bool, 2>{true, false}) == std::array<bool, 2>{true, false});
    CHECK(round_trip(true));

    const std::string two(1, '\x02');
    for (auto decode : {+[](std::span<const std::byte> b) { (void)load_from<bool>(b, "a bool"); },
                        +[](std::span<const std::byte> b) {
                            (void)load_from<std::optional<int>>(b, "an optional");
                        },
                        +[](std::span<const std::byte> b) {
                            (void)load_from<std::array<bool, 1>>(b, "an array of bools");
                        }}) {
        try {
            decode(bytes_of(two));
            FAIL("a bool of 2 decoded");
        } catch (const dtask::ProtocolError& e) {
            CHECK_MESSAGE(contains(e.what(), "a bool must be a byte 0 or 1, found 2"),
                          std::string(e.what()));
        }
    }
}

TEST_CASE("Decoding.an_unknown_failure_kind_is_refused_where_it_is_decoded" *
          doctest::timeout(30)) {
    Failure failure;
    failure.message = "boom";
    zmq::message_t body = encode_body(failure);
    static_cast<std::uint8_t*>(body.data())[0] = 42;  // the kind comes first
    try {
        (void)decode_body<Failure>(body, "a failure report");
        FAIL("a failure of kind 42 decoded");
    } catch (const dtask::ProtocolError& e) {
        CHECK_MESSAGE(contains(e.what(), "unknown kind 42"), std::string(e.what()));
    }
}

namespace {

/// A subtask type whose decoding runs out of memory.
struct Greedy {
    template <class Archive>
    void save(Archive&) const {}
    template <class Archive>
    void load(Archive&) {
        throw std::bad_alloc();
    }
};

}  // namespace

TEST_CASE("Decoding.out_of_memory_is_said_as_such" * doctest::timeout(30)) {
    const std::string bytes;
    try {
        (void)load_from<Greedy>(bytes_of(bytes),
                                [] { return std::string("subtask 3 of job 'j'"); });
        FAIL("decoding went on after running out of memory");
    } catch (const dtask::ProtocolError& e) {
        FAIL("out of memory reported as a protocol error: " << std::string(e.what()));
    } catch (const dtask::Error& e) {
        CHECK_MESSAGE(contains(e.what(), "out of memory decoding subtask 3 of job 'j' as"),
                      std::string(e.what()));
        CHECK_MESSAGE(contains(e.what(), "from 0 bytes"), std::string(e.what()));
        CHECK_MESSAGE(!contains(e.what(), "same source"), std::string(e.what()));
    }
}
