#pragma once
// The WebSocket wire format (RFC 6455) on the server's side, apart from any socket: the opening
// handshake's answer, the frames a client sends (parsed incrementally, every rule of the RFC
// checked), and the headers of the frames the server sends. Pure: the session feeds it bytes.
//
// The server writes its frames itself (rather than through a WebSocket library) so that every
// message queued for a socket goes out in one gather write: the fan-out's cost is then a few
// system calls per batch instead of one per message.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bidding {

enum class ws_opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Close codes the server sends or checks (RFC 6455 7.4.1).
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // never on the wire: a close frame without a code
inline constexpr std::uint16_t bad_payload = 1007;
inline constexpr std::uint16_t policy = 1008;
inline constexpr std::uint16_t too_big = 1009;
}  // namespace ws_close

// A close code a peer may send: 1000-1003, 1007-1013, 3000-4999.
bool valid_close_code(std::uint16_t code);

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key; nullopt when the key is not the base64
// of 16 bytes.
std::optional<std::string> websocket_accept_key(std::string_view client_key);

// The header of a server frame (unmasked, FIN set): 2 to 10 bytes.
struct frame_header {
    std::array<char, 10> bytes{};
    std::uint8_t size{0};
};
frame_header make_frame_header(ws_opcode opcode, std::size_t payload_size);

// The payload of a close frame: the code, then the reason (at most 123 bytes, cut on a code
// point boundary).
std::string close_payload(std::uint16_t code, std::string_view reason);

// What a client sent, one complete message or control frame at a time.
struct ws_event {
    enum class kind { text, binary, ping, pong, close, error };
    kind what{kind::error};
    std::string payload;      // the message; a ping's or pong's data; a close's reason
    std::uint16_t code{0};    // close: the peer's code (ws_close::no_status when none); error: ours to send
};

class ws_frame_parser {
public:
    explicit ws_frame_parser(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

    // Consumes `bytes`, appending what they complete to `out`. After a close or an error event
    // the connection is over: later bytes are ignored.
    void feed(std::string_view bytes, std::vector<ws_event>& out);

    bool done() const { return done_; }

private:
    void fail(std::uint16_t code, std::string reason, std::vector<ws_event>& out);
    // A frame's header is complete in header_: checks it; false after failing.
    bool start_frame(std::vector<ws_event>& out);
    void end_frame(std::vector<ws_event>& out);

    std::size_t max_message_;
    bool done_{false};
    // The frame being read.
    std::array<unsigned char, 14> header_{};
    std::size_t header_have_{0};
    bool in_payload_{false};
    bool fin_{false};
    ws_opcode opcode_{ws_opcode::continuation};
    std::uint64_t remaining_{0};
    std::array<unsigned char, 4> mask_{};
    std::size_t mask_at_{0};
    std::string control_;  // the payload of a control frame
    // The data message being assembled (possibly over several frames).
    bool in_message_{false};
    ws_opcode message_opcode_{ws_opcode::text};
    std::string message_;
};

}  // namespace bidding
