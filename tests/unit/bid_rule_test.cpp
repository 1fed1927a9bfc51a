#include <bidding/bid_rule.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

TEST(JudgeBid, HigherBidOnOpenAuctionIsAccepted) {
    EXPECT_EQ(judge_bid(auction_status::open, cents{12366}, cents{12367}), bid_verdict::accepted);
    EXPECT_EQ(judge_bid(auction_status::open, cents{0}, cents{1}), bid_verdict::accepted);
}

TEST(JudgeBid, EqualBidIsTooLow) {
    EXPECT_EQ(judge_bid(auction_status::open, cents{12366}, cents{12366}), bid_verdict::price_too_low)
        << "a bid equal to the current price must not win";
}

TEST(JudgeBid, LowerBidIsTooLow) {
    EXPECT_EQ(judge_bid(auction_status::open, cents{12366}, cents{12365}), bid_verdict::price_too_low);
    EXPECT_EQ(judge_bid(auction_status::open, cents{12366}, cents{1}), bid_verdict::price_too_low);
}

TEST(JudgeBid, ClosedAuctionRejectsEvenHigherBids) {
    EXPECT_EQ(judge_bid(auction_status::closed, cents{12366}, cents{99999}), bid_verdict::closed);
    EXPECT_EQ(judge_bid(auction_status::closed, cents{12366}, cents{12366}), bid_verdict::closed)
        << "closed must win over price_too_low";
}

TEST(AuctionStatus, ToString) {
    EXPECT_EQ(to_string(auction_status::open), "open");
    EXPECT_EQ(to_string(auction_status::closed), "closed");
}

}  // namespace
}  // namespace bidding
