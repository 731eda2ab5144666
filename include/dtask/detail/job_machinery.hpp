#pragma once
/// \file The machinery behind dtask::Job<T>: the compile-time checks of a definition, the
/// typed job model that serializes subtasks and runs map, and the state of one run of a job.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <ranges>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <cereal/details/traits.hpp>

#include <dtask/detail/archive.hpp>
#include <dtask/detail/callable_traits.hpp>
#include <dtask/detail/checkpoint.hpp>
#include <dtask/detail/job_model.hpp>
#include <dtask/detail/run_state.hpp>
#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>
#include <dtask/options.hpp>

namespace dtask {

/// No job-wide (or placed) data: the map of such a job takes its subtask alone.
struct NoShared {
    template <class Archive>
    void serialize(Archive&) {}
};

}  // namespace dtask

namespace dtask::detail {

/// Whether cereal has a rule for T itself; for a standard container, true whatever its
/// elements (its rule is a template that fails deep inside cereal when instantiated).
template <class T>
inline constexpr bool has_cereal_rule_v =
    cereal::traits::is_output_serializable<T, StringOutputArchive>::value&&
        cereal::traits::is_input_serializable<T, BoundedInputArchive>::value;

/// Whether T is an instance of the standard template `Template` (of type parameters only).
template <class T, template <class...> class Template>
inline constexpr bool is_instance_of_v = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_instance_of_v<Template<Args...>, Template> = true;

template <class T>
constexpr bool serializable_through();

/// Whether every type argument of `Template<Args...>` is serializable, elements included.
template <template <class...> class Template, class... Args>
constexpr bool arguments_serializable(Template<Args...>*) {
    return (serializable_through<Args>() && ...);
}

template <class T>
inline constexpr bool is_std_array_v = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array_v<std::array<T, N>> = true;

/// Whether T is serializable, and so are the elements of the standard containers, pairs,
/// tuples, optionals, variants and smart pointers it is made of: so that one static_assert
/// names the problem instead of cereal's errors from deep inside a container's rule.
template <class T>
constexpr bool serializable_through() {
    using U = std::remove_cv_t<T>;
    if constexpr (is_instance_of_v<U, std::pair> || is_instance_of_v<U, std::tuple> ||
                  is_instance_of_v<U, std::variant>) {
        // Their parts decide (a map's elements are pairs with a const key).
        return arguments_serializable(static_cast<U*>(nullptr));
    } else if constexpr (!has_cereal_rule_v<U>) {
        return false;
    } else if constexpr (is_instance_of_v<U, std::vector> || is_instance_of_v<U, std::deque> ||
                         is_instance_of_v<U, std::list> || is_instance_of_v<U, std::set> ||
                         is_instance_of_v<U, std::multiset> ||
                         is_instance_of_v<U, std::unordered_set> ||
                         is_instance_of_v<U, std::unordered_multiset> ||
                         is_instance_of_v<U, std::map> || is_instance_of_v<U, std::multimap> ||
                         is_instance_of_v<U, std::unordered_map> ||
                         is_instance_of_v<U, std::unordered_multimap> ||
                         is_instance_of_v<U, std::optional> || is_std_array_v<U>) {
        return serializable_through<typename U::value_type>();
    } else if constexpr (is_instance_of_v<U, std::unique_ptr> ||
                         is_instance_of_v<U, std::shared_ptr>) {
        return serializable_through<typename U::element_type>();
    } else {
        return true;
    }
}

template <class T>
inline constexpr bool is_serializable_v = serializable_through<T>();

/// A job's model with its result type known: it can start runs that produce a T.
template <class T>
class JobModelFor : public JobModel {
public:
    using JobModel::JobModel;
    /// Starts a run: checks the types of the input, of the placed data (a shared object's,
    /// or NoShared) and of the job-wide data `shared` (NoShared for none), and calls split.
    /// `input` is moved from.
    virtual std::shared_ptr<ResultState<T>> start(const std::type_info& input_type, void* input,
                                                  const std::type_info& placed_type,
                                                  const std::type_info& shared_type,
                                                  const void* shared, SplitHint hint,
                                                  RunOptions options) const = 0;
};

template <class Pieces, bool = std::ranges::input_range<Pieces>>
struct piece_iterator {
    using type = int;  // a generator has none
};
template <class Pieces>
struct piece_iterator<Pieces, true> {
    using type = std::ranges::iterator_t<Pieces>;
};

/// The pieces split produces, pulled one at a time: from a range (a vector, a view, anything
/// iterable) or from a generator callable that returns std::optional<Subtask>.
template <class Pieces, class Subtask>
class PieceSource {
public:
    explicit PieceSource(Pieces pieces) : pieces_(std::move(pieces)) {
        if constexpr (std::ranges::input_range<Pieces>) {
            it_.emplace(std::ranges::begin(pieces_));
        }
    }
    PieceSource(const PieceSource&) = delete;
    PieceSource& operator=(const PieceSource&) = delete;

