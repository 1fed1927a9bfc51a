#include <bidding/fanout_load.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

using namespace std::chrono_literals;

TEST(FanoutLoad, BehindWhenMessagesCannotEvenBeHandedOver) {
    fanout_load load(100, 500ms);
    load.sessions_changed(4);
    load.posted(400);
    EXPECT_FALSE(load.behind());
    load.posted(1);
    EXPECT_TRUE(load.behind()) << "401 bytes waiting for 4 sessions' strands is above 100 each";
    load.taken(300);
    EXPECT_FALSE(load.behind());
}

TEST(FanoutLoad, BehindWhenMostSessionsAreLate) {
    fanout_load load(100, 500ms);
    load.sessions_changed(4);
    load.session_over(true);
    load.session_over(true);
    EXPECT_FALSE(load.behind()) << "half of them is not most of them";
    load.session_over(true);
    EXPECT_TRUE(load.behind());
    load.session_over(false);
    EXPECT_FALSE(load.behind());
}

TEST(FanoutLoad, OneStuckClientDoesNotStopTheAuction) {
    // A client that stops reading grows only its own queue, until it is cut off at its bound.
    fanout_load load(100, 500ms);
    load.sessions_changed(2);
    load.session_over(true);
    EXPECT_FALSE(load.behind()) << "one stuck client beside one healthy one";
    fanout_load alone(100, 500ms);
    alone.sessions_changed(1);
    alone.session_over(true);
    EXPECT_TRUE(alone.behind()) << "a lone client that does not read only refuses its own bids";
}

TEST(FanoutLoad, AnotherPodsPauseRefusesBidsUntilItEnds) {
    fanout_load load(100, 500ms);
    load.sessions_changed(1);
    const auto now = fanout_load::clock::now();
    EXPECT_FALSE(load.refuse_bids(now));
    load.hold(now + 300ms);
    EXPECT_TRUE(load.refuse_bids(now + 100ms));
    load.hold(now + 50ms);
    EXPECT_TRUE(load.refuse_bids(now + 200ms)) << "an earlier end does not shorten a pause";
    EXPECT_FALSE(load.refuse_bids(now + 301ms));
}

TEST(FanoutLoad, SignalsAtMostOncePerPeriod) {
    fanout_load load(1, 500ms);
    const auto now = fanout_load::clock::now();
    EXPECT_TRUE(load.should_signal(now, 100ms));
    EXPECT_FALSE(load.should_signal(now + 50ms, 100ms));
    EXPECT_TRUE(load.should_signal(now + 100ms, 100ms));
}

}  // namespace
}  // namespace bidding
