#include <bidding/ws_frames.hpp>

#include <gtest/gtest.h>

#include <string>

namespace bidding {
namespace {

// A client frame: masked with a fixed key.
std::string frame(std::uint8_t first_byte, std::string_view payload, bool mask = true) {
    std::string out(1, static_cast<char>(first_byte));
    const std::size_t n = payload.size();
    const char m = mask ? static_cast<char>(0x80) : 0;
    if (n < 126) {
        out += static_cast<char>(m | static_cast<char>(n));
    } else if (n <= 0xFFFF) {
        out += static_cast<char>(m | 126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; --i) out += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF);
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) out.append(key, 4);
    for (std::size_t i = 0; i < n; ++i) out += mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
    return out;
}

std::string text(std::string_view s) { return frame(0x81, s); }

std::vector<ws_event> parse(const std::string& bytes, std::size_t max = 1 << 20, std::size_t chunk = 0) {
    ws_frame_parser p(max);
    std::vector<ws_event> out;
    if (chunk == 0) {
        p.feed(bytes, out);
    } else {
        for (std::size_t i = 0; i < bytes.size(); i += chunk) p.feed(std::string_view(bytes).substr(i, chunk), out);
    }
    return out;
}

std::uint16_t error_code_of(const std::vector<ws_event>& events) {
    return !events.empty() && events.back().what == ws_event::kind::error ? events.back().code : 0;
}

TEST(WsHandshake, AcceptKeyIsTheRfcExample) {
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 1.3
    EXPECT_FALSE(websocket_accept_key(""));
    EXPECT_FALSE(websocket_accept_key("short=="));
    EXPECT_FALSE(websocket_accept_key("!!!!!!!!!!!!!!!!!!!!!!=="));
}

TEST(WsFrames, ServerHeadersUseTheShortestLength) {
    EXPECT_EQ(make_frame_header(ws_opcode::text, 125).size, 2);
    const auto mid = make_frame_header(ws_opcode::text, 126);
    EXPECT_EQ(mid.size, 4);
    EXPECT_EQ(static_cast<unsigned char>(mid.bytes[1]), 126);
    const auto big = make_frame_header(ws_opcode::binary, 70000);
    EXPECT_EQ(big.size, 10);
    EXPECT_EQ(static_cast<unsigned char>(big.bytes[0]), 0x82);
    EXPECT_EQ(close_payload(1008, "slow consumer"), std::string("\x03\xf0slow consumer", 15));
    EXPECT_EQ(close_payload(1000, std::string(200, 'r')).size(), 125u) << "a close frame holds at most 125 bytes";
}

TEST(WsFrames, TextMessagesWholeOrSplitAtAnyByte) {
    const std::string bytes = text("hello") + text(std::string(300, 'x')) + text(std::string(70000, 'y'));
    for (std::size_t chunk : {0, 1, 2, 3, 7, 100}) {
        const auto events = parse(bytes, 1 << 20, chunk);
        ASSERT_EQ(events.size(), 3u) << "chunk " << chunk;
        EXPECT_EQ(events[0].payload, "hello");
        EXPECT_EQ(events[1].payload, std::string(300, 'x'));
        EXPECT_EQ(events[2].payload, std::string(70000, 'y'));
    }
}

TEST(WsFrames, FragmentsWithControlFramesBetween) {
    const auto events = parse(frame(0x01, "hel") + frame(0x89, "p") + frame(0x00, "lo ") + frame(0x80, "you"));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].what, ws_event::kind::ping);
    EXPECT_EQ(events[0].payload, "p");
    EXPECT_EQ(events[1].what, ws_event::kind::text);
    EXPECT_EQ(events[1].payload, "hello you");
}

TEST(WsFrames, ProtocolErrorsAre1002) {
    EXPECT_EQ(error_code_of(parse(frame(0x81, "x", false))), 1002) << "unmasked client frame";
    EXPECT_EQ(error_code_of(parse(frame(0xC1, "x"))), 1002) << "RSV1 without an extension";
    EXPECT_EQ(error_code_of(parse(frame(0x83, "x"))), 1002) << "opcode 3 is reserved";
    EXPECT_EQ(error_code_of(parse(frame(0x8B, "x"))), 1002) << "opcode 11 is reserved";
    EXPECT_EQ(error_code_of(parse(frame(0x09, "x"))), 1002) << "a fragmented ping";
    EXPECT_EQ(error_code_of(parse(frame(0x89, std::string(126, 'p')))), 1002) << "a ping over 125 bytes";
    EXPECT_EQ(error_code_of(parse(frame(0x80, "x"))), 1002) << "continuation without a message";
    EXPECT_EQ(error_code_of(parse(frame(0x01, "a") + frame(0x81, "b"))), 1002) << "interleaved messages";
    EXPECT_EQ(error_code_of(parse(frame(0x88, "\x03"))), 1002) << "a close of one byte";
    EXPECT_EQ(error_code_of(parse(frame(0x88, std::string("\x03\xed", 2)))), 1002) << "close code 1005 on the wire";
    EXPECT_EQ(error_code_of(parse(frame(0x88, std::string("\x03\xe7", 2)))), 1002) << "close code 999";
}

TEST(WsFrames, InvalidUtf8Is1007) {
    EXPECT_EQ(error_code_of(parse(text("\xc3\x28"))), 1007);
    EXPECT_EQ(error_code_of(parse(frame(0x01, "\xce") + frame(0x80, "\xba\xe1"))), 1007) << "cut across fragments, then bad";
    EXPECT_TRUE(parse(frame(0x01, "\xce") + frame(0x80, "\xba")).back().what == ws_event::kind::text)
        << "a character split over two fragments is fine";
    EXPECT_EQ(error_code_of(parse(frame(0x88, std::string("\x03\xe8\xff", 3)))), 1007) << "close reason not UTF-8";
    EXPECT_EQ(parse(frame(0x82, "\xff\xfe")).back().what, ws_event::kind::binary) << "binary is not text";
}

TEST(WsFrames, MessagesOverTheLimitAre1009EvenAcrossFragments) {
    EXPECT_EQ(error_code_of(parse(text(std::string(101, 'x')), 100)), 1009);
    EXPECT_EQ(error_code_of(parse(frame(0x01, std::string(60, 'x')) + frame(0x80, std::string(60, 'x')), 100)), 1009);
    EXPECT_EQ(parse(text(std::string(100, 'x')), 100).back().what, ws_event::kind::text);
}

TEST(WsFrames, CloseEndsTheStream) {
    auto events = parse(frame(0x88, std::string("\x03\xe8", 2) + "bye") + text("ignored"));
    ASSERT_EQ(events.size(), 1u) << "nothing after a close";
    EXPECT_EQ(events[0].what, ws_event::kind::close);
    EXPECT_EQ(events[0].code, 1000);
    EXPECT_EQ(events[0].payload, "bye");
    events = parse(frame(0x88, ""));
    EXPECT_EQ(events[0].code, ws_close::no_status);
    EXPECT_EQ(parse(frame(0x88, std::string("\x0f\xa0", 2))).back().code, 4000) << "4000-4999 are the application's";
}

TEST(WsFrames, CloseCodesAPeerMaySend) {
    for (std::uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 4999}) {
        EXPECT_TRUE(valid_close_code(ok)) << ok;
    }
    for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000}) {
        EXPECT_FALSE(valid_close_code(bad)) << bad;
    }
}

}  // namespace
}  // namespace bidding
