#pragma once
/// \file dtask::pieces(count, make_piece): the lazy range a split most often returns, piece i
/// made only when the window lets it be sent.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>

namespace dtask {

/// `count` pieces, the i-th being `make_piece(i)`, computed lazily and in order. Unlike
/// std::views::iota | std::views::transform it also builds with clang 14 on libstdc++ 12.
template <class MakePiece>
class PieceRange {
public:
    using value_type = std::remove_cvref_t<std::invoke_result_t<const MakePiece&, std::uint64_t>>;

    class iterator {
    public:
        using value_type = PieceRange::value_type;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;
        iterator(const PieceRange* range, std::uint64_t index) : range_(range), index_(index) {}

        value_type operator*() const { return range_->make_piece_(index_); }
        iterator& operator++() {
            ++index_;
            return *this;
        }
        void operator++(int) { ++index_; }
        bool operator==(const iterator& other) const { return index_ == other.index_; }

    private:
        const PieceRange* range_ = nullptr;
        std::uint64_t index_ = 0;
    };

    PieceRange(std::uint64_t count, MakePiece make_piece)
        : count_(count), make_piece_(std::move(make_piece)) {}

    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, count_); }
    std::uint64_t size() const { return count_; }

private:
    std::uint64_t count_;
    MakePiece make_piece_;
};

template <class MakePiece>
PieceRange<MakePiece> pieces(std::uint64_t count, MakePiece make_piece) {
    return PieceRange<MakePiece>(count, std::move(make_piece));
}

}  // namespace dtask
