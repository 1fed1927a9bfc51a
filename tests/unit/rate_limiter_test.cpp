#include <bidding/rate_limiter.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, AllowsABurstThenTheSteadyRate) {
    rate_limiter limiter(10, 3);  // 10 per second, 3 at once
    const auto t0 = rate_limiter::clock::time_point{} + 1h;
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_FALSE(limiter.allow(t0)) << "the fourth bid in the same instant exceeds the burst";
    EXPECT_FALSE(limiter.allow(t0 + 50ms)) << "half a token has come back after 50 ms";
    EXPECT_TRUE(limiter.allow(t0 + 100ms)) << "one token per 100 ms at 10 per second";
    EXPECT_FALSE(limiter.allow(t0 + 100ms));
}

TEST(RateLimiter, RefillsNoMoreThanTheBurst) {
    rate_limiter limiter(10, 2);
    const auto t0 = rate_limiter::clock::time_point{} + 1h;
    EXPECT_TRUE(limiter.allow(t0));
    const auto later = t0 + 10s;  // a long pause must not bank 100 bids
    EXPECT_TRUE(limiter.allow(later));
    EXPECT_TRUE(limiter.allow(later));
    EXPECT_FALSE(limiter.allow(later));
}

TEST(RateLimiter, ZeroRateDisablesTheLimit) {
    rate_limiter limiter(0, 0);
    const auto t0 = rate_limiter::clock::time_point{} + 1h;
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(limiter.allow(t0));
    }
}

}  // namespace
}  // namespace bidding
