#pragma once
// A small, bounds-checked scanner for the JSON objects the servers send, used on the hot path
// instead of a JSON DOM. It walks the top-level object once, key by key, and keeps views of the
// few values bidding-bench needs; every other value (nested objects and arrays included) is
// skipped with bracket matching that respects strings and escapes. It never reads past the end
// of the input and never allocates.
//
// What it accepts: one JSON object, optionally surrounded by whitespace, whose values are
// strings, numbers, true/false/null, objects or arrays (nesting at most kMaxDepth). It does not
// validate number syntax beyond what it extracts, nor decode string escapes: a string value is
// returned raw (without its quotes) and `escaped` tells whether it contained a backslash.
// Duplicate keys: the last one wins. Anything else (unterminated string, missing ':' or ',',
// trailing garbage) makes scan() return false.

#include <cstdint>
#include <string>
#include <string_view>

namespace bench {

constexpr int kMaxDepth = 32;

struct Scan {
    std::string_view type;           // "type" (string contents)
    std::string_view price;          // "price" (string contents, or a bare number token)
    std::string_view ref;            // "ref" (string contents); empty when absent or null
    std::string_view code;           // "code" (string contents)
    std::string_view current_price;  // top-level "current_price" (an error's)
    std::string_view bidder;         // "bidder"
    std::string_view bid;            // raw text of a top-level "bid" object (initial_state), with braces
    int64_t seq = -1;                // "seq" as a non-negative integer; -1 when absent or not an integer
    bool has_ref = false;            // "ref" present and a string
    bool escaped = false;            // one of the kept strings contained a backslash escape
};

// Scans one message. Returns false when it is not a well-formed object as described above; `out`
// is reset first and may be partly filled on failure.
bool scan(std::string_view msg, Scan& out);

// The fields of initial_state's "bid" object: its "last_seq" (-1 when absent) and
// "current_price" (empty when absent). Returns false when `obj` is not a well-formed object.
bool scan_bid_object(std::string_view obj, int64_t& last_seq, std::string_view& current_price);

// "123.45", "123.4", "123", "+1.00", " 7.5 " -> cents. At most two decimals (more is rejected:
// the servers always send two), at most 15 integer digits. False when it is not such a number.
bool parse_cents(std::string_view text, int64_t& cents);

// cents -> "d.dd" (negative values get a leading '-').
std::string format_cents(int64_t cents);
// Writes "d.dd" into buf (at least 24 bytes); returns the length.
int format_cents(int64_t cents, char* buf);

// Unit checks of the scanner and of the price helpers; prints failures to stderr and returns
// how many checks failed.
int scanner_self_test();

}  // namespace bench