    /// How many pieces there are, when the range knows it without being walked.
    std::optional<std::uint64_t> size() const {
        if constexpr (std::ranges::sized_range<const Pieces>) {
            return static_cast<std::uint64_t>(std::ranges::size(pieces_));
        } else {
            return std::nullopt;
        }
    }

    /// Passes over up to `count` pieces without making them: a range's iterator is advanced
    /// (at once if it can jump), a generator is called and what it gives dropped.
    void skip(std::uint64_t count) {
        if constexpr (std::ranges::input_range<Pieces>) {
            using Iterator = typename piece_iterator<Pieces>::type;
            using Step = std::iter_difference_t<Iterator>;
            if constexpr (std::ranges::sized_range<const Pieces> &&
                          requires(Iterator & it, Step step) { it += step; }) {
                const std::uint64_t left = *size() - std::min(*size(), taken_);
                count = std::min(count, left);
                *it_ += static_cast<Step>(count);
                taken_ += count;
            } else {
                for (; count > 0 && *it_ != std::ranges::end(pieces_); --count, ++taken_)
                    ++*it_;
            }
        } else {
            for (; count > 0 && pieces_(); --count)
                ++taken_;
        }
    }

    bool next(std::string& out) {
        ++taken_;
        if constexpr (std::ranges::input_range<Pieces>) {
            if (*it_ == std::ranges::end(pieces_))
                return false;
            save_to(out, static_cast<const Subtask&>(Subtask(**it_)));
            ++*it_;
            return true;
        } else {
            std::optional<Subtask> piece = pieces_();
            if (!piece)
                return false;
            save_to(out, *piece);
            return true;
        }
    }

private:
    Pieces pieces_;
    std::optional<typename piece_iterator<Pieces>::type> it_;
    std::uint64_t taken_ = 0;  // pieces made or skipped
};

template <class Pieces, class Subtask>
concept piece_source_of = (std::ranges::input_range<Pieces> &&
                           std::convertible_to<std::ranges::range_reference_t<Pieces>, Subtask>) ||
                          (std::invocable<Pieces&> &&
                           std::same_as<std::invoke_result_t<Pieces&>, std::optional<Subtask>>);

template <class T, class Input, class Subtask, class Partial, class Shared, class Split,
          class Reduce>
class RunStateFor final : public ResultState<T> {
public:
    using Pieces = std::remove_cvref_t<std::invoke_result_t<const Split&, const Input&, SplitHint>>;

    /// `shared_given`: the job-wide data is `shared` (else a shared object, chosen later).
    RunStateFor(const JobModel& model, Input&& input, std::string shared, bool shared_given,
                SplitHint hint, RunOptions run_options, JobOptions job_options, const Split& split,
                const Reduce& reduce)
        : ResultState<T>(model.name(), model.signature(), std::move(shared), run_options,
                         job_options),
          input_(std::move(input)),
          reduce_(reduce),
          takes_placed_(model.takes_placed()) {
        if (!run_options.checkpoint.empty())
            open_checkpoint(hint, shared_given);
        pieces_.emplace(split(input_, hint));
        if (checkpoint_)
            resume();
        else if (auto size = pieces_->size())
            this->declare_total(*size);
    }

