#pragma once
// Small ASCII text helpers shared by the parsers (configuration, prices, client messages, hosts).
// ASCII only on purpose: locale-free, so "I" lowercases to "i" whatever the process's locale.
#include <string>
#include <string_view>

namespace bidding {

constexpr bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
// Case-insensitive ASCII equality ("Bearer" == "bearer").
bool iequals(std::string_view a, std::string_view b);

}  // namespace bidding
