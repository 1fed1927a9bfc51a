#include <bidding/api_routes.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/jwt.hpp>

#include "fakes.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace bidding {
namespace {

const std::vector<std::string> local_hosts{"localhost", "127.0.0.1", "[::1]"};

TEST(MatchWsBidPath, AcceptsIdWithOrWithoutTrailingSlashAndQuery) {
    EXPECT_EQ(match_ws_bid_path("/ws/bid/1"), auction_id{1});
    EXPECT_EQ(match_ws_bid_path("/ws/bid/42/"), auction_id{42});
    EXPECT_EQ(match_ws_bid_path("/ws/bid/42?since=7"), auction_id{42});
    EXPECT_EQ(match_ws_bid_path("/ws/bid/42/?since=7"), auction_id{42});
    EXPECT_EQ(match_ws_bid_path("/ws/bid/9223372036854775807"), auction_id{9223372036854775807LL})
        << "max int64 id must route";
}

TEST(MatchWsBidPath, RejectsIdsThatAreNotPositive64BitIntegers) {
    for (const char* bad : {"/ws/bid/", "/ws/bid/0", "/ws/bid/-1", "/ws/bid/+1", "/ws/bid/abc", "/ws/bid/1a",
                            "/ws/bid/1.5", "/ws/bid/9223372036854775808", "/ws/bid/99999999999999999999",
                            "/ws/bid/1//", "/ws/bid/1/extra", "/ws/bids/1", "/ws/bid", "/bid/1", "/ws/bid/ 1"}) {
        EXPECT_FALSE(match_ws_bid_path(bad).has_value()) << bad << " must not route to an auction";
    }
}

TEST(DecideUpgrade, ForbiddenHostOrOriginGives403BeforePathCheck) {
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/1", "evil.com", std::nullopt).status, 403u);
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/1", "localhost:8000", std::string_view("http://evil.com")).status,
              403u);
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/abc", "evil.com", std::nullopt).status, 403u);
}

TEST(DecideUpgrade, BadIdGives404AndGoodRequestUpgrades) {
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/abc", "localhost:8000", std::nullopt).status, 404u);
    const auto ok = decide_upgrade(local_hosts, "/ws/bid/7/", "127.0.0.1:8000", std::string_view("http://localhost:3000"));
    EXPECT_EQ(ok.status, 0u);
    EXPECT_EQ(ok.id, auction_id{7});
}

TEST(DecideUpgrade, SinceIsANonNegativeIntegerOrTheRequestIs400) {
    const auto ok = decide_upgrade(local_hosts, "/ws/bid/3?since=17", "localhost", std::nullopt);
    EXPECT_EQ(ok.status, 0u);
    EXPECT_EQ(ok.since, seq_t{17});
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3/?x=1&since=0", "localhost", std::nullopt).since, seq_t{0});
    EXPECT_FALSE(decide_upgrade(local_hosts, "/ws/bid/3", "localhost", std::nullopt).since.has_value())
        << "without since the client gets the newest-first history";
    for (const char* bad : {"/ws/bid/3?since=", "/ws/bid/3?since=-1", "/ws/bid/3?since=abc", "/ws/bid/3?since=1.5",
                            "/ws/bid/3?since=99999999999999999999", "/ws/bid/3?since"}) {
        EXPECT_EQ(decide_upgrade(local_hosts, bad, "localhost", std::nullopt).status, 400u) << bad;
    }
}

TEST(QueryParam, FindsTheNamedParameter) {
    EXPECT_EQ(query_param("/p?a=1&since=5", "since"), "5");
    EXPECT_EQ(query_param("/p?sincere=5", "since"), std::nullopt);
    EXPECT_EQ(query_param("/p", "since"), std::nullopt);
}

TEST(QueryParam, ValuesAndNamesArePercentDecoded) {
    EXPECT_EQ(query_param("/ws/bid/1?token=a%2Bb", "token"), "a+b");
    EXPECT_EQ(query_param("/ws/bid/1?since=%35", "since"), "5");
    EXPECT_EQ(query_param("/p?sin%63e=7", "since"), "7") << "the name is compared decoded";
    EXPECT_EQ(query_param("/p?t=a+b", "t"), "a+b") << "a plus is a plus, as before (RFC 3986, not a form)";
    EXPECT_EQ(query_param("/p?t=a%20b%26c%3Dd", "t"), "a b&c=d");
}

