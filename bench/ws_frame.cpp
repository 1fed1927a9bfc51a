#include "ws_frame.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <vector>

namespace bench::ws {

void append_client_frame(std::string& out, uint8_t opcode, std::string_view payload, uint32_t key) {
    uint8_t h[14];
    size_t n = 0;
    size_t len = payload.size();
    h[n++] = static_cast<uint8_t>(0x80 | opcode);
    if (len < 126) {
        h[n++] = static_cast<uint8_t>(0x80 | len);
    } else if (len <= 0xffff) {
        h[n++] = 0x80 | 126;
        h[n++] = static_cast<uint8_t>(len >> 8);
        h[n++] = static_cast<uint8_t>(len);
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; --i) h[n++] = static_cast<uint8_t>(static_cast<uint64_t>(len) >> (8 * i));
    }
    const uint8_t k[4] = {static_cast<uint8_t>(key >> 24), static_cast<uint8_t>(key >> 16),
                          static_cast<uint8_t>(key >> 8), static_cast<uint8_t>(key)};
    std::memcpy(h + n, k, 4);
    n += 4;
    size_t start = out.size();
    out.append(reinterpret_cast<const char*>(h), n);
    out.append(payload);
    auto* p = reinterpret_cast<uint8_t*>(out.data() + start + n);
    for (size_t i = 0; i < len; ++i) p[i] ^= k[i & 3];
}

std::string close_payload(int code, std::string_view reason) {
    std::string p;
    p += static_cast<char>((code >> 8) & 0xff);
    p += static_cast<char>(code & 0xff);
    p += reason.substr(0, 123);
    return p;
}

