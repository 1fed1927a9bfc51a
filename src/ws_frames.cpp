#include <bidding/utf8.hpp>
#include <bidding/ws_frames.hpp>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>

namespace bidding {

namespace {

bool is_control(ws_opcode op) { return static_cast<std::uint8_t>(op) >= 8; }

bool known_opcode(std::uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

// The header's length once its first two bytes are known: 2 + extended length + mask key.
std::size_t header_length(const std::array<unsigned char, 14>& h) {
    const auto len7 = h[1] & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) != 0 ? 4 : 0);
}

}  // namespace

bool valid_close_code(std::uint16_t code) {
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1013) return true;
    return code >= 3000 && code <= 4999;
}

std::optional<std::string> websocket_accept_key(std::string_view client_key) {
    // The key is base64 of 16 bytes: 24 characters, the last two "==".
    if (client_key.size() != 24 || !client_key.ends_with("==")) {
        return std::nullopt;
    }
    unsigned char decoded[18];
    if (EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(client_key.data()), 24) != 18) {
        return std::nullopt;
    }
    constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 1.3
    std::string input;
    input.reserve(client_key.size() + guid.size());
    input.append(client_key).append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

frame_header make_frame_header(ws_opcode opcode, std::size_t payload_size) {
    frame_header h;
    h.bytes[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode));
    if (payload_size < 126) {
        h.bytes[1] = static_cast<char>(payload_size);
        h.size = 2;
    } else if (payload_size <= 0xFFFF) {
        h.bytes[1] = 126;
        h.bytes[2] = static_cast<char>(payload_size >> 8);
        h.bytes[3] = static_cast<char>(payload_size & 0xFF);
        h.size = 4;
    } else {
        h.bytes[1] = 127;
        for (int i = 0; i < 8; ++i) {
            h.bytes[2 + i] = static_cast<char>((static_cast<std::uint64_t>(payload_size) >> (8 * (7 - i))) & 0xFF);
        }
        h.size = 10;
    }
    return h;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string out;
    out += static_cast<char>(code >> 8);
    out += static_cast<char>(code & 0xFF);
    std::string_view cut = reason.substr(0, 123);
    while (!cut.empty() && !valid_utf8(cut)) {
        cut.remove_suffix(1);  // a cut in the middle of a character
    }
    out += cut;
    return out;
}

void ws_frame_parser::fail(std::uint16_t code, std::string reason, std::vector<ws_event>& out) {
    done_ = true;
    out.push_back(ws_event{ws_event::kind::error, std::move(reason), code});
}

void ws_frame_parser::feed(std::string_view bytes, std::vector<ws_event>& out) {
    std::size_t i = 0;
    while (i < bytes.size() && !done_) {
        if (!in_payload_) {
            // Header bytes, up to what the first two announce.
            while (i < bytes.size() && (header_have_ < 2 || header_have_ < header_length(header_))) {
                header_[header_have_++] = static_cast<unsigned char>(bytes[i++]);
            }
            if (header_have_ < 2 || header_have_ < header_length(header_)) {
                return;  // the rest of the header comes with the next read
            }
            if (!start_frame(out)) {
                return;
            }
            if (remaining_ == 0) {
                end_frame(out);
            }
            continue;
        }
        // Payload bytes: unmasked into the control buffer or the message.
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size() - i));
        std::string& target = is_control(opcode_) ? control_ : message_;
        const auto at = target.size();
        target.append(bytes.data() + i, take);
        for (std::size_t k = 0; k < take; ++k) {
            target[at + k] = static_cast<char>(static_cast<unsigned char>(target[at + k]) ^ mask_[mask_at_++ & 3]);
        }
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) {
            end_frame(out);
        }
    }
}

bool ws_frame_parser::start_frame(std::vector<ws_event>& out) {
    const auto b0 = header_[0];
    const auto b1 = header_[1];
    fin_ = (b0 & 0x80) != 0;
    const auto op = static_cast<std::uint8_t>(b0 & 0x0F);
    if ((b0 & 0x70) != 0) {
        fail(ws_close::protocol_error, "reserved bits set", out);  // no extension was negotiated
        return false;
    }
    if (!known_opcode(op)) {
        fail(ws_close::protocol_error, "unknown opcode", out);
        return false;
    }
    if ((b1 & 0x80) == 0) {
        fail(ws_close::protocol_error, "client frames must be masked", out);
        return false;
    }
    opcode_ = static_cast<ws_opcode>(op);
    std::uint64_t length = b1 & 0x7F;
    std::size_t at = 2;
    if (length == 126) {
        length = (std::uint64_t{header_[2]} << 8) | header_[3];
        at = 4;
    } else if (length == 127) {
        length = 0;
        for (int k = 0; k < 8; ++k) {
            length = (length << 8) | header_[2 + k];
        }
        at = 10;
        if ((length >> 63) != 0) {
            fail(ws_close::protocol_error, "frame length out of range", out);
            return false;
        }
    }
    std::copy_n(header_.begin() + static_cast<std::ptrdiff_t>(at), 4, mask_.begin());
    mask_at_ = 0;
    if (is_control(opcode_)) {
        if (!fin_ || length > 125) {
            fail(ws_close::protocol_error, "control frames must be whole and at most 125 bytes", out);
            return false;
        }
        control_.clear();
    } else if (opcode_ == ws_opcode::continuation) {
        if (!in_message_) {
            fail(ws_close::protocol_error, "continuation without a message", out);
            return false;
        }
    } else {
        if (in_message_) {
            fail(ws_close::protocol_error, "a new message inside a fragmented one", out);
            return false;
        }
        in_message_ = true;
        message_opcode_ = opcode_;
        message_.clear();
    }
    if (!is_control(opcode_) && message_.size() + length > max_message_) {
        fail(ws_close::too_big, "message too big", out);
        return false;
    }
    remaining_ = length;
    in_payload_ = true;
    header_have_ = 0;
    return true;
}

void ws_frame_parser::end_frame(std::vector<ws_event>& out) {
    in_payload_ = false;
    switch (opcode_) {
    case ws_opcode::ping:
        out.push_back(ws_event{ws_event::kind::ping, std::move(control_), 0});
        control_.clear();
        return;
    case ws_opcode::pong:
        out.push_back(ws_event{ws_event::kind::pong, std::move(control_), 0});
        control_.clear();
        return;
    case ws_opcode::close: {
        done_ = true;
        if (control_.empty()) {
            out.push_back(ws_event{ws_event::kind::close, {}, ws_close::no_status});
            return;
        }
        if (control_.size() == 1) {
            fail(ws_close::protocol_error, "close frame of one byte", out);
            return;
        }
        const auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(control_[0]) << 8) |
                                                     static_cast<unsigned char>(control_[1]));
        std::string reason = control_.substr(2);
        if (!valid_close_code(code)) {
            fail(ws_close::protocol_error, "invalid close code", out);
            return;
        }
        if (!valid_utf8(reason)) {
            fail(ws_close::bad_payload, "close reason is not UTF-8", out);
            return;
        }
        out.push_back(ws_event{ws_event::kind::close, std::move(reason), code});
        return;
    }
    default:
        break;
    }
    if (!fin_) {
        return;  // more fragments follow
    }
    in_message_ = false;
    if (message_opcode_ == ws_opcode::text && !valid_utf8(message_)) {
        fail(ws_close::bad_payload, "text is not UTF-8", out);
        return;
    }
    out.push_back(ws_event{message_opcode_ == ws_opcode::text ? ws_event::kind::text : ws_event::kind::binary,
                           std::move(message_), 0});
    message_.clear();
}

}  // namespace bidding