    bool next_subtask(std::string& out) override {
        if (!checkpoint_)
            return pieces_->next(out);
        if (skip_at_ != skips_.end())
            skip_folded();
        if (!pieces_->next(out))
            return false;
        ++made_;
        ++position_;
        return true;
    }

    void fold(std::span<const std::byte> bytes, std::uint64_t index) override {
        Partial partial = load_from<Partial>(bytes, [&] {
            return "the partial result of subtask " + std::to_string(index) + " of job '" +
                   this->job_name() + "'";
        });
        if (!checkpoint_) {
            accumulator_ = std::invoke(reduce_, std::move(accumulator_), std::move(partial));
            return;
        }
        checkpoint_->fold(split_index(index), [&] {
            accumulator_ = std::invoke(reduce_, std::move(accumulator_), std::move(partial));
        });
    }

    void finish() override {
        if (checkpoint_)
            checkpoint_->remove();
        this->publish(std::move(accumulator_));
    }

    void ended_unfinished() noexcept override {
        if (checkpoint_)
            checkpoint_->abandon();
    }

    void confirm_shared(const std::string& bytes) override {
        if (checkpoint_)
            checkpoint_->confirm(takes_placed_ ? "placed data" : "job-wide data",
                                 content_hash(bytes));
    }

private:
    /// Opens the checkpoint, refusing another run's; a resumed run splits with the hint
    /// the checkpoint's run had, so that its pieces are the same.
    void open_checkpoint(SplitHint& hint, bool shared_given) {
        if constexpr (!is_serializable_v<Input>) {
            throw JobDefinitionError("job '" + this->job_name() +
                                     "': RunOptions::checkpoint needs the input type " +
                                     type_name<Input>() +
                                     " to be serializable with cereal, so that the checkpoint "
                                     "can tell it from another input");
        } else if constexpr (!is_serializable_v<T>) {
            throw JobDefinitionError("job '" + this->job_name() +
                                     "': RunOptions::checkpoint needs the result type " +
                                     type_name<T>() +
                                     " to be serializable with cereal, so that the checkpoint "
                                     "can keep the result so far");
        } else {
            std::string input_bytes;
            save_to(input_bytes, input_);
            Checkpoint::Fields identity{
                {"format", "1"},
                {"job", this->job_name()},
                {"signature", this->signature()},
                {"result type", type_name<T>()},
                {"input type", type_name<Input>()},
                {"reduce order", this->job_options().order == ReduceOrder::subtask_order
                                     ? "subtask order"
                                     : "arrival order"},
                {"input", content_hash(input_bytes)}};
            if constexpr (std::is_same_v<Shared, NoShared>)
                identity.emplace_back("job-wide data", "none");
            else if (shared_given)
                identity.emplace_back("job-wide data", content_hash(this->shared()));
            const std::string hint_text =
                std::to_string(hint.workers) + " " + std::to_string(hint.subtasks);
            checkpoint_ =
                std::make_unique<Checkpoint>(this->run_options().checkpoint, identity,
                                             Checkpoint::Fields{{"split hint", hint_text}},
                                             this->run_options().checkpoint_interval);
            if (checkpoint_->resumed()) {
                std::istringstream kept(checkpoint_->kept("split hint"));
                if (!(kept >> hint.workers >> hint.subtasks))
                    throw Error("checkpoint '" + checkpoint_->path() +
                                "' is damaged: its split hint is not two numbers");
                accumulator_ =
                    load_from<T>(std::span(reinterpret_cast<const std::byte*>(
                                               checkpoint_->resumed_accumulator().data()),
                                           checkpoint_->resumed_accumulator().size()),
                                 "the result so far in checkpoint '" + checkpoint_->path() + "'");
            }
            checkpoint_->start([this](std::string& out) { save_to(out, accumulator_); });
        }
    }

