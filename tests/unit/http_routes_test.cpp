#include <bidding/http_routes.hpp>

#include <gtest/gtest.h>

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
    EXPECT_EQ(route_http("POST", "/healthz", healthy(), [] { return std::string(); }).status, 405u);
    EXPECT_EQ(get("/ws/bid/1").status, 426u) << "a plain GET on the WebSocket endpoint needs an upgrade";
    EXPECT_EQ(get("/nope").status, 404u);
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
