#pragma once
// The one rule for integers in URLs, query strings, headers and the environment: decimal
// digits only (no sign, no spaces, no trailing junk), within [min, max].
#include <charconv>
#include <limits>
#include <optional>
#include <string_view>

namespace bidding {

template <class Int>
std::optional<Int> parse_integer(std::string_view text, Int min, Int max) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    Int value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
        return std::nullopt;  // out of range
    }
    return value;
}

// An id (strong_id) from its decimal text: `min` and above.
template <class Id>
std::optional<Id> parse_id(std::string_view text, typename Id::value_type min = 1) {
    using value_type = typename Id::value_type;
    const auto v = parse_integer<value_type>(text, min, std::numeric_limits<value_type>::max());
    return v ? std::optional<Id>(Id(*v)) : std::nullopt;
}

}  // namespace bidding
