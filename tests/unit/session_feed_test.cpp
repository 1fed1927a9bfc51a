#include <bidding/session_feed.hpp>

#include <gtest/gtest.h>

#include <string>

namespace bidding {
namespace {

fanout_message bid(std::int64_t prev, std::int64_t seq) {
    return fanout_message{seq_t{prev}, seq_t{seq}, make_shared_text("bid" + std::to_string(seq))};
}

std::vector<std::string> texts(const session_feed::step& s) {
    std::vector<std::string> out;
    for (const auto& m : s.send) out.push_back(*m);
    return out;
}

using strings = std::vector<std::string>;

TEST(SessionFeed, HoldsWhileLoadingAndSendsWhatFollowsTheSnapshot) {
    session_feed feed(1 << 20);
    EXPECT_TRUE(feed.deliver({bid(3, 5), bid(5, 6)}).send.empty()) << "nothing before initial_state";
    const auto s = feed.start(seq_t{5});
    EXPECT_EQ(texts(s), (strings{"bid6"})) << "5 is in the snapshot: only 6 follows it";
    EXPECT_FALSE(s.fill);
    EXPECT_EQ(feed.last(), seq_t{6});
}

TEST(SessionFeed, DropsDuplicatesAndOldMessages) {
    session_feed feed(1 << 20);
    feed.start(seq_t{10});
    EXPECT_TRUE(feed.deliver({bid(8, 9), bid(9, 10)}).send.empty());
    EXPECT_EQ(texts(feed.deliver({bid(10, 12)})), (strings{"bid12"}));
    EXPECT_TRUE(feed.deliver({bid(10, 12)}).send.empty()) << "exactly once";
}

TEST(SessionFeed, AGapIsReadFromPostgresBeforeAnythingLaterIsSent) {
    session_feed feed(1 << 20);
    feed.start(seq_t{10});
    auto s = feed.deliver({bid(15, 20)});
    EXPECT_TRUE(s.send.empty()) << "15 was never sent to this client: 20 must wait";
    EXPECT_TRUE(s.fill);
    EXPECT_TRUE(feed.deliver({bid(20, 21)}).send.empty()) << "held while the read runs";
    s = feed.filled({bid(10, 15), bid(15, 20)}, true);
    EXPECT_EQ(texts(s), (strings{"bid15", "bid20", "bid21"})) << "the rows, then what was held, in order";
    EXPECT_FALSE(s.fill);
}

TEST(SessionFeed, AnIncompleteReadAsksForMore) {
    session_feed feed(1 << 20);
    feed.start(seq_t{0});
    EXPECT_TRUE(feed.deliver({bid(5, 9)}).fill);
    auto s = feed.filled({bid(0, 2), bid(2, 5)}, false);
    EXPECT_EQ(texts(s), (strings{"bid2", "bid5"}));
    EXPECT_TRUE(s.fill) << "the read returned a full page: more rows may follow";
    s = feed.filled({bid(5, 9)}, true);
    EXPECT_EQ(texts(s), (strings{"bid9"})) << "the held 9 is not sent twice";
}

TEST(SessionFeed, HeldMessagesAreBoundedAndReadBackWhenDropped) {
    // Room for two held messages of 5 bytes.
    session_feed feed(10);
    feed.deliver({bid(0, 1), bid(1, 2), bid(2, 3), bid(3, 4)});
    EXPECT_LE(feed.held_bytes(), 10u) << "held messages beyond the bound must be forgotten";
    const auto s = feed.start(seq_t{0});
    EXPECT_TRUE(s.fill) << "what was dropped is read back from Postgres";
    const auto f = feed.filled({bid(0, 1), bid(1, 2), bid(2, 3), bid(3, 4)}, true);
    EXPECT_EQ(texts(f).back(), "bid4");
    EXPECT_EQ(feed.last(), seq_t{4});
}

TEST(SessionFeed, OverflowDuringAFillReadsAgain) {
    session_feed feed(10);
    feed.start(seq_t{0});
    EXPECT_TRUE(feed.deliver({bid(1, 2)}).fill);
    feed.deliver({bid(2, 3), bid(3, 4), bid(4, 5)});  // beyond the bound while filling
    const auto s = feed.filled({bid(0, 1)}, true);
    EXPECT_EQ(texts(s), (strings{"bid1"}));
    EXPECT_TRUE(s.fill) << "dropped messages are read again";
    const auto t = feed.filled({bid(1, 2), bid(2, 3), bid(3, 4), bid(4, 5)}, true);
    EXPECT_EQ(texts(t), (strings{"bid2", "bid3", "bid4", "bid5"}));
}

TEST(SessionFeed, BidAcceptedWaitsForItsNewBid) {
    session_feed feed(1 << 20);
    feed.start(seq_t{10});
    auto s = feed.reply(seq_t{12}, make_shared_text("accepted12"));
    EXPECT_TRUE(s.send.empty()) << "the bidder must see new_bid 12 first";
    s = feed.reply(seq_t{0}, make_shared_text("error"));
    EXPECT_TRUE(s.send.empty()) << "replies keep their order";
    s = feed.deliver({bid(10, 12)});
    EXPECT_EQ(texts(s), (strings{"bid12", "accepted12", "error"}));
}

TEST(SessionFeed, ErrorsGoOutAtOnceAndTheLastWordTakesWhatWaits) {
    session_feed feed(1 << 20);
    feed.start(seq_t{0});
    EXPECT_EQ(texts(feed.reply(seq_t{0}, make_shared_text("error"))), (strings{"error"}));
    feed.reply(seq_t{7}, make_shared_text("accepted7"));
    EXPECT_EQ(feed.waiting_replies(), 1u);
    const auto left = feed.take_replies();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(*left[0], "accepted7") << "a stored bid's acknowledgement is never lost to a close";
    EXPECT_EQ(feed.waiting_replies(), 0u);
}

}  // namespace
}  // namespace bidding
