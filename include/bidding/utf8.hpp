#pragma once
// Strict UTF-8 (RFC 3629): what names, refs, text frames and close reasons must be.
#include <cstddef>
#include <optional>
#include <string_view>

namespace bidding {

// Decodes the code point at s[i], advancing i; nullopt for anything that is not strict
// UTF-8 (overlong forms, surrogates, values above U+10FFFF, truncated sequences).
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i);

bool valid_utf8(std::string_view s);

// Code points in valid UTF-8.
std::size_t code_point_count(std::string_view s);

// The first `max` code points of valid UTF-8, so an echoed value never splits a character.
std::string_view first_code_points(std::string_view s, std::size_t max);

}  // namespace bidding