namespace {

uint32_t rol(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }

std::array<uint8_t, 20> sha1(std::string_view data) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::string m(data);
    m += static_cast<char>(0x80);
    while (m.size() % 64 != 56) m += '\0';
    uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
    for (int i = 7; i >= 0; --i) m += static_cast<char>((bits >> (8 * i)) & 0xff);
    for (size_t block = 0; block < m.size(); block += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; ++i) {
            const auto* p = reinterpret_cast<const uint8_t*>(m.data() + block + 4 * static_cast<size_t>(i));
            w[i] = (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
                   (static_cast<uint32_t>(p[2]) << 8) | p[3];
        }
        for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    std::array<uint8_t, 20> out{};
    for (int i = 0; i < 20; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(h[i / 4] >> (24 - 8 * (i % 4)));
    return out;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Whether the comma-separated list `value` has `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

std::string base64(const uint8_t* data, size_t n) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = static_cast<uint32_t>(data[i]) << 16;
        if (i + 1 < n) v |= static_cast<uint32_t>(data[i + 1]) << 8;
        if (i + 2 < n) v |= data[i + 2];
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out += i + 2 < n ? abc[v & 63] : '=';
    }
    return out;
}

std::string make_key(uint64_t a, uint64_t b) {
    uint8_t raw[16];
    for (int i = 0; i < 8; ++i) {
        raw[i] = static_cast<uint8_t>(a >> (8 * i));
        raw[8 + i] = static_cast<uint8_t>(b >> (8 * i));
    }
    return base64(raw, sizeof raw);
}

std::string accept_key(std::string_view key) {
    std::string s(key);
    s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    auto d = sha1(s);
    return base64(d.data(), d.size());
}

std::string upgrade_request(std::string_view target, std::string_view host, std::string_view key) {
    std::string r;
    r.reserve(200 + target.size() + host.size());
    r += "GET ";
    r += target;
    r += " HTTP/1.1\r\nHost: ";
    r += host;
    r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    r += key;
    r += "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: bidding-bench\r\n\r\n";
    return r;
}

std::string check_upgrade_response(std::string_view head, std::string_view expected_accept) {
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return "bad HTTP response";
    std::string_view line = head.substr(0, eol);
    size_t sp = line.find(' ');
    if (line.substr(0, 5) != "HTTP/" || sp == std::string_view::npos || line.size() < sp + 4) return "bad HTTP response";
    int status = 0;
    for (size_t i = sp + 1; i < sp + 4; ++i) {
        if (line[i] < '0' || line[i] > '9') return "bad HTTP response";
        status = status * 10 + (line[i] - '0');
    }
    if (line.size() > sp + 4 && line[sp + 4] != ' ') return "bad HTTP response";
    if (status != 101) return "HTTP " + std::to_string(status);
    bool upgrade = false, connection = false, accept = false;
    size_t pos = eol + 2;
    while (pos < head.size()) {
        size_t end = head.find("\r\n", pos);
        if (end == std::string_view::npos) end = head.size();
        std::string_view h = head.substr(pos, end - pos);
        pos = end + 2;
        if (h.empty()) break;
        size_t colon = h.find(':');
        if (colon == std::string_view::npos) return "bad HTTP response header";
        std::string_view name = trim(h.substr(0, colon)), value = trim(h.substr(colon + 1));
        if (iequals(name, "upgrade")) upgrade = iequals(value, "websocket");
        else if (iequals(name, "connection")) connection = has_token(value, "upgrade");
        else if (iequals(name, "sec-websocket-accept")) accept = value == expected_accept;
    }
    if (!upgrade) return "101 response without Upgrade: websocket";
    if (!connection) return "101 response without Connection: upgrade";
    if (!accept) return "101 response with a wrong or missing Sec-WebSocket-Accept";
    return {};
}

}  // namespace bench::ws

namespace bench {

namespace {

using ws::Reader;

// An unmasked frame as a server sends it (or any header the tests need).
std::string server_frame(bool fin, uint8_t opcode, std::string_view payload, uint8_t rsv = 0) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    size_t len = payload.size();
    if (len < 126) {
        f += static_cast<char>(len);
    } else if (len <= 0xffff) {
        f += static_cast<char>(126);
        f += static_cast<char>(len >> 8);
        f += static_cast<char>(len & 0xff);
    } else {
        f += static_cast<char>(127);
        for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<uint64_t>(len) >> (8 * i)) & 0xff);
    }
    f += payload;
    return f;
}

uint64_t fnv(std::string_view s) {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Records every event as text; long payloads by size and hash.
struct Recorder {
    std::vector<std::string> events;
    static std::string show(std::string_view p) {
        if (p.size() <= 40) return std::string(p);
        return "#" + std::to_string(p.size()) + ":" + std::to_string(fnv(p));
    }
    bool message(bool text, std::string_view p) {
        events.push_back(std::string(text ? "text " : "binary ") + show(p));
        return true;
    }
    bool control(uint8_t op, std::string_view p) {
        if (op == ws::op_close) {
            int code = p.size() >= 2 ? (static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]) : ws::close_no_status;
            events.push_back("close " + std::to_string(code) + " " + std::string(p.size() >= 2 ? p.substr(2) : ""));
        } else {
            events.push_back(std::string(op == ws::op_ping ? "ping " : "pong ") + show(p));
        }
        return true;
    }
};

// Feeds `s` in the pieces cut at `cuts` (ascending offsets); returns the events, or "error: ..."
// as the last event.
std::vector<std::string> feed_pieces(const std::string& s, const std::vector<size_t>& cuts, size_t* left = nullptr,
                                     uint64_t max = ws::kDefaultMaxMessage) {
    Reader r(max);
    Recorder rec;
    size_t from = 0;
    std::vector<size_t> all = cuts;
    all.push_back(s.size());
    for (size_t to : all) {
        Reader::Result res = r.feed(s.data() + from, to - from, rec);
        if (res == Reader::Result::error) {
            rec.events.push_back("error " + std::to_string(r.error_close_code()) + ": " + r.error());
            break;
        }
        from = to;
    }
    if (left) *left = r.buffered();
    return rec.events;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& e : v) out += "[" + e + "] ";
    return out;
}

}  // namespace

int wsframe_self_test() {
    int failures = 0;
    auto check = [&](bool ok, const std::string& what) {
        if (!ok) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %s\n", what.c_str());
        }
    };

    // A stream with every length form but 64-bit, fragments with control frames between them, a close.
    std::string s, big125(125, 'a'), big126(126, 'b'), bin300(300, '\0');
    for (size_t i = 0; i < bin300.size(); ++i) bin300[i] = static_cast<char>(i * 7);
    std::string frag_a(150, 'x'), frag_b(200, 'y');
    s += server_frame(true, ws::op_text, "hi");
    s += server_frame(true, ws::op_text, big125);
    s += server_frame(true, ws::op_text, big126);
    s += server_frame(true, ws::op_binary, bin300);
    s += server_frame(true, ws::op_text, "");
    s += server_frame(false, ws::op_text, "frag-");
    s += server_frame(true, ws::op_ping, "p1");
    s += server_frame(false, ws::op_cont, "ment-");
    s += server_frame(true, ws::op_pong, "");
    s += server_frame(false, ws::op_cont, "");
    s += server_frame(true, ws::op_cont, "ed");
    s += server_frame(false, ws::op_binary, frag_a);
    s += server_frame(true, ws::op_cont, frag_b);
    s += server_frame(true, ws::op_ping, std::string(125, 'p'));
    s += server_frame(true, ws::op_close, ws::close_payload(1000, "bye"));
    const std::vector<std::string> expected = {
        "text hi", "text " + Recorder::show(big125), "text " + Recorder::show(big126), "binary " + Recorder::show(bin300),
        "text ", "ping p1", "pong ", "text frag-ment-ed", "binary " + Recorder::show(frag_a + frag_b),
        "ping " + Recorder::show(std::string(125, 'p')), "close 1000 bye"};
    size_t left = 0;
    check(feed_pieces(s, {}, &left) == expected && left == 0, "ws: one feed: " + join(feed_pieces(s, {})));
    int split_bad = 0;
    for (size_t k = 0; k <= s.size(); ++k) {
        auto got = feed_pieces(s, {k}, &left);
        if (got != expected || left != 0) {
            if (split_bad++ == 0) check(false, "ws: split at byte " + std::to_string(k) + ": " + join(got));
        }
        for (size_t d : {1, 2, 3, 5, 9, 14}) {
            if (k + d > s.size()) break;
            got = feed_pieces(s, {k, k + d}, &left);
            if ((got != expected || left != 0) && split_bad++ == 0)
                check(false, "ws: split at bytes " + std::to_string(k) + "," + std::to_string(k + d) + ": " + join(got));
        }
    }
    check(split_bad == 0, "ws: " + std::to_string(split_bad) + " splits gave other events");
    {
        std::vector<size_t> every;
        for (size_t k = 1; k < s.size(); ++k) every.push_back(k);
        check(feed_pieces(s, every, &left) == expected && left == 0, "ws: byte by byte");
    }

    // 64-bit lengths: a 70000-byte binary frame, then a small text one.
    {
        std::string big(70000, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) >> 3);
        std::string s64 = server_frame(true, ws::op_binary, big) + server_frame(true, ws::op_text, "after");
        check(static_cast<uint8_t>(s64[1]) == 127, "ws: 64-bit length form");
        const std::vector<std::string> want = {"binary " + Recorder::show(big), "text after"};
        int bad = 0;
        for (size_t k = 0; k <= s64.size(); k += (k < 40 || k + 40 > s64.size()) ? 1 : 251)
            if (feed_pieces(s64, {k}, &left) != want || left != 0) ++bad;
        check(bad == 0, "ws: 64-bit frame split: " + std::to_string(bad) + " splits gave other events");
        std::vector<size_t> every;
        for (size_t k = 1; k < s64.size(); ++k) every.push_back(k);
        check(feed_pieces(s64, every, &left) == want && left == 0, "ws: 64-bit frame byte by byte");
        // A fragmented message with a 64-bit fragment and a ping between the fragments.
        std::string f = server_frame(false, ws::op_text, "<") + server_frame(true, ws::op_ping, "") +
                        server_frame(true, ws::op_cont, big);
        check(feed_pieces(f, {3, 5, 100, 60000}) == std::vector<std::string>{"ping ", "text " + Recorder::show("<" + big)},
              "ws: fragment with a 64-bit length");
    }

    // Protocol errors: each rejected whole and byte by byte, after the frames before it.
    {
        std::string masked;
        ws::append_client_frame(masked, ws::op_text, "hello", 0x01020304);
        std::string non_min16 = std::string("\x81\x7e\x00\x05", 4) + "hello";
        std::string top_bit = std::string("\x82\x7f\x80\x00\x00\x00\x00\x01\x00\x00", 10);
        struct Case {
            std::string bytes, error;
            int code;
        };
        const std::vector<Case> cases = {
            {masked, "masked frame from the server", 1002},
            {server_frame(true, 3, "x"), "bad opcode 3", 1002},
            {server_frame(true, 0xB, "x"), "bad opcode 11", 1002},
            {server_frame(true, ws::op_text, "x", 4), "reserved bits set", 1002},
            {server_frame(false, ws::op_ping, "x"), "fragmented control frame", 1002},
            {server_frame(true, ws::op_ping, std::string(126, 'x')), "control frame longer than 125 bytes", 1002},
            {server_frame(true, ws::op_close, "x"), "close frame with a 1-byte payload", 1002},
            {server_frame(true, ws::op_cont, "x"), "continuation frame without a message", 1002},
            {server_frame(false, ws::op_text, "a") + server_frame(true, ws::op_text, "b"), "new message inside a fragmented one", 1002},
            {non_min16, "frame length not in its shortest form", 1002},
            {top_bit, "frame length not in its shortest form", 1002},
        };
        for (const auto& c : cases) {
            std::string stream = server_frame(true, ws::op_text, "ok") + c.bytes;
            std::vector<std::string> want = {"text ok", "error " + std::to_string(c.code) + ": " + c.error};
            auto whole = feed_pieces(stream, {});
            check(whole == want, "ws: expected [" + c.error + "], got " + join(whole));
            std::vector<size_t> every;
            for (size_t k = 1; k < stream.size(); ++k) every.push_back(k);
            auto bytewise = feed_pieces(stream, every);
            check(bytewise == want, "ws: byte by byte, expected [" + c.error + "], got " + join(bytewise));
        }
        // A masked frame is rejected from its header, before its payload arrives.
        std::string masked_big;
        ws::append_client_frame(masked_big, ws::op_text, std::string(1000, 'm'), 7);
        auto early = feed_pieces(masked_big.substr(0, 10), {});
        check(early.size() == 1 && early[0].find("masked") != std::string::npos, "ws: masked header rejected early");
        // Over the message limit: one frame, or fragments adding up.
        auto one = feed_pieces(server_frame(true, ws::op_text, std::string(2000, 'z')), {}, nullptr, 1000);
        check(one == std::vector<std::string>{"error 1009: message too big"}, "ws: frame over the limit: " + join(one));
        auto frags = feed_pieces(server_frame(false, ws::op_text, std::string(600, 'z')) +
                                     server_frame(true, ws::op_cont, std::string(600, 'z')),
                                 {}, nullptr, 1000);
        check(frags == std::vector<std::string>{"error 1009: message too big"}, "ws: fragments over the limit: " + join(frags));
    }

    // A sink that stops: nothing after it is delivered.
    {
        struct Stopper {
            int n = 0;
            bool message(bool, std::string_view) { return ++n < 2; }
            bool control(uint8_t, std::string_view) { return true; }
        } st;
        Reader r;
        std::string three = server_frame(true, ws::op_text, "1") + server_frame(true, ws::op_text, "2") +
                            server_frame(true, ws::op_text, "3");
        check(r.feed(three.data(), three.size(), st) == Reader::Result::stopped && st.n == 2, "ws: a sink stops the feed");
    }

    // Client frames: the RFC 6455 5.7 example, then 16- and 64-bit lengths, unmasked back.
    {
        std::string f;
        ws::append_client_frame(f, ws::op_text, "Hello", 0x37fa213d);
        check(f == std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11), "ws: RFC 6455 masked \"Hello\"");
        for (size_t len : {size_t{0}, size_t{125}, size_t{126}, size_t{65535}, size_t{65536}, size_t{70001}}) {
            std::string payload(len, '\0');
            for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 13 + 1);
            std::string out = "pre";
            uint32_t key = 0xa1b2c3d4u + static_cast<uint32_t>(len);
            ws::append_client_frame(out, ws::op_binary, payload, key);
            const auto* p = reinterpret_cast<const uint8_t*>(out.data() + 3);
            size_t hs = ws::header_size(p[1]);
            ws::Header h;
            bool ok = out.substr(0, 3) == "pre" && p[0] == 0x82 && (p[1] & 0x80) &&
                      ws::parse_header(p, out.size() - 3, h) == ws::HeaderStatus::complete && h.length == len &&
                      h.size == hs && out.size() == 3 + hs + len;
            for (size_t i = 0; ok && i < len; ++i)
                ok = static_cast<char>(p[hs + i] ^ p[hs - 4 + (i & 3)]) == payload[i];
            check(ok, "ws: client frame of " + std::to_string(len) + " bytes");
        }
        check(ws::close_payload(1000) == std::string("\x03\xe8", 2), "ws: close payload 1000");
        check(ws::close_payload(4004, "x") == std::string("\x0f\xa4x", 3), "ws: close payload 4004");
    }

    // The handshake: RFC 6455 1.3's key and accept, SHA-1 of "abc", the response check.
    {
        auto abc = ws::sha1("abc");
        check(ws::base64(abc.data(), abc.size()) == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", "ws: SHA-1 of \"abc\"");
        check(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "ws: RFC 6455 accept key");
        const uint8_t sixteen[16] = {};
        check(ws::base64(sixteen, 16) == "AAAAAAAAAAAAAAAAAAAAAA==" && ws::make_key(0, 0) == "AAAAAAAAAAAAAAAAAAAAAA==",
              "ws: base64 of a key");
        check(ws::base64(reinterpret_cast<const uint8_t*>("foob"), 4) == "Zm9vYg==", "ws: base64 padding");
        std::string acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        std::string good = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                           "Sec-WebSocket-Accept:  " + acc + "\r\n\r\n";
        check(ws::check_upgrade_response(good, acc).empty(), "ws: a good 101: " + ws::check_upgrade_response(good, acc));
        check(ws::check_upgrade_response("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", acc) == "HTTP 503",
              "ws: HTTP 503");
        check(ws::check_upgrade_response("HTTP/1.1 403\r\n\r\n", acc) == "HTTP 403", "ws: HTTP 403 without a reason");
        check(ws::check_upgrade_response(good, "other") == "101 response with a wrong or missing Sec-WebSocket-Accept",
              "ws: a wrong accept key");
        check(ws::check_upgrade_response("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n", acc) ==
                  "101 response without Upgrade: websocket",
              "ws: no Upgrade");
        check(ws::check_upgrade_response("SSH-2.0\r\n\r\n", acc) == "bad HTTP response", "ws: not HTTP");
        std::string req = ws::upgrade_request("/ws/bid/7?x=1", "h:80", "KEY");
        check(req.rfind("GET /ws/bid/7?x=1 HTTP/1.1\r\nHost: h:80\r\n", 0) == 0 &&
                  req.find("\r\nSec-WebSocket-Key: KEY\r\n") != std::string::npos &&
                  req.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos && req.size() >= 4 &&
                  req.compare(req.size() - 4, 4, "\r\n\r\n") == 0,
              "ws: upgrade request");
    }
    return failures;
}

void wsframe_speed() {
    // new_bid frames as the server sends them, one after another, fed in 64 KiB reads (frames
    // straddle the reads as they do on a socket).
    std::string stream;
    int64_t seq = 1000;
    while (stream.size() < (4u << 20)) {
        std::string msg = R"({"type":"new_bid","bid_id":)" + std::to_string(seq) + R"(,"seq":)" + std::to_string(seq) +
                          R"(,"bidder":"bench-b0","price":"1234.56","added_at":"2026-11-25T14:00:01.456Z"})";
        stream += server_frame(true, ws::op_text, msg);
        ++seq;
    }
    struct Count {
        uint64_t frames = 0, bytes = 0;
        bool message(bool, std::string_view p) {
            ++frames;
            bytes += p.size() + static_cast<unsigned char>(p[p.size() / 2]);
            return true;
        }
        bool control(uint8_t, std::string_view) { return true; }
    } count;
    ws::Reader r;
    const size_t chunk = 64 * 1024;
    auto t0 = std::chrono::steady_clock::now();
    double secs = 0;
    int rounds = 0;
    do {
        for (size_t pos = 0; pos < stream.size(); pos += chunk)
            r.feed(stream.data() + pos, std::min(chunk, stream.size() - pos), count);
        ++rounds;
        secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (secs < 0.3);
    std::printf("self-test: frame parser %.1f million frames/s (%.0f MB/s of %zu-byte new_bid frames, 64 KiB reads) on one thread\n",
                static_cast<double>(count.frames) / secs / 1e6,
                static_cast<double>(stream.size()) * rounds / secs / 1e6, stream.size() / static_cast<size_t>(seq - 1000));
}

}  // namespace bench
