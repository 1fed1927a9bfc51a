#pragma once
// RFC 6455 for bidding-bench's client connections, without Asio (client.cpp does the I/O):
// - Reader: the incoming side of one connection. feed() it the bytes as they arrive, split
//   anywhere; it reports every complete message and control frame, in order. Server frames must
//   be unmasked; no extension is negotiated (reserved bits must be 0).
// - append_client_frame(): one masked client frame (bids, pongs, closes).
// - The opening handshake: the upgrade request, and the check of the server's response (status
//   101, Upgrade, Connection, Sec-WebSocket-Accept).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace bench::ws {

constexpr uint8_t op_cont = 0, op_text = 1, op_binary = 2, op_close = 8, op_ping = 9, op_pong = 10;
constexpr int close_normal = 1000, close_protocol_error = 1002, close_no_status = 1005, close_too_big = 1009;
constexpr uint64_t kDefaultMaxMessage = 64ull * 1024 * 1024;

struct Header {
    bool fin = false;
    uint8_t rsv = 0;      // the three reserved bits
    uint8_t opcode = 0;
    bool masked = false;
    uint64_t length = 0;  // payload length
    size_t size = 0;      // header length in bytes (2 to 14)
};

// The header length announced by a frame's second byte.
inline size_t header_size(uint8_t b1) {
    size_t n = (b1 & 0x80) ? 6 : 2;
    uint8_t len7 = b1 & 0x7f;
    return len7 == 126 ? n + 2 : len7 == 127 ? n + 8 : n;
}

enum class HeaderStatus { complete, incomplete, bad_length };

// Parses the header at p[0..n). bad_length: a length not in its shortest form, or 64 bits with
// the top bit set (RFC 6455 5.2).
inline HeaderStatus parse_header(const uint8_t* p, size_t n, Header& h) {
    if (n < 2) return HeaderStatus::incomplete;
    size_t need = header_size(p[1]);
    if (n < need) return HeaderStatus::incomplete;
    h.fin = (p[0] & 0x80) != 0;
    h.rsv = static_cast<uint8_t>((p[0] >> 4) & 7);
    h.opcode = p[0] & 0x0f;
    h.masked = (p[1] & 0x80) != 0;
    uint8_t len7 = p[1] & 0x7f;
    if (len7 < 126) {
        h.length = len7;
    } else if (len7 == 126) {
        h.length = (static_cast<uint64_t>(p[2]) << 8) | p[3];
        if (h.length < 126) return HeaderStatus::bad_length;
    } else {
        uint64_t v = 0;
        for (int i = 2; i < 10; ++i) v = (v << 8) | p[i];
        if ((v >> 63) != 0 || v < 65536) return HeaderStatus::bad_length;
        h.length = v;
    }
    h.size = need;
    return HeaderStatus::complete;
}

// Sink requirements (called from feed(), in stream order):
//   bool message(bool text, std::string_view payload);   a complete text or binary message
//   bool control(uint8_t opcode, std::string_view payload);  op_ping, op_pong or op_close
// Returning false stops feed() at once (Result::stopped): the connection ended. An unfragmented
// message complete within one feed() is a view into the fed bytes (no copy); others come from
// the reader's buffers. Views are valid only during the call.
class Reader {
public:
    enum class Result { ok, stopped, error };

    explicit Reader(uint64_t max_message = kDefaultMaxMessage) : max_(max_message) {}

    template <class Sink>
    Result feed(const char* data, size_t n, Sink& sink);

    // After Result::error: why, and the close code to send (1002 protocol error, 1009 too big).
    const std::string& error() const { return error_; }
    int error_close_code() const { return error_code_; }
    // Bytes held for an incomplete frame or fragmented message.
    size_t buffered() const { return partial_.size() + message_.size(); }

private:
    static constexpr size_t kKeep = 64 * 1024;  // larger buffers are freed after use

    bool check(const Header& h);
    template <class Sink>
    Result frame(const Header& h, const char* payload, Sink& sink);
    Result fail(std::string why, int code = close_protocol_error) {
        error_ = std::move(why);
        error_code_ = code;
        return Result::error;
    }

    uint64_t max_;
    std::string partial_;  // an incomplete frame: its header (maybe partial) and payload so far
    std::string message_;  // the fragments of a message so far
    bool in_message_ = false, message_text_ = false;
    std::string error_;
    int error_code_ = 0;
};

inline bool Reader::check(const Header& h) {
    if (h.rsv != 0) return fail("reserved bits set"), false;
    if (h.masked) return fail("masked frame from the server"), false;
    switch (h.opcode) {
        case op_cont:
            if (!in_message_) return fail("continuation frame without a message"), false;
            if (h.length > max_ - message_.size()) return fail("message too big", close_too_big), false;
            return true;
        case op_text:
        case op_binary:
            if (in_message_) return fail("new message inside a fragmented one"), false;
            if (h.length > max_) return fail("message too big", close_too_big), false;
            return true;
        case op_close:
        case op_ping:
        case op_pong:
            if (!h.fin) return fail("fragmented control frame"), false;
            if (h.length > 125) return fail("control frame longer than 125 bytes"), false;
            if (h.opcode == op_close && h.length == 1) return fail("close frame with a 1-byte payload"), false;
            return true;
        default: return fail("bad opcode " + std::to_string(h.opcode)), false;
    }
}