TEST(QueryParam, RepeatedNamesGiveTheFirstAndEmptyValuesAreEmpty) {
    EXPECT_EQ(query_param("/p?since=1&since=2", "since"), "1");
    EXPECT_EQ(query_param("/p?x=1&since=&since=2", "since"), "");
    EXPECT_EQ(query_param("/p?since", "since"), "");
    EXPECT_EQ(query_param("/p?&&since=3&", "since"), "3");
    EXPECT_EQ(query_param("/p?", "since"), std::nullopt);
}

TEST(QueryParam, AnInvalidTargetHasNoParameters) {
    EXPECT_EQ(query_param("/p?since=%zz", "since"), std::nullopt) << "a bad percent escape";
    EXPECT_EQ(query_param("/p?x=%4&since=5", "since"), std::nullopt) << "a truncated escape spoils the whole target";
    EXPECT_EQ(query_param("/p?since=5#frag", "since"), std::nullopt) << "a request target has no fragment";
    EXPECT_EQ(query_param("http://localhost/p?since=5", "since"), std::nullopt) << "absolute-form";
}

TEST(ValidTarget, OriginFormAsBoostUrlReadsIt) {
    for (const char* good : {"/", "/ws/bid/1", "/ws/bid/1?since=5&token=a.b-c_d", "/api/bids?status=op%65n",
                             "/a%2Fb", "//x", "/p?", "/p?a=b=c&&"}) {
        EXPECT_TRUE(valid_target(good)) << good;
    }
    for (const char* bad : {"", "*", "ws/bid/1", "http://localhost/ws/bid/1", "/ws/bid/1#frag", "/p#", "/p?x=%zz",
                            "/p?x=%4", "/%", "/a b", "/a|b", "/p?a=[x]", "/p?a=\"b\""}) {
        EXPECT_FALSE(valid_target(bad)) << bad;
    }
    EXPECT_NE(bad_target_body().find(R"("error":"bad_request")"), std::string::npos) << bad_target_body();
}

TEST(PathOf, TheEncodedPathOfAValidTarget) {
    EXPECT_EQ(path_of("/ws/bid/1?since=5"), "/ws/bid/1");
    EXPECT_EQ(path_of("/a%2Fb/c?x=%31"), "/a%2Fb/c") << "the path stays percent-encoded";
    EXPECT_EQ(path_of("/p?"), "/p");
    EXPECT_EQ(path_of("/p#frag"), "") << "an invalid target has no path";
    EXPECT_EQ(path_of("/p?x=%zz"), "");
}

TEST(MatchWsBidPath, ThePathIsMatchedPercentEncoded) {
    EXPECT_FALSE(match_ws_bid_path("/ws/bid/%31").has_value()) << "ids are digits as sent, as before";
    EXPECT_FALSE(match_ws_bid_path("/ws/bid/1#x").has_value());
}

TEST(DecideUpgrade, SinceIsPercentDecodedAndInvalidTargetsFindNoAuction) {
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3?since=%35", "localhost", std::nullopt).since, seq_t{5});
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3?since=%20", "localhost", std::nullopt).status, 400u)
        << "a decoded space is not an integer";
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3?since=4&since=x", "localhost", std::nullopt).since, seq_t{4})
        << "the first since counts";
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3?since=%zz", "localhost", std::nullopt).status, 404u)
        << "the HTTP session answers such a target 400 before this";
    EXPECT_EQ(decide_upgrade(local_hosts, "/ws/bid/3?since=%zz", "evil.com", std::nullopt).status, 403u);
}

TEST(RoutePage, InvalidTargetsAreNoPage) {
    EXPECT_TRUE(route_page("GET", "/bid/1?x=%41").has_value());
    EXPECT_FALSE(route_page("GET", "/bid/1?x=%zz").has_value());
    EXPECT_FALSE(route_page("GET", "/#top").has_value());
}

// ---- route_api: the path's segments and the decoded query -----------------------------------------

struct api_fixture {
    std::shared_ptr<testing::fake_database> db = std::make_shared<testing::fake_database>();
    testing::fake_store store{db};
    api_fixture() {
        db->add_auction("lot", cents{100});
    }
    // The status of GET target, run against the fake store when the route needs it.
    unsigned get(std::string_view target, std::string* body = nullptr) {
        auto route = route_api(api_request{"GET", target, "", ""}, "", 0);
        api_reply r = route.reply ? std::move(*route.reply) : route.job(store);
        if (body != nullptr) {
            *body = r.body;
        }
        return r.status;
    }
};

