#include <bidding/money.hpp>
#include <bidding/text.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bidding {

namespace {

// Far beyond any exponent that can matter, yet small enough that adding a digit count
// (bounded by the text size) can never overflow an int64.
constexpr std::int64_t exponent_cap = 1'000'000'000'000'000;  // 1e15

price_parse_result failure(price_error e) { return price_parse_result{std::nullopt, e}; }

}  // namespace

price_parse_result parse_price(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t i = 0;

    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        ++i;
    }

    const std::size_t int_begin = i;
    while (i < s.size() && is_ascii_digit(s[i])) ++i;
    const std::string_view int_digits = s.substr(int_begin, i - int_begin);

    std::string_view frac_digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const std::size_t frac_begin = i;
        while (i < s.size() && is_ascii_digit(s[i])) ++i;
        frac_digits = s.substr(frac_begin, i - frac_begin);
    }
    if (int_digits.empty() && frac_digits.empty()) return failure(price_error::not_a_number);

    std::int64_t exponent = 0;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        bool exp_negative = false;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
            exp_negative = s[i] == '-';
            ++i;
        }
        const std::size_t exp_begin = i;
        while (i < s.size() && is_ascii_digit(s[i])) {
            // Saturate: past the cap the result is 0 or too large either way.
            if (exponent < exponent_cap) exponent = exponent * 10 + (s[i] - '0');
            ++i;
        }
        if (i == exp_begin) return failure(price_error::not_a_number);
        if (exp_negative) exponent = -exponent;
    }
    if (i != s.size()) return failure(price_error::not_a_number);

    // The number is D * 10^scale cents, where D is the digit string without the point.
    // Leading zeros of D carry no value; drop them (they may be in either part).
    std::string_view lead = int_digits;
    std::string_view rest = frac_digits;
    while (!lead.empty() && lead.front() == '0') lead.remove_prefix(1);
    if (lead.empty()) {
        while (!rest.empty() && rest.front() == '0') rest.remove_prefix(1);
    }
    // Digits of D, in order: lead then rest (rest is all of frac_digits when lead is non-empty).
    const auto digit_at = [&](std::int64_t k) -> int {
        const auto uk = static_cast<std::size_t>(k);
        return uk < lead.size() ? lead[uk] - '0' : rest[uk - lead.size()] - '0';
    };
    const auto n = static_cast<std::int64_t>(lead.size() + rest.size());
    // After stripping leading zeros D starts with a non-zero digit, so empty means zero.
    if (n == 0) return failure(price_error::not_positive);  // "-0" included
    if (negative) return failure(price_error::not_positive);

    const std::int64_t scale = exponent - static_cast<std::int64_t>(frac_digits.size()) + 2;
    // Number of digits that land left of the cents point.
    const std::int64_t kept = n + scale;
    constexpr std::int64_t max_digits = 10;  // max_price_cents has 10 digits
    if (kept > max_digits) return failure(price_error::too_large);

    std::int64_t value = 0;
    for (std::int64_t k = 0; k < kept && k < n; ++k) value = value * 10 + digit_at(k);
    for (std::int64_t k = n; k < kept; ++k) value *= 10;  // trailing zeros from a positive scale
    // Round half up: only the first dropped digit decides.
    if (kept >= 0 && kept < n && digit_at(kept) >= 5) ++value;

    if (value == 0) return failure(price_error::not_positive);
    if (cents(value) > max_price_cents) return failure(price_error::too_large);
    return price_parse_result{cents(value), price_error::not_a_number};
}

std::string format_cents(cents price) {
    // Work on the unsigned magnitude so that INT64_MIN cannot overflow.
    const std::int64_t value = price.count();
    const bool negative = value < 0;
    const std::uint64_t magnitude =
        negative ? std::uint64_t{0} - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    const std::uint64_t fraction = magnitude % 100;
    std::string out = negative ? "-" : "";
    out += std::to_string(magnitude / 100);
    out += '.';
    out += static_cast<char>('0' + fraction / 10);
    out += static_cast<char>('0' + fraction % 10);
    return out;
}

std::string_view describe(price_error error) {
    switch (error) {
        case price_error::not_a_number:
            return "price must be a decimal number, e.g. 112233.44";
        case price_error::not_positive:
            return "price must be greater than 0.00";
        case price_error::too_large:
            return "price must be at most 99999999.99";
    }
    return "price is invalid";
}

}  // namespace bidding