    /// The subtasks folded before are passed over: those of the prefix now, the ranges
    /// above it as split reaches them.
    void resume() {
        const FoldedSet& before = checkpoint_->resumed_folded();
        skips_.assign(before.ranges().begin(), before.ranges().end());
        skip_at_ = skips_.begin();
        if (auto size = pieces_->size()) {
            const std::uint64_t end = skips_.empty() ? before.prefix() : skips_.back().second;
            if (end > *size)
                throw Error("checkpoint '" + checkpoint_->path() + "' has subtask " +
                            std::to_string(end - 1) + " folded, but split now makes " +
                            std::to_string(*size) +
                            ": split must make the same pieces of "
                            "the same input");
            this->declare_total(*size - before.count());
        }
        pieces_->skip(before.prefix());
        position_ = before.prefix();
        if (before.prefix() != 0)
            segments_.emplace_back(0, before.prefix());
    }

    /// Before the next piece: passes over a range folded before, if it begins here.
    void skip_folded() {
        if (skip_at_->first != position_)
            return;
        pieces_->skip(skip_at_->second - skip_at_->first);
        position_ = skip_at_->second;
        ++skip_at_;
        segments_.emplace_back(made_, position_);
    }

    /// The index split gave the piece that this run sent as `index` (pieces passed over
    /// are not sent, so the two differ once one was).
    std::uint64_t split_index(std::uint64_t index) const {
        auto after = std::upper_bound(
            segments_.begin(), segments_.end(), index,
            [](std::uint64_t sent, const std::pair<std::uint64_t, std::uint64_t>& segment) {
                return sent < segment.first;
            });
        if (after == segments_.begin())
            return index;
        const auto& segment = *std::prev(after);
        return segment.second + (index - segment.first);
    }

    Input input_;  // split's range may refer to it: it lives as long as the run
    std::optional<PieceSource<Pieces, Subtask>> pieces_;
    Reduce reduce_;      // a copy: the run may outlive a Job that is not at namespace scope
    bool takes_placed_;  // map takes placed data: a shared object is that, not job-wide data
    T accumulator_{};
    // ---- with a checkpoint ----
    std::vector<std::pair<std::uint64_t, std::uint64_t>> skips_;  // folded before, first -> end
    std::vector<std::pair<std::uint64_t, std::uint64_t>>::iterator skip_at_ = skips_.end();
    std::uint64_t position_ = 0;  // split's index of the next piece
    std::uint64_t made_ = 0;      // pieces sent: this run's index of the next one
    // (this run's index, split's index) where the two begin to differ by another amount
    std::vector<std::pair<std::uint64_t, std::uint64_t>> segments_;
    // Last: it stops its writer, which reads the accumulator, before the members go.
    std::unique_ptr<Checkpoint> checkpoint_;
};

/// Map's parameter `I`, or NoShared if it has no such parameter.
template <class Map, std::size_t I, bool = (I < callable_traits<Map>::arity)>
struct map_arg_or_none {
    using type = NoShared;
};
template <class Map, std::size_t I>
struct map_arg_or_none<Map, I, true> {
    using type = arg_t<Map, I>;
};

/// The types a job's functions name. Apart from JobModelImpl so that the compile-time checks
/// can name them without instantiating the model, whose members would then be compiled too.
/// map(subtask), map(subtask, shared) or map(subtask, placed, shared).
template <class Split, class Map>
struct JobTypes {
    using map_traits = callable_traits<Map>;
    static constexpr bool takes_placed = map_traits::arity == 3;
    using Input = arg_t<Split, 0>;
    using Subtask = arg_t<Map, 0>;
    using Partial = std::remove_cvref_t<typename map_traits::result>;
    using Placed =
        std::conditional_t<takes_placed, typename map_arg_or_none<Map, 1>::type, NoShared>;
    using Shared = typename map_arg_or_none<Map, takes_placed ? 2 : 1>::type;
    using MapPointer = typename map_traits::function_pointer;
};

template <class T, class Split, class Map, class Reduce>
class JobModelImpl final : public JobModelFor<T> {
    using split_traits = callable_traits<Split>;

public:
    using Input = typename JobTypes<Split, Map>::Input;
    using Subtask = typename JobTypes<Split, Map>::Subtask;
    using Partial = typename JobTypes<Split, Map>::Partial;
    using Placed = typename JobTypes<Split, Map>::Placed;
    using Shared = typename JobTypes<Split, Map>::Shared;
    using MapPointer = typename JobTypes<Split, Map>::MapPointer;
    static constexpr bool placed_too = JobTypes<Split, Map>::takes_placed;

