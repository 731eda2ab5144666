#pragma once
/// \file The parameter and result types of split, map and reduce, read off the callables so
/// that a job is declared without spelling its types twice.

#include <cstddef>
#include <tuple>
#include <type_traits>

namespace dtask::detail {

template <class F, class = void>
struct callable_traits {
    static constexpr bool known = false;
};

template <class R, class... Args>
struct callable_traits<R (*)(Args...), void> {
    static constexpr bool known = true;
    using result = R;
    using args = std::tuple<Args...>;
    using function_pointer = R (*)(Args...);
    static constexpr std::size_t arity = sizeof...(Args);
};

template <class R, class... Args>
struct callable_traits<R (*)(Args...) noexcept, void> : callable_traits<R (*)(Args...)> {};
template <class R, class... Args>
struct callable_traits<R(Args...), void> : callable_traits<R (*)(Args...)> {};

template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) const, void> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) const noexcept, void> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...), void> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) noexcept, void> : callable_traits<R (*)(Args...)> {};

// Lambdas and function objects with one, non-template call operator.
template <class F>
struct callable_traits<F, std::void_t<decltype(&F::operator())>>
    : callable_traits<decltype(&F::operator())> {};

template <class F, std::size_t I>
using arg_t = std::remove_cvref_t<std::tuple_element_t<I, typename callable_traits<F>::args>>;

}  // namespace dtask::detail
