#include <bidding/backoff.hpp>

#include <gtest/gtest.h>

using namespace bidding;
using namespace std::chrono_literals;

TEST(Backoff, DoublesUpToTheCapAndStartsOverAfterAReset) {
    backoff b(100ms, 1000ms);
    EXPECT_TRUE(b.fresh());
    EXPECT_EQ(b.next(), 100ms);
    EXPECT_FALSE(b.fresh());
    EXPECT_EQ(b.next(), 200ms);
    EXPECT_EQ(b.next(), 400ms);
    EXPECT_EQ(b.next(), 800ms);
    EXPECT_EQ(b.next(), 1000ms);
    EXPECT_EQ(b.next(), 1000ms);
    b.reset();
    EXPECT_TRUE(b.fresh());
    EXPECT_EQ(b.next(), 100ms);
}

TEST(Backoff, ACapBelowTheStartIsNeverExceededAfterTheFirstWait) {
    backoff b(250ms, 200ms);
    EXPECT_EQ(b.next(), 250ms);
    EXPECT_EQ(b.next(), 200ms);
}
