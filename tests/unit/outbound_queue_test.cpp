#include <bidding/outbound_queue.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

using namespace std::chrono_literals;
using clock = outbound_queue::clock;
const clock::time_point t0 = clock::now();

shared_text text(std::size_t n, char c = 'x') { return make_shared_text(std::string(n, c)); }

std::string payloads(const std::vector<outbound_queue::frame>& frames) {
    std::string out;
    for (const auto& f : frames) out += *f.payload + "|";
    return out;
}

TEST(OutboundQueue, BoundedInBytesIncludingTheWriteInFlightAndFrameHeaders) {
    outbound_queue q(12);  // each frame below carries a 2-byte header
    EXPECT_TRUE(q.push(text(4), t0));
    q.start_write(64, 1 << 16);
    EXPECT_TRUE(q.push(text(4), t0));
    EXPECT_FALSE(q.push(text(1), t0)) << "6 in flight + 6 waiting fill the bound";
    EXPECT_EQ(q.bytes(), 12u);
    q.finish_write();
    EXPECT_EQ(q.bytes(), 6u);
    EXPECT_TRUE(q.push(text(4), t0));
    EXPECT_TRUE(q.push(text(100), t0, ws_opcode::close, true)) << "a close frame goes beyond the bound";
}

TEST(OutboundQueue, DroppingWhatWaitsKeepsTheWriteInFlightAlive) {
    // The pod crash: clearing the queue freed the buffer of the write in flight, and its
    // completion then popped an empty queue.
    outbound_queue q(100);
    q.push(text(5, 'a'), t0);
    const auto& in_flight = q.start_write(1, 1 << 16);
    q.push(text(5, 'b'), t0);
    q.drop_waiting();
    ASSERT_EQ(in_flight.size(), 1u);
    EXPECT_EQ(*in_flight[0].payload, "aaaaa") << "the buffer being written must stay valid";
    EXPECT_TRUE(q.writing());
    EXPECT_FALSE(q.has_waiting());
    EXPECT_EQ(q.bytes(), 7u);
    q.finish_write();
    EXPECT_FALSE(q.writing());
    EXPECT_EQ(q.bytes(), 0u);
    q.finish_write();  // a second completion (an aborted write) is harmless
    EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutboundQueue, GathersWaitingFramesInOrderUpToItsLimits) {
    outbound_queue q(1000);
    for (char c : std::string("abcde")) q.push(text(10, c), t0);
    EXPECT_EQ(payloads(q.start_write(3, 1 << 16)), "aaaaaaaaaa|bbbbbbbbbb|cccccccccc|") << "at most 3 frames";
    q.finish_write();
    EXPECT_EQ(payloads(q.start_write(64, 15)), "dddddddddd|") << "at most 15 bytes beyond the first frame";
    q.finish_write();
    EXPECT_EQ(payloads(q.start_write(64, 1)), "eeeeeeeeee|") << "one frame always goes, however big";
    q.finish_write();
    EXPECT_FALSE(q.has_waiting());
}

TEST(OutboundQueue, ControlFramesGoAheadOfWaitingDataInTheirOwnOrder) {
    outbound_queue q(1000);
    q.push(text(1, 'a'), t0);
    q.start_write(64, 1 << 16);
    q.push(text(1, 'b'), t0);
    q.push_control(make_shared_text("p1"), ws_opcode::pong, t0);
    q.push_control(make_shared_text("p2"), ws_opcode::pong, t0);
    EXPECT_TRUE(q.writing()) << "still in flight: a";
    q.finish_write();
    const auto& next = q.start_write(64, 1 << 16);
    EXPECT_EQ(payloads(next), "p1|p2|b|");
    EXPECT_EQ(static_cast<unsigned char>(next[0].header.bytes[0]), 0x8A) << "FIN + pong";
    EXPECT_EQ(static_cast<unsigned char>(next[2].header.bytes[0]), 0x81) << "FIN + text";
}

TEST(OutboundQueue, TellsSinceWhenTheOldestUnwrittenFrameWaits) {
    outbound_queue q(100);
    EXPECT_FALSE(q.oldest()) << "nothing waits";
    q.push(text(1, 'a'), t0);
    q.push(text(1, 'b'), t0 + 5ms);
    EXPECT_EQ(q.oldest(), t0);
    q.start_write(1, 1 << 16);
    EXPECT_EQ(q.oldest(), t0) << "the frame being written has not left yet";
    q.finish_write();
    EXPECT_EQ(q.oldest(), t0 + 5ms);
    q.push_control(make_shared_text("p"), ws_opcode::pong, t0 + 9ms);
    EXPECT_EQ(q.oldest(), t0 + 5ms) << "a control frame ahead does not hide older data";
    q.start_write(64, 1 << 16);
    q.finish_write();
    EXPECT_FALSE(q.oldest());
}

}  // namespace
}  // namespace bidding