    JobModelImpl(std::string name, Split split, MapPointer map, Reduce reduce, JobOptions options)
        : JobModelFor<T>(std::move(name), make_signature(options)),
          split_(std::move(split)),
          map_(map),
          reduce_(std::move(reduce)),
          options_(options) {}

    static std::string make_signature(const JobOptions& options) {
        auto describe = [](std::string name, std::size_t size) {
            return name + " (" + std::to_string(size) + " bytes)";
        };
        std::string signature = "subtask " + describe(type_name<Subtask>(), sizeof(Subtask)) +
                                ", partial " + describe(type_name<Partial>(), sizeof(Partial));
        if constexpr (placed_too) {
            signature += ", placed " + describe(type_name<Placed>(), sizeof(Placed));
        }
        if constexpr (!std::is_same_v<Shared, NoShared>) {
            signature += ", shared " + describe(type_name<Shared>(), sizeof(Shared));
        }
        signature += ", revision " + std::to_string(options.revision);
        return signature;
    }

    std::shared_ptr<ResultState<T>> start(const std::type_info& input_type, void* input,
                                          const std::type_info& placed_type,
                                          const std::type_info& shared_type, const void* shared,
                                          SplitHint hint, RunOptions options) const override {
        if (input_type != typeid(Input)) {
            throw JobDefinitionError("job '" + this->name() + "' takes an input of type " +
                                     type_name<Input>() + ", but was given a " +
                                     demangle(input_type.name()));
        }
        check_data(placed_type, shared_type);
        std::string shared_bytes;  // none when a shared object stands for the job-wide data
        if (shared_type == typeid(Shared))
            save_to(shared_bytes, *static_cast<const Shared*>(shared));
        return std::make_shared<RunStateFor<T, Input, Subtask, Partial, Shared, Split, Reduce>>(
            *this, std::move(*static_cast<Input*>(input)), std::move(shared_bytes),
            shared_type == typeid(Shared), hint, options, options_, split_, reduce_);
    }

    bool takes_placed() const noexcept override { return placed_too; }

    std::shared_ptr<const void> load_shared(std::span<const std::byte> bytes) const override {
        return std::make_shared<const Shared>(
            load_from<Shared>(bytes, "the job-wide data of job '" + this->name() + "'"));
    }

    std::shared_ptr<const void> load_object(std::span<const std::byte> bytes) const override {
        if constexpr (placed_too) {
            return std::make_shared<const Placed>(
                load_from<Placed>(bytes, "the placed data of job '" + this->name() + "'"));
        } else {
            return load_shared(bytes);
        }
    }

    void run_map(const void* placed, const void* shared, std::span<const std::byte> bytes,
                 std::uint64_t index, std::string& out) const override {
        const Subtask subtask = load_from<Subtask>(bytes, [&] {
            return "subtask " + std::to_string(index) + " of job '" + this->name() + "'";
        });
        if constexpr (placed_too) {
            save_to(out, map_(subtask, *static_cast<const Placed*>(placed),
                              *static_cast<const Shared*>(shared)));
        } else if constexpr (std::is_same_v<Shared, NoShared>) {
            (void)placed;
            (void)shared;
            save_to(out, map_(subtask));
        } else {
            (void)placed;
            save_to(out, map_(subtask, *static_cast<const Shared*>(shared)));
        }
    }

