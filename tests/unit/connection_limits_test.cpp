#include <bidding/client_address.hpp>
#include <bidding/connection_limits.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace bidding {
namespace {

ip_address ip(std::string_view text) {
    const auto a = ip_address::parse(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(ip_address{});
}

TEST(IpAddress, ParsesBothFamiliesAndUnmapsIpv4) {
    EXPECT_EQ(ip("10.0.0.1").to_string(), "10.0.0.1");
    EXPECT_EQ(ip("::ffff:10.0.0.1"), ip("10.0.0.1")) << "a dual-stack socket reports IPv4 peers mapped";
    EXPECT_TRUE(ip("::ffff:10.0.0.1").is_v4());
    EXPECT_EQ(ip("[::1]").to_string(), "::1");
    EXPECT_EQ(ip(" 2001:db8::7 ").to_string(), "2001:db8::7");
    for (const auto* bad : {"", "10.0.0", "10.0.0.256", "example.com", "1.2.3.4:80", "::g", "[::1", "10.0.0.1/8"}) {
        EXPECT_FALSE(ip_address::parse(bad)) << bad;
    }
}

TEST(IpAddress, LimitKeyIsTheAddressOrTheIpv6Slash64) {
    EXPECT_EQ(ip("192.0.2.9").limit_key(), "192.0.2.9");
    EXPECT_EQ(ip("2001:db8:1:2:aaaa::1").limit_key(), "2001:db8:1:2::/64");
    EXPECT_EQ(ip("2001:db8:1:2:bbbb::9").limit_key(), ip("2001:db8:1:2:aaaa::1").limit_key());
    EXPECT_NE(ip("2001:db8:1:3::1").limit_key(), ip("2001:db8:1:2::1").limit_key());
}

TEST(TrustedProxies, MatchesAddressesAndNetworks) {
    const auto t = trusted_proxies::parse("10.0.0.0/8, 192.168.1.7,fd00::/8 ,172.16.0.0/12,,0.0.0.0/0");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->contains(ip("10.255.0.1")));
    EXPECT_TRUE(t->contains(ip("192.168.1.7")));
    EXPECT_TRUE(t->contains(ip("fd12::1")));
    EXPECT_TRUE(t->contains(ip("172.31.255.255")));
    EXPECT_TRUE(t->contains(ip("8.8.8.8"))) << "0.0.0.0/0 is every IPv4 address";
    EXPECT_FALSE(t->contains(ip("fe80::1")));
    const auto narrow = trusted_proxies::parse("172.16.0.0/12,192.168.1.7");
    EXPECT_FALSE(narrow->contains(ip("172.32.0.1")));
    EXPECT_FALSE(narrow->contains(ip("192.168.1.8")));
    EXPECT_TRUE(trusted_proxies::parse("")->empty());
    std::string bad;
    EXPECT_FALSE(trusted_proxies::parse("10.0.0.0/8,10.0.0.0/40", &bad));
    EXPECT_EQ(bad, "10.0.0.0/40");
    EXPECT_FALSE(trusted_proxies::parse("10.0.0.0/", &bad));
    EXPECT_FALSE(trusted_proxies::parse("::/x", &bad));
}

TEST(ClientAddress, BelievesForwardedForOnlyFromTrustedProxies) {
    const auto trusted = *trusted_proxies::parse("10.0.0.0/8");
    // An untrusted peer's header is the client's own claim: ignored.
    EXPECT_EQ(client_address(ip("203.0.113.5"), "198.51.100.1", trusted), ip("203.0.113.5"));
    // A trusted proxy: the right-most address it did not add itself.
    EXPECT_EQ(client_address(ip("10.0.0.2"), "198.51.100.1", trusted), ip("198.51.100.1"));
    EXPECT_EQ(client_address(ip("10.0.0.2"), "6.6.6.6, 198.51.100.1, 10.0.0.9", trusted), ip("198.51.100.1"))
        << "the left-most entries are the client's to forge";
    EXPECT_EQ(client_address(ip("10.0.0.2"), "", trusted), ip("10.0.0.2"));
    EXPECT_EQ(client_address(ip("10.0.0.2"), "10.0.0.3,10.0.0.4", trusted), ip("10.0.0.3"))
        << "all trusted: the farthest one";
    EXPECT_EQ(client_address(ip("10.0.0.2"), "garbage, 10.0.0.7", trusted), ip("10.0.0.7"))
        << "an unreadable hop: the last address a trusted hop vouched for";
    EXPECT_EQ(client_address(ip("10.0.0.2"), "[2001:db8::1]", trusted), ip("2001:db8::1"));
    EXPECT_EQ(client_address(ip("::ffff:10.0.0.2"), "198.51.100.1", trusted), ip("198.51.100.1"));
    EXPECT_EQ(client_address(ip("10.0.0.2"), "198.51.100.1", trusted_proxies{}), ip("10.0.0.2"));
}

TEST(ConnectionLimits, CountsPerPodAndPerClientAndReleasesWithTheLease) {
    auto limits = std::make_shared<connection_limits>(3, 2);
    auto a1 = limits->admit("a");
    auto a2 = limits->admit("a");
    EXPECT_EQ(a1.result, connection_limits::verdict::admitted);
    EXPECT_EQ(a2.result, connection_limits::verdict::admitted);
    EXPECT_EQ(limits->admit("a").result, connection_limits::verdict::client_full);
    auto b1 = limits->admit("b");
    EXPECT_EQ(b1.result, connection_limits::verdict::admitted);
    EXPECT_EQ(limits->admit("c").result, connection_limits::verdict::pod_full);
    EXPECT_EQ(limits->open(), 3u);
    a1.place = {};  // released by being replaced
    EXPECT_EQ(limits->open(), 2u);
    auto a3 = limits->admit("a");
    EXPECT_EQ(a3.result, connection_limits::verdict::admitted);
    {
        auto moved = std::move(b1.place);
        EXPECT_FALSE(b1.place);
        EXPECT_EQ(limits->open(), 3u);
    }
    EXPECT_EQ(limits->open(), 2u) << "a moved lease releases once, where it ends";
    EXPECT_EQ(limits->admit("c").result, connection_limits::verdict::admitted);
}

TEST(ConnectionLimits, ZeroMeansNoLimit) {
    auto limits = std::make_shared<connection_limits>(0, 0);
    std::vector<connection_limits::lease> held;
    for (int i = 0; i < 1000; ++i) {
        auto a = limits->admit("same");
        ASSERT_EQ(a.result, connection_limits::verdict::admitted);
        held.push_back(std::move(a.place));
    }
    EXPECT_EQ(limits->open(), 1000u);
    held.clear();
    EXPECT_EQ(limits->open(), 0u);
}

// Admitted on the accepting thread, released from the sessions' threads.
TEST(ConnectionLimits, ThreadSafe) {
    auto limits = std::make_shared<connection_limits>(64, 8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                auto a = limits->admit("client-" + std::to_string((t + i) % 5));
                EXPECT_NE(a.result, connection_limits::verdict::pod_full);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(limits->open(), 0u);
}

}  // namespace
}  // namespace bidding
