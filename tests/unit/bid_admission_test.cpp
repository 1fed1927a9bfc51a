#include <bidding/bid_admission.hpp>

#include <gtest/gtest.h>

using namespace bidding;
using namespace std::chrono_literals;

namespace {
const auto t0 = bid_admission::clock::time_point{} + 1h;
}

TEST(BidAdmission, AtMost32BidsWithoutAReplyThenOverloadedUntilOneIsAnswered) {
    bid_admission a(0, 0);  // no rate limit
    for (int i = 0; i < bid_admission::max_in_flight; ++i) {
        EXPECT_FALSE(a.admit(t0, false, false).has_value()) << i;
    }
    EXPECT_EQ(a.in_flight(), 32);
    const auto refused = a.admit(t0, false, false);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->code, error_code::overloaded);
    EXPECT_NE(refused->message.find("not stored"), std::string_view::npos);
    EXPECT_EQ(a.in_flight(), 32) << "a refused bid is not in flight";
    a.answered();
    EXPECT_FALSE(a.admit(t0, false, false).has_value());
}

TEST(BidAdmission, TheRateLimitComesFirstThenTheDrainThenTheFanOut) {
    bid_admission a(1, 1);  // one per second, no burst beyond one
    const auto first = a.admit(t0, true, true);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->code, error_code::unavailable) << "draining: not stored, the pod is going away";
    const auto second = a.admit(t0, false, false);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->code, error_code::rate_limited) << "the token was spent by the bid before";
    const auto third = a.admit(t0 + 2s, false, true);
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(third->code, error_code::overloaded) << "this auction's fan-out is behind";
    EXPECT_FALSE(a.admit(t0 + 4s, false, false).has_value());
    EXPECT_EQ(a.in_flight(), 1);
}
