#include <bidding/fanout_load.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

using namespace std::chrono_literals;

TEST(FanoutLoad, BehindWhenTheAverageSessionHoldsMoreThanTheHighWater) {
    fanout_load load(100);
    load.sessions_changed(4);
    load.posted(300);
    EXPECT_FALSE(load.behind());
    load.queued(101);
    EXPECT_TRUE(load.behind()) << "401 bytes over 4 sessions is above 100 each";
    load.taken(300);
    EXPECT_FALSE(load.behind());
}

TEST(FanoutLoad, OneStuckClientAmongManyDoesNotStopTheAuction) {
    // A client that stops reading grows only its own queue, to at most its bound (8 x high water).
    fanout_load load(100);
    load.sessions_changed(20);
    load.queued(800);
    EXPECT_FALSE(load.behind());
}

TEST(FanoutLoad, AnotherPodsPauseRefusesBidsUntilItEnds) {
    fanout_load load(100);
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
    fanout_load load(1);
    const auto now = fanout_load::clock::now();
    EXPECT_TRUE(load.should_signal(now, 100ms));
    EXPECT_FALSE(load.should_signal(now + 50ms, 100ms));
    EXPECT_TRUE(load.should_signal(now + 100ms, 100ms));
}

}  // namespace
}  // namespace bidding
