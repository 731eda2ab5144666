#pragma once
/// \file
/// dtask::pieces(count, make_piece): the lazy range a split most often returns, piece i made
/// only when the window lets it be sent.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>

namespace dtask {

/// `count` pieces, the i-th being `make_piece(i)`, computed lazily and in order: what
/// pieces() returns. Unlike std::views::iota | std::views::transform it also builds with
/// clang 14 on libstdc++ 12. Its size is known, so a job's Progress has its total from the
/// start.
template <class MakePiece>
class PieceRange {
public:
    /// A piece: what make_piece returns, the job's subtask type.
    using value_type = std::remove_cvref_t<std::invoke_result_t<const MakePiece&, std::uint64_t>>;

    /// An input iterator: dereferencing it calls make_piece for its index.
    class iterator {
    public:
        /// A piece.
        using value_type = PieceRange::value_type;
        /// For the iterator concepts.
        using difference_type = std::ptrdiff_t;
        /// An input iterator: each piece is made once, when dereferenced.
        using iterator_concept = std::input_iterator_tag;

        /// A singular iterator, for the iterator concepts.
        iterator() = default;
        /// Piece `index` of `range`.
        iterator(const PieceRange* range, std::uint64_t index) : range_(range), index_(index) {}

        /// Makes the piece: make_piece(index).
        value_type operator*() const { return range_->make_piece_(index_); }
        /// To the next piece.
        iterator& operator++() {
            ++index_;
            return *this;
        }
        /// To the next piece.
        void operator++(int) { ++index_; }
        /// Past `count` pieces without making them (a checkpointed run resuming).
        iterator& operator+=(difference_type count) {
            index_ += static_cast<std::uint64_t>(count);
            return *this;
        }
        /// Same index: iterators of one range only.
        bool operator==(const iterator& other) const { return index_ == other.index_; }

    private:
        const PieceRange* range_ = nullptr;
        std::uint64_t index_ = 0;
    };

    /// `count` pieces made by `make_piece`, which it keeps (capture by value).
    PieceRange(std::uint64_t count, MakePiece make_piece)
        : count_(count), make_piece_(std::move(make_piece)) {}

    /// Piece 0.
    iterator begin() const { return iterator(this, 0); }
    /// Past the last piece.
    iterator end() const { return iterator(this, count_); }
    /// How many pieces: `count`.
    std::uint64_t size() const { return count_; }

private:
    std::uint64_t count_;
    MakePiece make_piece_;
};

/// The lazy range of `count` pieces that split most often returns: piece i is
/// `make_piece(i)`, called with i from 0 to count - 1, in order, only when the window lets
/// the piece be sent, in the host on the job's strand. make_piece is kept by value in the
/// range, which outlives split's call: it must not capture split's locals by reference.
///
///     [](const std::uint64_t& n, dtask::SplitHint hint) {
///         const std::uint64_t k = hint.subtasks;
///         return dtask::pieces(k, [=](std::uint64_t i) {
///             return Range{1 + n * i / k, 1 + n * (i + 1) / k};
///         });
///     }
template <class MakePiece>
PieceRange<MakePiece> pieces(std::uint64_t count, MakePiece make_piece) {
    return PieceRange<MakePiece>(count, std::move(make_piece));
}

}  // namespace dtask
