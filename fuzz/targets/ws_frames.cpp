// ws_frame_parser over the input's bytes, whole and in chunks of a few bytes (a socket may hand
// over any split): the same events either way, and every event within the RFC's rules. Then
// frames the server's own writers make (make_frame_header, close_payload), masked as a client
// masks them, read back to what was written.
#include <fuzz_targets.hpp>

#include <bidding/utf8.hpp>
#include <bidding/ws_frames.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bidding::fuzz {

namespace {

bool same(const std::vector<ws_event>& a, const std::vector<ws_event>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].what != b[i].what || a[i].payload != b[i].payload || a[i].code != b[i].code) return false;
    }
    return true;
}

void check_events(const std::vector<ws_event>& events, const ws_frame_parser& parser, std::size_t max_message,
                  std::string_view input) {
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& e = events[i];
        const bool last = i + 1 == events.size();
        switch (e.what) {
        case ws_event::kind::text:
            fuzz_check(valid_utf8(e.payload), "a text message that is not UTF-8", input);
            [[fallthrough]];
        case ws_event::kind::binary:
            fuzz_check(e.payload.size() <= max_message, "a message over the limit", input);
            break;
        case ws_event::kind::ping:
        case ws_event::kind::pong:
            fuzz_check(e.payload.size() <= 125, "a control payload over 125 bytes", input);
            break;
        case ws_event::kind::close:
            fuzz_check(last, "events after a close", input);
            fuzz_check(e.code == ws_close::no_status ? e.payload.empty() : valid_close_code(e.code),
                       "a close with an invalid code", input);
            fuzz_check(e.payload.size() <= 123 && valid_utf8(e.payload), "a close reason out of the rules", input);
            break;
        case ws_event::kind::error:
            fuzz_check(last, "events after an error", input);
            fuzz_check(e.code == ws_close::protocol_error || e.code == ws_close::bad_payload ||
                           e.code == ws_close::too_big,
                       "an error with an unexpected close code", input);
            break;
        }
    }
    const bool ended = !events.empty() && (events.back().what == ws_event::kind::close ||
                                           events.back().what == ws_event::kind::error);
    fuzz_check(parser.done() == ended, "done() disagrees with the events", input);
}

// A client frame: FIN as given, masked with `mask`.
std::string client_frame(ws_opcode opcode, bool fin, std::string_view payload, std::string_view mask) {
    const auto header = make_frame_header(opcode, payload.size());
    std::string out(header.bytes.data(), header.size);
    if (!fin) out[0] = static_cast<char>(out[0] & 0x7F);
    out[1] = static_cast<char>(out[1] | 0x80);
    out += mask;
    for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ mask[i % 4]);
    return out;
}

std::vector<ws_event> parse_all(std::string_view bytes, std::size_t max_message) {
    ws_frame_parser parser(max_message);
    std::vector<ws_event> events;
    parser.feed(bytes, events);
    return events;
}

}  // namespace

void ws_frames_one(std::string_view input) {
    if (input.empty()) return;
    const auto control = static_cast<unsigned char>(input[0]);
    const std::string_view stream = input.substr(1);
    constexpr std::size_t limits[] = {64, 125, 4096, 1 << 20};
    const std::size_t max_message = limits[control & 3];

    ws_frame_parser whole(max_message);
    std::vector<ws_event> whole_events;
    whole.feed(stream, whole_events);
    check_events(whole_events, whole, max_message, input);

    // Chunks of 1 to 16 bytes, their sizes from a small generator seeded by the input.
    ws_frame_parser chunked(max_message);
    std::vector<ws_event> chunked_events;
    std::uint32_t state = 0x9E3779B9u ^ (control * 0x01000193u) ^ static_cast<std::uint32_t>(stream.size());
    for (std::size_t at = 0; at < stream.size();) {
        state = state * 1664525u + 1013904223u;
        const std::size_t n = std::min<std::size_t>(1 + ((state >> 24) & 15), stream.size() - at);
        chunked.feed(stream.substr(at, n), chunked_events);
        at += n;
    }
    fuzz_check(same(whole_events, chunked_events), "the events depend on how the bytes were split", input);

    // The server's framing, read back: a message (whole, and in two fragments) and a close.
    const std::string mask = std::string(stream.substr(0, 4)) + std::string(4 - std::min<std::size_t>(4, stream.size()), 'm');
    const std::string_view payload = stream;
    const auto opcode = valid_utf8(payload) ? ws_opcode::text : ws_opcode::binary;
    const auto kind = opcode == ws_opcode::text ? ws_event::kind::text : ws_event::kind::binary;
    const std::size_t big = std::size_t{1} << 20;
    const auto one = parse_all(client_frame(opcode, true, payload, mask), big);
    fuzz_check(one.size() == 1 && one[0].what == kind && one[0].payload == payload, "a frame does not read back",
               input);
    const auto half = payload.size() / 2;
    const auto two = parse_all(client_frame(opcode, false, payload.substr(0, half), mask) +
                                   client_frame(ws_opcode::continuation, true, payload.substr(half), mask),
                               big);
    fuzz_check(two.size() == 1 && two[0].what == kind && two[0].payload == payload,
               "a fragmented message does not read back", input);
    const auto code = static_cast<std::uint16_t>(1000 + (control * 17) % 4000);
    const std::string close = close_payload(code, payload);
    fuzz_check(close.size() <= 125, "a close payload over 125 bytes", input);
    const auto closed = parse_all(client_frame(ws_opcode::close, true, close, mask), big);
    fuzz_check(closed.size() == 1, "a close frame gives not one event", input);
    if (valid_close_code(code)) {
        fuzz_check(closed[0].what == ws_event::kind::close && closed[0].code == code &&
                       payload.starts_with(closed[0].payload),
                   "a close does not read back", input);
    }

    if (const auto accept = websocket_accept_key(input)) {
        fuzz_check(accept->size() == 28, "a Sec-WebSocket-Accept of the wrong size", *accept);
    }
}

}  // namespace bidding::fuzz
