#pragma once
// The types the archive fuzzer decodes, chosen by an input's first byte; make_corpus encodes
// a value of each for the seeds.

#include <array>
#include <cstdint>
#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <valarray>
#include <variant>
#include <vector>

#include <cereal/types/forward_list.hpp>
#include <cereal/types/valarray.hpp>

#include <dtask/serialization.hpp>

namespace dtask::fuzz {

/// A user's struct, as a job's subtask might be.
struct Point {
    std::int32_t id = 0;
    double weight = 0;
    std::string label;
    std::optional<std::vector<bool>> flags;
    std::map<std::string, std::vector<std::int64_t>> series;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(id, weight, label, flags, series);
    }
};

template <class T>
inline constexpr bool unordered = false;
template <class... A>
inline constexpr bool unordered<std::unordered_set<A...>> = true;
template <class... A>
inline constexpr bool unordered<std::unordered_map<A...>> = true;

/// Calls visit.template operator()<T>() for the type numbered `which` (modulo the count).
template <class Visit>
void with_type(unsigned which, Visit&& visit) {
    switch (which % 24) {
        case 0:
            return visit.template operator()<std::int32_t>();
        case 1:
            return visit.template operator()<double>();
        case 2:
            return visit.template operator()<bool>();
        case 3:
            return visit.template operator()<std::string>();
        case 4:
            return visit.template operator()<std::vector<double>>();
        case 5:
            return visit.template operator()<std::vector<std::string>>();
        case 6:
            return visit.template operator()<std::vector<Point>>();
        case 7:
            return visit.template operator()<std::map<std::string, std::int32_t>>();
        case 8:
            return visit.template operator()<std::optional<std::string>>();
        case 9:
            return visit.template operator()<std::pair<std::int32_t, std::string>>();
        case 10:
            return visit.template operator()<std::tuple<std::uint8_t, double, std::string>>();
        case 11:
            return visit.template operator()<std::vector<std::vector<std::int32_t>>>();
        case 12:
            return visit.template operator()<Point>();
        case 13:
            return visit.template operator()<std::deque<std::string>>();
        case 14:
            return visit.template operator()<std::list<std::int16_t>>();
        case 15:
            return visit.template operator()<std::unordered_set<std::string>>();
        case 16:
            return visit.template operator()<std::multiset<std::int32_t>>();
        case 17:
            return visit.template operator()<std::vector<bool>>();
        case 18:
            return visit.template operator()<std::array<bool, 4>>();
        case 19:
            return visit.template operator()<std::variant<std::int32_t, std::string>>();
        case 20:
            return visit.template operator()<std::unique_ptr<std::string>>();
        case 21:
            return visit.template operator()<std::valarray<double>>();
        case 22:
            return visit.template operator()<std::forward_list<std::string>>();
        default:
            return visit.template operator()<std::unordered_map<
                std::string, std::vector<std::pair<std::string, std::string>>>>();
    }
}

}  // namespace dtask::fuzz
