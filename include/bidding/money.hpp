#pragma once
// Money is an integer count of cents. Prices are parsed from their decimal text,
// never through a binary double, and always printed with exactly two decimals.
#include <compare>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

namespace bidding {

// A whole number of cents, after userver's decimal64: it never converts to or from a double, nor
// silently to a plain integer (count() says so), and it has no to_json: on the wire a price is
// text with two decimals (format_cents).
class cents {
public:
    constexpr cents() = default;
    constexpr explicit cents(std::int64_t count) : count_(count) {}
    // Never from a binary double, not even explicitly: parse_price reads decimal text.
    template <class F>
        requires std::is_floating_point_v<F>
    cents(F) = delete;

    constexpr std::int64_t count() const { return count_; }

    friend constexpr auto operator<=>(cents, cents) = default;
    friend constexpr cents operator+(cents a, cents b) { return cents(a.count_ + b.count_); }
    friend constexpr cents operator-(cents a, cents b) { return cents(a.count_ - b.count_); }
    friend std::ostream& operator<<(std::ostream& os, cents c) { return os << c.count_ << " cents"; }

private:
    std::int64_t count_{0};
};

// numeric(10,2) holds at most 99999999.99.
inline constexpr cents max_price_cents{9'999'999'999};

enum class price_error {
    not_a_number,  // empty, letters, NaN, Infinity, malformed exponent, ...
    not_positive,  // zero or negative after rounding to cents
    too_large,     // above 99999999.99 after rounding
};

struct price_parse_result {
    std::optional<cents> value;  // set when the text is a valid price
    price_error error{price_error::not_a_number};  // meaningful only when !value
};

// Parses decimal text such as "112233.445", "1e2", "+5", " 7.5 " (surrounding ASCII
// whitespace allowed) and rounds half up to whole cents: "2.675" -> 268.
// Accepts what a JSON number or a human-typed numeric string looks like; any
// number of digits and any exponent, without overflow.
price_parse_result parse_price(std::string_view text);

// 12366 -> "123.66", 5 -> "0.05", -5 -> "-0.05".
std::string format_cents(cents value);

// Human text for a price_error, used in the protocol's error message.
std::string_view describe(price_error error);

}  // namespace bidding
