// parse_price against a second, independent reading of the same rule (integer arithmetic on
// the whole digit string, where it fits in 128 bits), and format_cents back: a price printed
// and parsed again is the same number of cents.
#include <fuzz_targets.hpp>

#include <bidding/money.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bidding::fuzz {

namespace {

__extension__ typedef unsigned __int128 u128;

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

// The rule of include/bidding/money.hpp, written differently: nullopt when this reading cannot
// decide (more than 36 significant digits), else the same result parse_price must give.
std::optional<price_parse_result> reference_price(std::string_view s) {
    const auto fail = [](price_error e) { return std::optional<price_parse_result>(price_parse_result{std::nullopt, e}); };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    std::size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    std::string significant;  // the digits without the point, leading zeros dropped
    std::int64_t fraction_digits = 0;
    bool any_digit = false;
    for (; i < s.size() && digit(s[i]); ++i) {
        any_digit = true;
        if (!significant.empty() || s[i] != '0') significant += s[i];
    }
    if (i < s.size() && s[i] == '.') {
        for (++i; i < s.size() && digit(s[i]); ++i) {
            any_digit = true;
            ++fraction_digits;
            if (!significant.empty() || s[i] != '0') significant += s[i];
        }
    }
    if (!any_digit) return fail(price_error::not_a_number);
    std::int64_t exponent = 0;
    bool huge_exponent = false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        bool exponent_negative = false;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) exponent_negative = s[i++] == '-';
        const std::size_t begin = i;
        for (; i < s.size() && digit(s[i]); ++i) {
            if (exponent > 100'000'000'000LL) huge_exponent = true;
            else exponent = exponent * 10 + (s[i] - '0');
        }
        if (i == begin) return fail(price_error::not_a_number);
        if (exponent_negative) exponent = -exponent;
    }
    if (i != s.size()) return fail(price_error::not_a_number);
    if (significant.empty() || negative) return fail(price_error::not_positive);
    if (huge_exponent) return fail(exponent > 0 ? price_error::too_large : price_error::not_positive);
    if (significant.size() > 36) return std::nullopt;

    u128 d = 0;
    for (const char c : significant) d = d * 10 + static_cast<unsigned>(c - '0');
    const std::int64_t n = static_cast<std::int64_t>(significant.size());
    const std::int64_t scale = exponent - fraction_digits + 2;  // the value is d * 10^scale cents
    if (n + scale > 10) return fail(price_error::too_large);    // at least 10^10 cents
    u128 value = 0;
    if (scale >= 0) {
        value = d;
        for (std::int64_t k = 0; k < scale; ++k) value *= 10;
    } else if (-scale <= 38) {
        u128 divisor = 1;
        for (std::int64_t k = 0; k < -scale; ++k) divisor *= 10;
        value = d / divisor + (2 * (d % divisor) >= divisor ? 1 : 0);  // half up
    }  // else: below half a cent (d < 10^36)
    if (value == 0) return fail(price_error::not_positive);
    if (value > static_cast<u128>(max_price_cents.count())) return fail(price_error::too_large);
    return price_parse_result{cents(static_cast<std::int64_t>(value)), price_error::not_a_number};
}

bool same(const price_parse_result& a, const price_parse_result& b) {
    return a.value == b.value && (a.value || a.error == b.error);
}

}  // namespace

void price_one(std::string_view input) {
    const auto parsed = parse_price(input);
    if (const auto expected = reference_price(input)) {
        fuzz_check(same(parsed, *expected), "parse_price disagrees with the reference reading", input);
    }
    // Surrounding ASCII whitespace never matters.
    fuzz_check(same(parse_price(" \t" + std::string(input) + "\r\n"), parsed), "whitespace changed the price", input);
    if (!parsed.value) {
        return;
    }
    const auto value = *parsed.value;
    fuzz_check(value > cents(0) && value <= max_price_cents, "a price out of range was accepted", input);
    const std::string printed = format_cents(value);
    const auto dot = printed.find('.');
    fuzz_check(dot != std::string::npos && dot >= 1 && printed.size() == dot + 3, "not two decimals", printed);
    const auto again = parse_price(printed);
    fuzz_check(again.value == value, "a printed price parses to other cents", printed);
}

}  // namespace bidding::fuzz