template <class Sink>
Reader::Result Reader::frame(const Header& h, const char* payload, Sink& sink) {
    size_t len = static_cast<size_t>(h.length);
    switch (h.opcode) {
        case op_text:
        case op_binary:
            if (h.fin) return sink.message(h.opcode == op_text, std::string_view(payload, len)) ? Result::ok : Result::stopped;
            in_message_ = true;
            message_text_ = h.opcode == op_text;
            message_.assign(payload, len);
            return Result::ok;
        case op_cont: {
            message_.append(payload, len);
            if (!h.fin) return Result::ok;
            in_message_ = false;
            bool go = sink.message(message_text_, std::string_view(message_));
            message_.clear();
            if (message_.capacity() > kKeep) std::string().swap(message_);
            return go ? Result::ok : Result::stopped;
        }
        default: return sink.control(h.opcode, std::string_view(payload, len)) ? Result::ok : Result::stopped;
    }
}

template <class Sink>
Reader::Result Reader::feed(const char* data, size_t n, Sink& sink) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(data);
    size_t pos = 0;
    Header h;
    // First finish the frame begun in an earlier feed: copy only the bytes it still needs.
    while (!partial_.empty()) {
        const auto* have = reinterpret_cast<const uint8_t*>(partial_.data());
        size_t hsize = partial_.size() < 2 ? 2 : header_size(have[1]);
        if (partial_.size() < hsize) {
            size_t take = std::min(n - pos, hsize - partial_.size());
            partial_.append(data + pos, take);
            pos += take;
            if (partial_.size() < 2) return Result::ok;
            hsize = header_size(static_cast<uint8_t>(partial_[1]));
            if (partial_.size() < hsize) {
                if (pos == n) return Result::ok;
                continue;
            }
            // The header is complete now: check it before waiting for the payload.
            HeaderStatus s = parse_header(reinterpret_cast<const uint8_t*>(partial_.data()), partial_.size(), h);
            if (s == HeaderStatus::bad_length) return fail("frame length not in its shortest form");
            if (!check(h)) return Result::error;
            if (h.length > 0) partial_.reserve(h.size + static_cast<size_t>(h.length));
        } else {
            parse_header(have, partial_.size(), h);  // checked when it became complete
        }
        size_t total = h.size + static_cast<size_t>(h.length);
        if (partial_.size() < total) {
            size_t take = std::min(n - pos, total - partial_.size());
            partial_.append(data + pos, take);
            pos += take;
            if (partial_.size() < total) return Result::ok;
        }
        Result r = frame(h, partial_.data() + h.size, sink);
        partial_.clear();
        if (partial_.capacity() > kKeep) std::string().swap(partial_);
        if (r != Result::ok) return r;
    }
    // Then every complete frame in place; keep the incomplete tail.
    while (pos < n) {
        size_t avail = n - pos;
        HeaderStatus s = parse_header(bytes + pos, avail, h);
        if (s == HeaderStatus::incomplete) {
            partial_.assign(data + pos, avail);
            return Result::ok;
        }
        if (s == HeaderStatus::bad_length) return fail("frame length not in its shortest form");
        if (!check(h)) return Result::error;
        if (avail - h.size < h.length) {
            partial_.reserve(h.size + static_cast<size_t>(h.length));
            partial_.assign(data + pos, avail);
            return Result::ok;
        }
        Result r = frame(h, data + pos + h.size, sink);
        if (r != Result::ok) return r;
        pos += h.size + static_cast<size_t>(h.length);
    }
    return Result::ok;
}

// Appends one masked client frame with FIN set. `key` is the masking key, its bytes most
// significant first (RFC 6455 5.3).
void append_client_frame(std::string& out, uint8_t opcode, std::string_view payload, uint32_t key);
// A close frame's payload: the code, two bytes big-endian, then the reason.
std::string close_payload(int code, std::string_view reason = {});

// The opening handshake.
std::string base64(const uint8_t* data, size_t n);
std::string make_key(uint64_t a, uint64_t b);  // Sec-WebSocket-Key: base64 of 16 bytes
std::string accept_key(std::string_view key);  // base64(SHA-1(key + the RFC 6455 GUID))
std::string upgrade_request(std::string_view target, std::string_view host, std::string_view key);
// `head`: the response through its blank line. Empty when it is a valid 101 answer with
// `expected_accept`; otherwise why not ("HTTP 503", ...).
std::string check_upgrade_response(std::string_view head, std::string_view expected_accept);

}  // namespace bench::ws

namespace bench {

// Unit checks of the framing and handshake code; prints failures to stderr, returns their number.
int wsframe_self_test();
// Prints how fast Reader parses a stream of new_bid frames fed in 64 KiB reads.
void wsframe_speed();

}  // namespace bench
