#include <bidding/outbound_queue.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

shared_text text(std::size_t n, char c = 'x') { return make_shared_text(std::string(n, c)); }

using clock = outbound_queue::clock;
const clock::time_point t0 = clock::now();

TEST(OutboundQueue, BoundedInBytesIncludingTheWriteInFlight) {
    outbound_queue q(10);
    EXPECT_TRUE(q.push(text(6), t0));
    EXPECT_EQ(q.start_write(), std::string(6, 'x'));
    EXPECT_TRUE(q.push(text(4), t0));
    EXPECT_FALSE(q.push(text(1), t0)) << "6 in flight + 4 waiting fill the bound";
    EXPECT_EQ(q.bytes(), 10u);
    q.finish_write();
    EXPECT_EQ(q.bytes(), 4u);
    EXPECT_TRUE(q.push(text(6), t0));
}

TEST(OutboundQueue, DroppingWhatWaitsKeepsTheWriteInFlightAlive) {
    // The pod crash: clearing the queue freed the buffer of the write in flight, and its
    // completion then popped an empty queue.
    outbound_queue q(100);
    q.push(text(5, 'a'), t0);
    q.push(text(5, 'b'), t0);
    const std::string& in_flight = q.start_write();
    q.drop_waiting();
    EXPECT_EQ(in_flight, "aaaaa") << "the buffer being written must stay valid";
    EXPECT_TRUE(q.writing());
    EXPECT_FALSE(q.has_waiting());
    EXPECT_EQ(q.bytes(), 5u);
    q.finish_write();
    EXPECT_FALSE(q.writing());
    EXPECT_EQ(q.bytes(), 0u);
    q.finish_write();  // a second completion (an aborted write) is harmless
    EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutboundQueue, WritesInOrder) {
    outbound_queue q(100);
    q.push(text(1, 'a'), t0);
    q.push(text(1, 'b'), t0);
    EXPECT_EQ(q.start_write(), "a");
    q.finish_write();
    EXPECT_EQ(q.start_write(), "b");
    q.finish_write();
    EXPECT_FALSE(q.has_waiting());
}

TEST(OutboundQueue, TellsSinceWhenTheOldestUnwrittenMessageWaits) {
    using namespace std::chrono_literals;
    outbound_queue q(100);
    EXPECT_FALSE(q.oldest()) << "nothing waits";
    q.push(text(1, 'a'), t0);
    q.push(text(1, 'b'), t0 + 5ms);
    EXPECT_EQ(q.oldest(), t0);
    q.start_write();
    EXPECT_EQ(q.oldest(), t0) << "the message being written has not left yet";
    q.finish_write();
    EXPECT_EQ(q.oldest(), t0 + 5ms);
    q.start_write();
    q.finish_write();
    EXPECT_FALSE(q.oldest());
}

}  // namespace
}  // namespace bidding
