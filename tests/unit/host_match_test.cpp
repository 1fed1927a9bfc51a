#include <bidding/host_match.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bidding {
namespace {

using hosts = std::vector<std::string>;

TEST(NormalizeHost, LowerCasesAndStripsPortAndTrailingDot) {
    EXPECT_EQ(normalize_host("Example.COM:8000"), "example.com");
    EXPECT_EQ(normalize_host("example.com"), "example.com");
    EXPECT_EQ(normalize_host("example.com."), "example.com");
    EXPECT_EQ(normalize_host("example.com.:80"), "example.com");
    EXPECT_EQ(normalize_host("127.0.0.1:8000"), "127.0.0.1");
}

TEST(NormalizeHost, Ipv6KeepsBrackets) {
    EXPECT_EQ(normalize_host("[::1]"), "[::1]");
    EXPECT_EQ(normalize_host("[::1]:8000"), "[::1]");
    EXPECT_EQ(normalize_host("[2001:DB8::1]:443"), "[2001:db8::1]");
}

TEST(NormalizeHost, RejectsEmptyAndMalformed) {
    for (const char* bad : {"", ":", ":80", ".", "example.com:", "example.com:80:80", "exa mple.com",
                            "example.com:8x", "[::1", "[::1]x", "[]", "[zz::1]", "user@example.com", "ex_ample.com",
                            "::1"}) {
        EXPECT_EQ(normalize_host(bad), std::nullopt) << "accepted malformed host \"" << bad << "\"";
    }
}

TEST(NormalizeHost, AuthorityAsBoostUrlParsesIt) {
    EXPECT_EQ(normalize_host("[::FFFF:1.2.3.4]:80"), "[::ffff:1.2.3.4]");
    EXPECT_EQ(normalize_host("[::]"), "[::]");
    EXPECT_EQ(normalize_host("10.0.0.1"), "10.0.0.1");
    EXPECT_EQ(normalize_host("example.com:99999"), "example.com") << "any digits are a port, as in Django";
    for (const char* bad : {"[1:2]", "[v1.x]", "[::1]:", "a%41b", "ex~ample.com", "user:pw@example.com",
                            "example.com/", "example.com?x", "example.com#x", "[::1%25eth0]"}) {
        EXPECT_EQ(normalize_host(bad), std::nullopt) << "accepted malformed host \"" << bad << "\"";
    }
}

TEST(OriginHost, UserinfoPathQueryAndFragmentAreNotTheHost) {
    EXPECT_EQ(origin_host("http://user:pw@Example.com:8000/p?q=1#f"), "example.com");
    EXPECT_EQ(origin_host("https://example.com#f"), "example.com");
    EXPECT_EQ(origin_host("HTTPS://[2001:DB8::1]"), "[2001:db8::1]");
    EXPECT_EQ(origin_host("http://exa mple.com"), std::nullopt);
    EXPECT_EQ(origin_host("http://ex_ample.com"), std::nullopt) << "the host rules of Host apply";
    EXPECT_EQ(origin_host("http://example.com:8x"), std::nullopt);
    EXPECT_EQ(origin_host("mailto:a@example.com"), std::nullopt) << "no authority";
}

TEST(OriginHost, ExtractsTheHost) {
    EXPECT_EQ(origin_host("https://app.example.com:8443"), "app.example.com");
    EXPECT_EQ(origin_host("http://EXAMPLE.com"), "example.com");
    EXPECT_EQ(origin_host("http://[::1]:8000"), "[::1]");
    EXPECT_EQ(origin_host("https://example.com/path?q#f"), "example.com");
    EXPECT_EQ(origin_host("chrome-extension://abcdef"), "abcdef");
}

TEST(OriginHost, NullAndSchemelessGiveNothing) {
    EXPECT_EQ(origin_host("null"), std::nullopt);
    EXPECT_EQ(origin_host(""), std::nullopt);
    EXPECT_EQ(origin_host("example.com"), std::nullopt);
    EXPECT_EQ(origin_host("//example.com"), std::nullopt);
    EXPECT_EQ(origin_host("http://"), std::nullopt);
    EXPECT_EQ(origin_host("1http://example.com"), std::nullopt);
    // A scheme and one character: Boost.URL 1.81 asserted on it (builds without NDEBUG), uri.hpp.
    EXPECT_EQ(origin_host("a:?"), std::nullopt);
    EXPECT_EQ(origin_host("h1:]"), std::nullopt);
}

TEST(HostAllowed, ExactMatchIsCaseInsensitive) {
    const hosts patterns{"example.com"};
    EXPECT_TRUE(host_allowed(patterns, "example.com"));
    EXPECT_TRUE(host_allowed(patterns, "EXAMPLE.com:8000"));
    EXPECT_TRUE(host_allowed(hosts{"Example.COM"}, "example.com")) << "patterns must be lower-cased";
    EXPECT_FALSE(host_allowed(patterns, "www.example.com")) << "an exact pattern must not match subdomains";
    EXPECT_FALSE(host_allowed(patterns, "notexample.com"));
    EXPECT_FALSE(host_allowed(patterns, "example.com.evil.org"));
}

TEST(HostAllowed, LeadingDotMatchesDomainAndSubdomains) {
    const hosts patterns{".example.com"};
    EXPECT_TRUE(host_allowed(patterns, "example.com"));
    EXPECT_TRUE(host_allowed(patterns, "app.example.com"));
    EXPECT_TRUE(host_allowed(patterns, "a.b.example.com:443"));
    EXPECT_FALSE(host_allowed(patterns, "badexample.com")) << "suffix match must stop at a dot";
    EXPECT_FALSE(host_allowed(patterns, "example.org"));
}

TEST(HostAllowed, WildcardMatchesAnyWellFormedHost) {
    const hosts patterns{"*"};
    EXPECT_TRUE(host_allowed(patterns, "anything.example"));
    EXPECT_TRUE(host_allowed(patterns, "[::1]:1"));
    EXPECT_FALSE(host_allowed(patterns, "")) << "a missing Host is never allowed";
    EXPECT_FALSE(host_allowed(patterns, "bad host"));
}

TEST(HostAllowed, DefaultsCoverLocalhostAndLoopback) {
    const hosts patterns{"localhost", "127.0.0.1", "[::1]"};
    EXPECT_TRUE(host_allowed(patterns, "localhost:8000"));
    EXPECT_TRUE(host_allowed(patterns, "127.0.0.1:8000"));
    EXPECT_TRUE(host_allowed(patterns, "[::1]:8000"));
    EXPECT_FALSE(host_allowed(patterns, "127.0.0.2"));
    EXPECT_FALSE(host_allowed(patterns, "[::2]"));
    EXPECT_FALSE(host_allowed(hosts{}, "localhost")) << "an empty list allows nothing";
}

TEST(RequestAllowed, HostRequiredAndOriginOptional) {
    const hosts patterns{".example.com"};
    EXPECT_TRUE(request_allowed(patterns, "api.example.com", std::nullopt)) << "no Origin: Host decides";
    EXPECT_FALSE(request_allowed(patterns, "", std::nullopt)) << "missing Host must be refused";
    EXPECT_FALSE(request_allowed(patterns, "evil.org", std::nullopt));
}

TEST(RequestAllowed, OriginMustBeAllowedWhenPresent) {
    const hosts patterns{".example.com"};
    EXPECT_TRUE(request_allowed(patterns, "api.example.com", "https://app.example.com"));
    EXPECT_FALSE(request_allowed(patterns, "api.example.com", "https://evil.org"))
        << "a cross-site Origin must be refused";
    EXPECT_FALSE(request_allowed(patterns, "evil.org", "https://app.example.com")) << "Host is still checked";
}

TEST(RequestAllowed, NullOrUnparsableOriginOnlyWithWildcard) {
    const hosts strict{"example.com"};
    EXPECT_FALSE(request_allowed(strict, "example.com", "null"));
    EXPECT_FALSE(request_allowed(strict, "example.com", "example.com")) << "schemeless Origin is unparsable";
    EXPECT_FALSE(request_allowed(strict, "example.com", ""));
    const hosts any{"*"};
    EXPECT_TRUE(request_allowed(any, "example.com", "null"));
    EXPECT_TRUE(request_allowed(any, "example.com", "garbage"));
    EXPECT_TRUE(request_allowed(any, "example.com", "https://whatever.org"));
}

}  // namespace
}  // namespace bidding