TEST(RouteApi, PathSegmentsAsBefore) {
    api_fixture api;
    EXPECT_EQ(api.get("/api/bids"), 200u);
    EXPECT_EQ(api.get("/api/bids/"), 200u) << "one trailing slash is ignored";
    EXPECT_EQ(api.get("/api/bids/1"), 200u);
    EXPECT_EQ(api.get("/api/bids/1/"), 200u);
    EXPECT_EQ(api.get("/api/bids/1/history"), 200u);
    EXPECT_EQ(api.get("/api/bids/1/history/"), 200u);
    for (const char* missing : {"/api/bidsX", "/api/bids//", "/api/bids//1", "/api/bids/1//", "/api/bids/1/nothing",
                                "/api/bids/1/close/again", "/api/bids/1/history/2", "/api/bids/abc/history",
                                "/api/bids/%31", "/api/bids/1%2Fhistory", "/api/bids/987654321", "/api"}) {
        EXPECT_EQ(api.get(missing), 404u) << missing;
    }
    EXPECT_EQ(api.get("/api/bids?status=%zz"), 404u) << "the HTTP session answers such a target 400 before this";
}

TEST(RouteApi, QueryValuesArePercentDecodedAndTheFirstOfARepeatedNameCounts) {
    api_fixture api;
    std::string body;
    EXPECT_EQ(api.get("/api/bids?status=op%65n&limit=%31%30", &body), 200u) << body;
    EXPECT_NE(body.find(R"("limit":10,)"), std::string::npos) << body;
    EXPECT_EQ(api.get("/api/bids?limit=2&limit=abc", &body), 200u) << body;
    EXPECT_NE(body.find(R"("limit":2,)"), std::string::npos) << body;
    EXPECT_EQ(api.get("/api/bids?limit=abc&limit=2"), 400u);
    EXPECT_EQ(api.get("/api/bids?status=sold"), 400u);
    EXPECT_EQ(api.get("/api/bids?offset=%2D1"), 400u) << "a decoded -1";
    EXPECT_EQ(api.get("/api/bids/1/history?since=%30&limit=%35", &body), 200u) << body;
    EXPECT_NE(body.find(R"("since":0,"limit":5,)"), std::string::npos) << body;
}

service_status healthy() {
    service_status s;
    s.app_name = "bidding-server";
    s.app_version = "1.2.3";
    s.env = "test";
    s.postgres_up = true;
    s.redis_configured = true;
    s.redis_connected = true;
    return s;
}

http_reply get(std::string_view target, const service_status& s = healthy()) {
    return route_http("GET", target, s, [] { return std::string("bidding_connections_open 0\n"); });
}

TEST(RouteHttp, HealthzUpgradeRequiredNotFoundAndMethods) {
    EXPECT_EQ(get("/healthz").status, 200u);
    const auto post = route_http("POST", "/healthz", healthy(), [] { return std::string(); });
    EXPECT_EQ(post.status, 405u);
    const auto allow = std::find_if(post.headers.begin(), post.headers.end(), [](const auto& h) { return h.first == "Allow"; });
    ASSERT_NE(allow, post.headers.end()) << "a 405 names the methods that work (RFC 9110 15.5.6)";
    EXPECT_EQ(allow->second, "GET");
    EXPECT_EQ(get("/ws/bid/1").status, 426u) << "a plain GET on the WebSocket endpoint needs an upgrade";
    EXPECT_EQ(get("/nope").status, 404u);
}

TEST(RouteHttp, AnInvalidTargetIsNotFound) {
    EXPECT_EQ(get("/healthz#x").status, 404u) << "the HTTP session answers such a target 400 before this";
    EXPECT_EQ(get("/ws/bid/1?x=%zz").status, 404u);
    EXPECT_EQ(get("/healthz?x=%41").status, 200u);
}

