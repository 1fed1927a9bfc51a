#include <bidding/bus_codec.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

const std::string key = derive_bus_key("a-secret-key-of-at-least-32-characters!", "");

TEST(BusCodec, ChannelsCarryThePrefixAndTheAuction) {
    const bus_codec codec("bidding:shop:", key);
    EXPECT_EQ(codec.channel(auction_id{42}), "bidding:shop:auction:42");
    EXPECT_EQ(codec.auction_of("bidding:shop:auction:42"), auction_id{42});
    EXPECT_FALSE(codec.auction_of("bidding:other:auction:42")) << "another deployment's channel";
    EXPECT_FALSE(codec.auction_of("bidding:shop:auction:0"));
    EXPECT_FALSE(codec.auction_of("bidding:shop:auction:4x"));
}

TEST(BusCodec, BidsRoundTrip) {
    const bus_codec codec("p:", key);
    const fanout_message m{seq_t{40}, seq_t{43}, make_shared_text(R"({"type":"new_bid","seq":43})")};
    const auto payload = codec.encode_bid(auction_id{7}, m, 1234567);
    const auto decoded = codec.decode(auction_id{7}, payload);
    ASSERT_TRUE(decoded);
    const auto& b = std::get<bus_bid>(*decoded);
    EXPECT_EQ(b.event.prev, seq_t{40});
    EXPECT_EQ(b.event.seq, seq_t{43});
    EXPECT_EQ(*b.event.text, *m.text) << "the client message travels byte for byte";
    EXPECT_EQ(b.committed_us, 1234567);
}

TEST(BusCodec, ClosesAndHoldsRoundTrip) {
    const bus_codec codec("p:", key);
    const auto close = codec.decode(auction_id{3}, codec.encode_close(auction_id{3}, R"({"type":"bid_closed"})"));
    ASSERT_TRUE(close);
    EXPECT_EQ(*std::get<bus_close>(*close).text, R"({"type":"bid_closed"})");
    const auto hold = codec.decode(auction_id{3}, codec.encode_hold(auction_id{3}, std::chrono::milliseconds(300)));
    ASSERT_TRUE(hold);
    EXPECT_EQ(std::get<bus_hold>(*hold).duration, std::chrono::milliseconds(300));
}

TEST(BusCodec, RefusesWhatNoPodOfThisDeploymentSigned) {
    const bus_codec codec("p:", key);
    const fanout_message m{seq_t{0}, seq_t{5}, make_shared_text(R"({"type":"new_bid","seq":5,"price":"1.00"})")};
    const auto payload = codec.encode_bid(auction_id{9}, m, 1);
    EXPECT_FALSE(codec.decode(auction_id{9}, "bid 0 5 1\n{}")) << "unsigned, as another program would publish it";
    EXPECT_FALSE(codec.decode(auction_id{10}, payload)) << "copied from another auction's channel";
    auto tampered = payload;
    tampered.replace(tampered.find("1.00"), 4, "9.99");
    EXPECT_FALSE(codec.decode(auction_id{9}, tampered)) << "a body changed in transit";
    const bus_codec other("p:", derive_bus_key("another-deployment-key-0123456789abcdef", ""));
    EXPECT_FALSE(other.decode(auction_id{9}, payload)) << "another deployment's key";
    EXPECT_FALSE(codec.decode(auction_id{9}, "close " + std::string(32, '0') + "\n{}"));
    EXPECT_FALSE(codec.decode(auction_id{9}, ""));
    EXPECT_FALSE(codec.decode(auction_id{9}, "no newline"));
}

TEST(BusCodec, RefusesMalformedHeadersEvenWhenSigned) {
    // A signature over a nonsensical header must not produce an event.
    const bus_codec codec("p:", key);
    const fanout_message backwards{seq_t{9}, seq_t{5}, make_shared_text("{}")};
    EXPECT_FALSE(codec.decode(auction_id{1}, codec.encode_bid(auction_id{1}, backwards, 1)))
        << "seq must be above prev";
}

TEST(BusCodec, TheKeyComesFromTheSecretOrElseTheDatabaseSettings) {
    EXPECT_EQ(derive_bus_key("k1", "db"), derive_bus_key("k1", "other db"));
    EXPECT_NE(derive_bus_key("k1", "db"), derive_bus_key("k2", "db"));
    EXPECT_NE(derive_bus_key("", "db one"), derive_bus_key("", "db two"));
    EXPECT_EQ(derive_bus_key("", "db").size(), 32u);
}

}  // namespace
}  // namespace bidding
