// The timed auctions' readers: parse_timestamp (a time read is printed and read back the same,
// and agrees with a second reading of its fields), parse_duration (against a reference), and
// the API body's timed fields (what is accepted is consistent: one end at most, both soft-close
// numbers or neither, and only with an end).
#include <fuzz_targets.hpp>

#include <bidding/api_body.hpp>
#include <bidding/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace bidding::fuzz {

namespace {

// parse_duration's rule, written differently: groups of digits each followed by a unit of d, h,
// m, s in that order (each at most once), or digits alone; positive; at most 100 × 366 days.
// A group of digits as a number (leading zeros count for nothing), nullopt past 12 digits.
std::optional<std::int64_t> number(std::string_view digits) {
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    if (digits.size() > 12) return std::nullopt;
    return std::stoll(std::string(digits));
}

std::optional<std::int64_t> reference_duration(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.find_first_not_of("0123456789") == std::string_view::npos) {
        const auto n = number(s);
        return n && *n > 0 && *n <= 100LL * 366 * 86'400 ? n : std::nullopt;
    }
    const std::string units = "dhms";
    const std::int64_t scale[] = {86'400, 3'600, 60, 1};
    std::size_t next_unit = 0;
    std::int64_t total = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i == s.size()) return std::nullopt;
        const auto n = number(s.substr(start, i - start));
        const auto u = units.find(s[i], next_unit);
        if (!n || u == std::string::npos) return std::nullopt;
        total += *n * scale[u];
        if (total > 100LL * 366 * 86'400) return std::nullopt;
        next_unit = u + 1;
        ++i;
    }
    return total > 0 ? std::optional<std::int64_t>(total) : std::nullopt;
}

void check_timestamp(std::string_view input) {
    const auto t = parse_timestamp(input);
    if (!t) return;
    const auto text = format_timestamp(*t);
    fuzz_check(text.size() == 24 && text.back() == 'Z', "a formatted time is not YYYY-MM-DDTHH:MM:SS.mmmZ", text);
    fuzz_check(parse_timestamp(text) == t, "a formatted time does not read back the same", text);
    // Without an offset, the fields are the input's own (to the millisecond).
    const bool utc = input.size() >= 20 && (input.back() == 'Z' || input.back() == 'z');
    if (utc) {
        fuzz_check(text.substr(0, 10) == input.substr(0, 10) && text.substr(11, 8) == input.substr(11, 8),
                   "a UTC time changed its date or time of day", std::string(input) + " -> " + text);
    }
}

void check_body(std::string_view input) {
    const auto parsed = parse_new_auction(input);
    const auto* a = std::get_if<new_auction>(&parsed);
    if (a == nullptr) {
        const auto& e = std::get<body_error>(parsed);
        fuzz_check(!e.code.empty() && !e.message.empty(), "a refusal without a code or a message", input);
        return;
    }
    fuzz_check(!(a->ends_at && a->duration), "both ends_at and duration accepted", input);
    fuzz_check(a->extend_window.has_value() == a->extend_by.has_value(), "half a soft close accepted", input);
    fuzz_check(!a->extend_window || a->ends_at || a->duration, "a soft close without an end accepted", input);
    if (a->duration) {
        fuzz_check(*a->duration > std::chrono::seconds{0} && *a->duration <= max_auction_duration,
                   "a duration out of range accepted", input);
    }
    for (const auto& s : {a->extend_window, a->extend_by}) {
        fuzz_check(!s || (*s > std::chrono::seconds{0} && *s <= max_extension), "an extension out of range accepted",
                   input);
    }
    fuzz_check(a->min_increment > cents{0}, "an increment of zero or less accepted", input);
}

}  // namespace

void timed_auction_one(std::string_view input) {
    check_timestamp(input);
    const auto d = parse_duration(input);
    const auto expected = reference_duration(input);
    fuzz_check(d.has_value() == expected.has_value() && (!d || d->count() == *expected),
               "parse_duration disagrees with the reference", input);
    check_body(input);
}

}  // namespace bidding::fuzz
