#include "test_values.hpp"

#include <bidding/auction_feed.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

using testing::seq_list;

feed_event ev(std::int64_t prev, std::int64_t seq) {
    return feed_event{seq_t{prev}, seq_t{seq}, make_shared_text("m" + std::to_string(seq))};
}

std::vector<seq_t> seqs(const std::vector<feed_event>& events) {
    std::vector<seq_t> out;
    for (const auto& e : events) out.push_back(e.seq);
    return out;
}

TEST(AuctionFeed, HoldsEventsUntilTheFirstSnapshotSaysWhereDeliveryStarts) {
    auction_feed feed;
    EXPECT_TRUE(feed.push(ev(10, 12)).empty()) << "nothing may be delivered before the baseline is known";
    EXPECT_EQ(seqs(feed.baseline(seq_t{10})), seq_list({12}));
    EXPECT_EQ(feed.last(), seq_t{12});
}

TEST(AuctionFeed, FirstBaselineAlwaysChecksPostgresOnce) {
    auction_feed feed;
    feed.baseline(seq_t{5});
    EXPECT_TRUE(feed.wants_fill()) << "bids between the snapshot and the subscription would be lost";
    feed.fill_started();
    EXPECT_FALSE(feed.wants_fill()) << "one read at a time";
    EXPECT_TRUE(feed.filled({}, true).empty());
    EXPECT_FALSE(feed.wants_fill());
}

TEST(AuctionFeed, DeliversInOrderAndDropsDuplicates) {
    auction_feed feed;
    feed.baseline(seq_t{0});
    feed.fill_started();
    feed.filled({}, true);
    EXPECT_EQ(seqs(feed.push(ev(0, 3))), seq_list({3}));
    EXPECT_TRUE(feed.push(ev(0, 3)).empty()) << "the Redis echo of a local bid must not be delivered twice";
    EXPECT_EQ(seqs(feed.push(ev(3, 7))), seq_list({7}));
    EXPECT_FALSE(feed.wants_fill());
}

TEST(AuctionFeed, ReordersEventsThatArriveOutOfOrder) {
    auction_feed feed;
    feed.baseline(seq_t{1});
    feed.fill_started();
    feed.filled({}, true);
    EXPECT_TRUE(feed.push(ev(4, 9)).empty()) << "9 follows 4, which has not been delivered";
    EXPECT_TRUE(feed.wants_fill()) << "a later seq before an earlier one is a gap";
    EXPECT_EQ(seqs(feed.push(ev(1, 4))), seq_list({4, 9}));
}

TEST(AuctionFeed, FillsAGapFromPostgresBeforeDeliveringLaterEvents) {
    auction_feed feed;
    feed.baseline(seq_t{10});
    feed.fill_started();
    feed.filled({}, true);
    EXPECT_TRUE(feed.push(ev(15, 20)).empty());
    ASSERT_TRUE(feed.wants_fill());
    feed.fill_started();
    // Postgres has 15 and 20 (20 committed by the time the read ran).
    const auto out = feed.filled({ev(10, 15), ev(15, 20)}, true);
    EXPECT_EQ(seqs(out), seq_list({15, 20})) << "the gap and the held event, once each, in order";
    EXPECT_FALSE(feed.wants_fill());
    EXPECT_EQ(feed.held(), 0u);
}

TEST(AuctionFeed, IncompleteFillAsksForMore) {
    auction_feed feed;
    feed.baseline(seq_t{0});
    feed.fill_started();
    const auto out = feed.filled({ev(0, 1), ev(1, 2)}, false);
    EXPECT_EQ(seqs(out), seq_list({1, 2}));
    EXPECT_TRUE(feed.wants_fill()) << "a read that hit its limit must be continued";
}

TEST(AuctionFeed, FillRequestedDuringAFillIsNotLost) {
    auction_feed feed;
    feed.baseline(seq_t{0});
    feed.fill_started();
    feed.request_fill();  // e.g. Redis reconnected while the read was running
    feed.filled({}, true);
    EXPECT_TRUE(feed.wants_fill()) << "the read may have started before the resubscription";
}

TEST(AuctionFeed, LaterSnapshotAheadOfTheFeedMeansSomethingWasMissed) {
    auction_feed feed;
    feed.baseline(seq_t{5});
    feed.fill_started();
    feed.filled({}, true);
    EXPECT_TRUE(feed.baseline(seq_t{8}).empty());
    EXPECT_TRUE(feed.wants_fill());
    EXPECT_EQ(feed.last(), seq_t{5}) << "the feed must deliver 6..8 to the clients that have only 5";
}

TEST(AuctionFeed, TooManyHeldEventsAreDroppedAndReadBack) {
    auction_feed feed;
    feed.baseline(seq_t{0});
    feed.fill_started();
    feed.filled({}, true);
    for (std::int64_t s = 2; s < static_cast<std::int64_t>(auction_feed::max_held) + 10; ++s) {
        feed.push(ev(s - 1, s));  // 1 never arrives
    }
    EXPECT_LE(feed.held(), auction_feed::max_held) << "memory must stay bounded";
    EXPECT_TRUE(feed.wants_fill());
}

}  // namespace
}  // namespace bidding