TEST(RouteHttp, ReadyWhilePostgresAnswersAndNotDrainingWithRedisStateInTheBody) {
    EXPECT_EQ(get("/readyz").status, 200u);
    auto s = healthy();
    s.postgres_up = false;
    auto r = get("/readyz", s);
    EXPECT_EQ(r.status, 503u) << "a pod without Postgres must leave the load balancer";
    EXPECT_NE(r.body.find("postgres unreachable"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("postgres":"unavailable")"), std::string::npos) << r.body;
    s = healthy();
    EXPECT_EQ(get("/readyz", s).body, R"({"status":"ready","postgres":"ok","redis":"ok"})");
    s.redis_connected = false;
    r = get("/readyz", s);
    EXPECT_EQ(r.status, 200u) << "every pod loses Redis at once: a 503 from all would take the service down";
    EXPECT_EQ(r.body, R"({"status":"ready","postgres":"ok","redis":"unavailable"})");
    s.redis_configured = false;
    EXPECT_EQ(get("/readyz", s).body, R"({"status":"ready","postgres":"ok","redis":"not_configured"})");
    s = healthy();
    s.draining = true;
    r = get("/readyz", s);
    EXPECT_EQ(r.status, 503u) << "a draining pod must receive no new clients";
    EXPECT_NE(r.body.find("draining"), std::string::npos) << r.body;
    EXPECT_EQ(get("/healthz", s).status, 200u) << "draining is not dead: liveness must stay green";
}

TEST(RouteHttp, VersionAndMetrics) {
    EXPECT_EQ(get("/version").body, R"({"name":"bidding-server","version":"1.2.3","env":"test"})");
    const auto m = get("/metrics");
    EXPECT_EQ(m.status, 200u);
    EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(m.body, "bidding_connections_open 0\n");
}

}  // namespace
}  // namespace bidding

namespace bidding {
namespace {

// A bidder identity comes from a bidder token only: an admin token (or one without a role) is
// refused on the WebSocket, so a leaked admin token cannot bid as "admin".
TEST(DecideIdentity, OnlyBidderTokensAreIdentities) {
    const std::string key(32, 'k');
    const auto token = [&](nlohmann::json claims) {
        claims["exp"] = 2'000'000'000;
        return sign_jwt(claims, key);
    };
    const auto bidder = decide_identity(token({{"sub", "ann"}, {"role", "bidder"}}), key, false, 1000);
    EXPECT_FALSE(bidder.refused);
    EXPECT_EQ(bidder.name, "ann");
    for (const auto& claims : {nlohmann::json{{"sub", "admin"}, {"role", "admin"}}, nlohmann::json{{"sub", "ann"}},
                               nlohmann::json{{"sub", "ann"}, {"role", "Bidder"}}}) {
        const auto refused = decide_identity(token(claims), key, false, 1000);
        EXPECT_TRUE(refused.refused) << claims.dump();
        EXPECT_FALSE(refused.name) << claims.dump();
    }
    EXPECT_TRUE(decide_identity(token({{"sub", "ann\u202e"}, {"role", "bidder"}}), key, false, 1000).refused);
    EXPECT_FALSE(decide_identity(std::nullopt, key, false, 1000).refused);
    EXPECT_TRUE(decide_identity(std::nullopt, key, true, 1000).refused);
}

}  // namespace
}  // namespace bidding

namespace bidding {
namespace {

TEST(OversizedHead, RequestLineOrHeaders) {
    EXPECT_EQ(oversized_head_status("GET /" + std::string(9000, 'x')), 414u) << "the line never ended";
    EXPECT_EQ(oversized_head_status("GET / HTTP/1.1\r\nX: " + std::string(9000, 'y')), 431u);
    EXPECT_EQ(oversized_head_status(""), 414u);
}

TEST(RefusalReply, StatusCodeAndRetryAfter) {
    const auto full = refusal_reply(503, 7);
    EXPECT_EQ(full.status, 503u);
    EXPECT_EQ(nlohmann::json::parse(full.body)["error"], "server_full");
    EXPECT_NE(full.body.find(" 7 "), std::string::npos) << full.body;
    ASSERT_EQ(full.headers.size(), 1u);
    EXPECT_EQ(full.headers[0], (std::pair<std::string, std::string>{"Retry-After", "5"}));
    const auto mine = refusal_reply(429, 3);
    EXPECT_EQ(nlohmann::json::parse(mine.body)["error"], "too_many_connections");
    EXPECT_NE(mine.body.find("at most 3 "), std::string::npos) << mine.body;
    for (const auto& [status, code] : std::vector<std::pair<unsigned, std::string>>{
             {414, "uri_too_long"}, {431, "headers_too_large"}, {413, "payload_too_large"}, {400, "bad_request"}}) {
        const auto r = refusal_reply(status);
        EXPECT_EQ(r.status, status);
        EXPECT_EQ(r.content_type, "application/json");
        EXPECT_EQ(nlohmann::json::parse(r.body)["error"], code);
        EXPECT_TRUE(r.headers.empty());
    }
}

}  // namespace
}  // namespace bidding
