#include "scanner.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>

namespace bench {
namespace {

struct Cursor {
    const char* p;
    const char* end;

    bool at_end() const { return p >= end; }
    char peek() const { return p < end ? *p : '\0'; }
    void skip_ws() {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
    }
    bool eat(char c) {
        skip_ws();
        if (p < end && *p == c) {
            ++p;
            return true;
        }
        return false;
    }
};

// At an opening quote: returns the contents (without quotes) and moves past the closing quote.
bool read_string(Cursor& c, std::string_view& out, bool& escaped) {
    if (c.p >= c.end || *c.p != '"') return false;
    const char* start = ++c.p;
    // Fast path: find the next quote; only if a backslash precedes it do we walk char by char.
    const void* q = std::memchr(start, '"', static_cast<size_t>(c.end - start));
    if (q == nullptr) return false;
    const char* quote = static_cast<const char*>(q);
    if (std::memchr(start, '\\', static_cast<size_t>(quote - start)) == nullptr) {
        out = std::string_view(start, static_cast<size_t>(quote - start));
        c.p = quote + 1;
        return true;
    }
    escaped = true;
    const char* s = start;
    while (s < c.end) {
        if (*s == '\\') {
            s += 2;  // the escaped character (\uXXXX: the hex digits are plain characters)
            continue;
        }
        if (*s == '"') {
            out = std::string_view(start, static_cast<size_t>(s - start));
            c.p = s + 1;
            return true;
        }
        ++s;
    }
    return false;
}

// A bare token (number, true, false, null): up to a delimiter.
bool read_token(Cursor& c, std::string_view& out) {
    const char* start = c.p;
    while (c.p < c.end) {
        char ch = *c.p;
        if (ch == ',' || ch == '}' || ch == ']' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') break;
        if (ch == '"' || ch == '{' || ch == '[' || ch == ':') return false;
        ++c.p;
    }
    out = std::string_view(start, static_cast<size_t>(c.p - start));
    return !out.empty();
}

// At '{' or '[': moves past the matching bracket; `out` is the whole text with brackets.
bool skip_composite(Cursor& c, std::string_view& out) {
    const char* start = c.p;
    char stack[kMaxDepth];
    int depth = 0;
    while (c.p < c.end) {
        char ch = *c.p;
        if (ch == '"') {
            std::string_view ignored;
            bool esc = false;
            if (!read_string(c, ignored, esc)) return false;
            continue;
        }
        if (ch == '{' || ch == '[') {
            if (depth == kMaxDepth) return false;
            stack[depth++] = ch == '{' ? '}' : ']';
        } else if (ch == '}' || ch == ']') {
            if (depth == 0 || stack[depth - 1] != ch) return false;
            if (--depth == 0) {
                ++c.p;
                out = std::string_view(start, static_cast<size_t>(c.p - start));
                return true;
            }
        }
        ++c.p;
    }
    return false;
}

enum class Kind { string, token, composite };

// Reads any value; `kind` tells which.
bool read_value(Cursor& c, std::string_view& out, Kind& kind, bool& escaped) {
    c.skip_ws();
    if (c.at_end()) return false;
    char ch = *c.p;
    if (ch == '"') {
        kind = Kind::string;
        return read_string(c, out, escaped);
    }
    if (ch == '{' || ch == '[') {
        kind = Kind::composite;
        return skip_composite(c, out);
    }
    kind = Kind::token;
    return read_token(c, out);
}

int64_t parse_uint(std::string_view t) {
    if (t.empty() || t.size() > 18) return -1;
    int64_t v = 0;
    for (char ch : t) {
        if (ch < '0' || ch > '9') return -1;
        v = v * 10 + (ch - '0');
    }
    return v;
}

// Iterates the members of the object at the cursor, calling f(key, value, kind, escaped) for each.
template <class F>
bool for_each_member(std::string_view text, F&& f) {
    Cursor c{text.data(), text.data() + text.size()};
    if (!c.eat('{')) return false;
    c.skip_ws();
    if (c.peek() == '}') {
        ++c.p;
    } else {
        for (;;) {
            c.skip_ws();
            std::string_view key, value;
            bool key_escaped = false, value_escaped = false;
            Kind kind{};
            if (!read_string(c, key, key_escaped)) return false;
            if (!c.eat(':')) return false;
            if (!read_value(c, value, kind, value_escaped)) return false;
            f(key, value, kind, value_escaped);
            if (c.eat(',')) continue;
            if (c.eat('}')) break;
            return false;
        }
    }
    c.skip_ws();
    return c.at_end();
}

}  // namespace

bool scan(std::string_view msg, Scan& out) {
    out = Scan{};
    return for_each_member(msg, [&out](std::string_view key, std::string_view value, Kind kind, bool esc) {
        auto keep_string = [&](std::string_view& field) {
            if (kind == Kind::string) {
                field = value;
                out.escaped = out.escaped || esc;
            } else {
                field = {};
            }
        };
        switch (key.size()) {
            case 3:
                if (key == "seq") {
                    out.seq = kind == Kind::token ? parse_uint(value) : -1;
                } else if (key == "ref") {
                    keep_string(out.ref);
                    out.has_ref = kind == Kind::string;
                } else if (key == "bid") {
                    out.bid = kind == Kind::composite && value.front() == '{' ? value : std::string_view{};
                }
                break;
            case 4:
                if (key == "type") keep_string(out.type);
                else if (key == "code") keep_string(out.code);
                break;
            case 5:
                if (key == "price") {  // a string's contents, or a bare number token
                    out.price = kind == Kind::composite ? std::string_view{} : value;
                    if (kind == Kind::string) out.escaped = out.escaped || esc;
                }
                break;
            case 6:
                if (key == "bidder") keep_string(out.bidder);
                break;
            case 13:
                if (key == "current_price") keep_string(out.current_price);
                break;
            default:
                break;
        }
    });
}

bool scan_bid_object(std::string_view obj, int64_t& last_seq, std::string_view& current_price) {
    last_seq = -1;
    current_price = {};
    return for_each_member(obj, [&](std::string_view key, std::string_view value, Kind kind, bool) {
        if (key == "last_seq" && kind == Kind::token) last_seq = parse_uint(value);
        else if (key == "current_price" && kind != Kind::composite) current_price = value;
    });
}

bool parse_cents(std::string_view t, int64_t& cents) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    bool negative = false;
    if (!t.empty() && (t.front() == '+' || t.front() == '-')) {
        negative = t.front() == '-';
        t.remove_prefix(1);
    }
    size_t dot = t.find('.');
    std::string_view whole = t.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : t.substr(dot + 1);
    if (whole.empty() && frac.empty()) return false;
    if (whole.size() > 15 || frac.size() > 2) return false;
    if (dot != std::string_view::npos && frac.empty()) return false;
    int64_t w = 0;
    for (char ch : whole) {
        if (ch < '0' || ch > '9') return false;
        w = w * 10 + (ch - '0');
    }
    int64_t f = 0;
    for (size_t i = 0; i < 2; ++i) {
        int d = 0;
        if (i < frac.size()) {
            char ch = frac[i];
            if (ch < '0' || ch > '9') return false;
            d = ch - '0';
        }
        f = f * 10 + d;
    }
    cents = w * 100 + f;
    if (negative) cents = -cents;
    return true;
}

int format_cents(int64_t cents, char* buf) {
    char* p = buf;
    uint64_t v;
    if (cents < 0) {
        *p++ = '-';
        v = static_cast<uint64_t>(-(cents + 1)) + 1;
    } else {
        v = static_cast<uint64_t>(cents);
    }
    auto r = std::to_chars(p, buf + 21, v / 100);
    p = r.ptr;
    *p++ = '.';
    *p++ = static_cast<char>('0' + (v % 100) / 10);
    *p++ = static_cast<char>('0' + v % 10);
    return static_cast<int>(p - buf);
}

std::string format_cents(int64_t cents) {
    char buf[32];
    return std::string(buf, static_cast<size_t>(format_cents(cents, buf)));
}

// ------------------------------------------------------------------------------------------ self-test

int scanner_self_test() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %s\n", what);
        }
    };

    {
        Scan s;
        bool ok = scan(R"({"type":"new_bid","bid_id":1,"seq":43,"bidder":"bk","price":"123.67","added_at":"2026-11-25T14:00:01.456Z"})", s);
        check(ok, "new_bid scans");
        check(s.type == "new_bid", "new_bid type");
        check(s.seq == 43, "new_bid seq");
        check(s.price == "123.67", "new_bid price");
        check(s.bidder == "bk", "new_bid bidder");
        check(!s.has_ref && s.ref.empty(), "new_bid has no ref");
    }
    {
        Scan s;
        check(scan(R"({"type":"bid_accepted","seq":43,"price":"123.67","ref":"my-ref-1"})", s), "bid_accepted scans");
        check(s.type == "bid_accepted" && s.seq == 43 && s.ref == "my-ref-1" && s.has_ref, "bid_accepted fields");
    }
    {
        Scan s;
        check(scan(R"({"type":"error","code":"price_too_low","message":"Bid must be higher than 123.66","ref":null,"current_price":"123.66"})", s),
              "error scans");
        check(s.code == "price_too_low" && s.current_price == "123.66" && !s.has_ref && s.ref.empty(), "error fields");
    }
    {
        Scan s;
        const char* msg = R"({"type":"initial_state",
 "bid":{"id":1,"name":"Vintage \"Camera\" {x}","status":"open","initial_price":"100.00",
        "current_price":"123.66","last_seq":42},
 "data":[{"seq":42,"bidder":"bk","price":"123.66","added_at":"2026-11-25T14:00:00.123Z"},
         {"seq":40,"bidder":"ann","price":"110.00","added_at":"2026-11-25T13:59:58.001Z"}]})";
        check(scan(msg, s), "initial_state scans");
        check(s.type == "initial_state", "initial_state type");
        check(s.seq == -1, "initial_state: the seq of data entries is not the top-level seq");
        check(s.price.empty(), "initial_state: no top-level price");
        int64_t last = 0;
        std::string_view cur;
        check(!s.bid.empty() && scan_bid_object(s.bid, last, cur), "bid object scans");
        check(last == 42 && cur == "123.66", "bid object fields");
    }
    {
        Scan s;
        check(scan(R"({"type":"initial_state","data":[]})", s) && s.bid.empty() && s.type == "initial_state",
              "yardstick initial_state");
        check(scan(R"({"type":"new_bid","price":"1.05","bidder":"b0"})", s) && s.seq == -1 && s.price == "1.05",
              "yardstick new_bid (no seq)");
        check(scan(R"({"type":"ping"})", s) && s.type == "ping", "ping");
        check(scan(R"(  { }  )", s) && s.type.empty(), "empty object");
        check(scan(R"({"type":"x","seq":12.5})", s) && s.seq == -1, "non-integer seq is absent");
        check(scan(R"({"type":"x","seq":-3})", s) && s.seq == -1, "negative seq is absent");
        check(scan(R"({"type":"x","ref":"a\"b"})", s) && s.ref == R"(a\"b)" && s.escaped, "escaped string kept raw");
        check(scan(R"({"type":"x","price":12.34})", s) && s.price == "12.34", "numeric price token");
        check(scan(R"({"seq":1,"seq":2})", s) && s.seq == 2, "duplicate key: last wins");
    }
    // Malformed input must be refused, never read out of bounds.
    const char* bad[] = {
        "", "{", "}", "[]", "nope", R"({"type")", R"({"type":)", R"({"type":"new_bid)", R"({"type":"a" "b":1})",
        R"({"type":"a",})", R"({"a":{"b":[1,2}]})", R"({"a":[)", R"({"a":"\)", R"({"type":"a"} x)", R"({"a":1:2})",
        R"({a:1})",
    };
    for (const char* b : bad) {
        Scan s;
        if (scan(b, s)) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: accepted malformed %s\n", b);
        }
    }
    {
        // Every prefix of a valid message is either refused or (the full message) accepted.
        std::string full = R"({"type":"new_bid","bid_id":1,"seq":43,"bidder":"bk","price":"123.67","x":[{"y":"}"}]})";
        for (size_t n = 0; n < full.size(); ++n) {
            Scan s;
            std::string prefix = full.substr(0, n);  // own allocation: out-of-bounds reads show under ASan
            if (scan(prefix, s)) {
                ++failures;
                std::fprintf(stderr, "self-test FAILED: accepted the prefix %s\n", prefix.c_str());
            }
        }
        Scan s;
        check(scan(full, s) && s.seq == 43, "full message after prefixes");
    }
    {
        std::string deep(kMaxDepth + 1, '[');
        Scan s;
        check(!scan("{\"a\":" + deep + "}", s), "too deep is refused");
    }
    {
        int64_t c = 0;
        check(parse_cents("123.45", c) && c == 12345, "cents 123.45");
        check(parse_cents("123.4", c) && c == 12340, "cents 123.4");
        check(parse_cents("7", c) && c == 700, "cents 7");
        check(parse_cents(" +0.01 ", c) && c == 1, "cents +0.01");
        check(parse_cents(".5", c) && c == 50, "cents .5");
        check(!parse_cents("1.234", c), "three decimals refused");
        check(!parse_cents("1.", c), "dangling dot refused");
        check(!parse_cents("abc", c), "abc refused");
        check(!parse_cents("", c), "empty refused");
        check(!parse_cents("1e5", c), "exponent refused");
        check(format_cents(12345) == "123.45", "format 123.45");
        check(format_cents(1) == "0.01", "format 0.01");
        check(format_cents(100) == "1.00", "format 1.00");
        check(format_cents(-250) == "-2.50", "format -2.50");
        check(format_cents(9999999999) == "99999999.99", "format max price");
    }
    return failures;
}

}  // namespace bench