    std::string describe_partial(std::span<const std::byte> bytes) const override {
        std::string text =
            type_name<Partial>() + " of " + std::to_string(bytes.size()) + " bytes serialized";
        if constexpr (requires(std::ostream & out, const Partial& partial) { out << partial; }) {
            const Partial partial = load_from<Partial>(bytes, "the partial result");
            text += ": " + print_bounded(
                               [](std::ostream& out, const void* value) {
                                   out << *static_cast<const Partial*>(value);
                               },
                               &partial);
        }
        return text;
    }

private:
    /// Throws JobDefinitionError unless the run was given the data map takes: a shared
    /// object's (`placed_type`, NoShared for none) and its own job-wide data's.
    void check_data(const std::type_info& placed_type, const std::type_info& shared_type) const {
        const bool placed_given = placed_type != typeid(NoShared);
        const bool shared_given = shared_type != typeid(NoShared);
        auto given = [&] {
            auto one = [](const std::type_info& type) {
                return type == typeid(NoShared) ? std::string("none")
                                                : "a " + demangle(type.name());
            };
            return "placed data (share()): " + one(placed_type) +
                   "; job-wide data: " + one(shared_type);
        };
        if constexpr (placed_too) {
            if (placed_type != typeid(Placed) || shared_type != typeid(Shared)) {
                throw JobDefinitionError(
                    "job '" + this->name() + "' takes placed data of type " + type_name<Placed>() +
                    " (its map's second parameter, placed with share()) and "
                    "job-wide data of type " +
                    type_name<Shared>() +
                    " (its third): run it as run(job, input, share(placed), data); it was "
                    "given " +
                    given());
            }
        } else if constexpr (std::is_same_v<Shared, NoShared>) {
            if (placed_given || shared_given) {
                throw JobDefinitionError("job '" + this->name() +
                                         "' takes no job-wide data (its map has one parameter), "
                                         "but was given " +
                                         given());
            }
        } else if (placed_given && shared_given) {
            throw JobDefinitionError("job '" + this->name() +
                                     "' takes one piece of job-wide data, of type " +
                                     type_name<Shared>() +
                                     " (its map's second parameter), by value or placed with "
                                     "share(), but was given both (" +
                                     given() + "); a map that takes both has three parameters");
        } else if (placed_type != typeid(Shared) && shared_type != typeid(Shared)) {
            throw JobDefinitionError("job '" + this->name() + "' needs job-wide data of type " +
                                     type_name<Shared>() +
                                     " (its map's second parameter), but was given " + given());
        }
    }

    Split split_;
    MapPointer map_;
    Reduce reduce_;
    JobOptions options_;
};

/// The compile-time checks of a job definition, each with a message that says what to change.
/// Returns whether they all passed, so that Job instantiates nothing more when one failed and
/// the message is the only error shown.
template <class T, class Split, class Map, class Reduce>
constexpr bool check_job_definition() {
    static_assert(
        callable_traits<Map>::known,
        "dtask::Job: map must be a function or a lambda with one, non-template call operator "
        "(spell out its parameter type instead of `auto`)");
    static_assert(
        callable_traits<Split>::known,
        "dtask::Job: split must be a function or a lambda with one, non-template call operator "
        "(spell out its parameter types instead of `auto`)");
    using Model = JobTypes<Split, Map>;
    using Subtask = typename Model::Subtask;
    using Partial = typename Model::Partial;
    using Placed = typename Model::Placed;
    using Shared = typename Model::Shared;
    using Input = typename Model::Input;
    using SplitArgs = typename callable_traits<Split>::args;
    using SplitResult = std::remove_cvref_t<typename callable_traits<Split>::result>;

    constexpr bool map_captures_nothing = std::is_convertible_v<Map, typename Model::MapPointer>;
    static_assert(map_captures_nothing,
                  "dtask::Job: map must not capture anything (it runs in another process, where "
                  "the captured variables do not exist); pass what it needs as job-wide data: "
                  "map(const Subtask&, const Shared&)");
    constexpr bool map_takes_one_to_three =
        callable_traits<Map>::arity >= 1 && callable_traits<Map>::arity <= 3;
    static_assert(map_takes_one_to_three,
                  "dtask::Job: map takes (const Subtask&), (const Subtask&, const Shared&) or "
                  "(const Subtask&, const Placed&, const Shared&)");
    constexpr bool map_returns = !std::is_void_v<Partial>;
    static_assert(map_returns, "dtask::Job: map must return its partial result");
    constexpr bool split_takes_two = callable_traits<Split>::arity == 2;
    static_assert(split_takes_two, "dtask::Job: split takes (const Input&, dtask::SplitHint)");
    constexpr bool split_takes_hint =
        std::is_same_v<std::remove_cvref_t<std::tuple_element_t<1, SplitArgs>>, SplitHint>;
    static_assert(split_takes_hint, "dtask::Job: split's second parameter is a dtask::SplitHint");
    constexpr bool split_gives_subtasks = piece_source_of<SplitResult, Subtask>;
    static_assert(split_gives_subtasks,
                  "dtask::Job: split must return a range of the subtask type (map's first "
                  "parameter), or a callable returning std::optional<Subtask>");
    constexpr bool reduce_folds = std::is_invocable_r_v<T, const Reduce&, T, Partial>;
    static_assert(reduce_folds,
                  "dtask::Job<T>: reduce must be callable as reduce(T accumulator, Partial part) "
                  "-> T, where Partial is what map returns");
    constexpr bool result_starts_empty = std::is_default_constructible_v<T>;
    static_assert(result_starts_empty,
                  "dtask::Job<T>: the result starts as T{}, so T must be default-constructible");
    constexpr bool values_decode =
        std::is_default_constructible_v<Subtask> && std::is_default_constructible_v<Partial> &&
        std::is_default_constructible_v<Placed> && std::is_default_constructible_v<Shared>;
    static_assert(values_decode,
                  "dtask::Job: subtask, partial, placed and job-wide data types are decoded into "
                  "a default-constructed value, so they must be default-constructible");
    constexpr bool input_moves = std::is_move_constructible_v<Input>;
    static_assert(input_moves, "dtask::Job: the input type must be movable");
    static_assert(is_serializable_v<Subtask>,
                  "dtask::Job: the subtask type (map's first parameter) must be serializable "
                  "with cereal: give it a `template <class Archive> void serialize(Archive& a)` "
                  "member");
    static_assert(is_serializable_v<Partial>,
                  "dtask::Job: the partial type (what map returns) must be serializable with "
                  "cereal: give it a `template <class Archive> void serialize(Archive& a)` "
                  "member");
    static_assert(is_serializable_v<Placed>,
                  "dtask::Job: the placed data type (the second of map's three parameters) must "
                  "be serializable with cereal: give it a `template <class Archive> void "
                  "serialize(Archive& a)` member");
    static_assert(is_serializable_v<Shared>,
                  "dtask::Job: the job-wide data type (map's last parameter) must be "
                  "serializable with cereal: give it a `template <class Archive> void "
                  "serialize(Archive& a)` member");
    // The input and the result never leave the host (split and reduce run there): they need
    // no serialization.
    return map_captures_nothing && map_takes_one_to_three && map_returns && split_takes_two &&
           split_takes_hint && split_gives_subtasks && reduce_folds && result_starts_empty &&
           values_decode && input_moves && is_serializable_v<Subtask> &&
           is_serializable_v<Partial> && is_serializable_v<Placed> && is_serializable_v<Shared>;
}

}  // namespace dtask::detail
