// Timed auctions (docs/timed-auctions.md): the wire's times, the end and soft-close rule, the
// API's body, and the closer over the in-memory store (one close per auction, however many
// closers sweep).
#include "fakes.hpp"

#include <bidding/api_body.hpp>
#include <bidding/auction_closer.hpp>
#include <bidding/bid_rule.hpp>
#include <bidding/timestamp.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <thread>

namespace bidding {
namespace {

using namespace std::chrono;
using std::chrono::seconds;

const timestamp five_pm{sys_days{year{2026} / 12 / 2} + hours{17}};  // 2026-12-02T17:00:00.000Z

TEST(Timestamp, FormatsUtcWithMilliseconds) {
    EXPECT_EQ(format_timestamp(five_pm), "2026-12-02T17:00:00.000Z");
    EXPECT_EQ(format_timestamp(five_pm + milliseconds{61'007}), "2026-12-02T17:01:01.007Z");
    EXPECT_EQ(format_timestamp(timestamp{}), "1970-01-01T00:00:00.000Z");
}

TEST(Timestamp, FormatsTheHttpDate) {
    EXPECT_EQ(format_http_date(five_pm + milliseconds{999}), "Wed, 02 Dec 2026 17:00:00 GMT");
    EXPECT_EQ(format_http_date(timestamp{}), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(format_http_date(timestamp{sys_days{year{2024} / 2 / 29}}), "Thu, 29 Feb 2024 00:00:00 GMT");
}

TEST(Timestamp, ParsesZonesAndFractions) {
    EXPECT_EQ(parse_timestamp("2026-12-02T17:00:00Z"), five_pm);
    EXPECT_EQ(parse_timestamp("2026-12-02T17:00:00.000Z"), five_pm);
    EXPECT_EQ(parse_timestamp("2026-12-02T17:00:00.5Z"), five_pm + milliseconds{500});
    EXPECT_EQ(parse_timestamp("2026-12-02T17:00:00.123456789Z"), five_pm + milliseconds{123})
        << "digits past the millisecond are dropped, never rounded into the next one";
    EXPECT_EQ(parse_timestamp("2026-12-02T18:30:00+01:30"), five_pm);
    EXPECT_EQ(parse_timestamp("2026-12-02T12:00:00-05:00"), five_pm);
    EXPECT_EQ(parse_timestamp("2026-12-02 17:00:00z"), five_pm);
    EXPECT_EQ(parse_timestamp("2024-02-29T00:00:00Z").has_value(), true);
    for (const char* bad : {"", "2026-12-02", "2026-12-02T17:00:00", "2026-12-02T17:00:00+0100",
                            "2026-12-02T17:00:00.Z", "2026-13-02T17:00:00Z", "2026-02-30T17:00:00Z",
                            "2025-02-29T00:00:00Z", "2026-12-02T24:00:00Z", "2026-12-02T17:60:00Z",
                            "2026-12-02T17:00:60Z", "1969-12-31T23:59:59Z", "2026-12-02T17:00:00Z ",
                            " 2026-12-02T17:00:00Z", "2026-12-02T17:00:00+24:00", "+2026-12-02T17:00:00Z",
                            "2026-12-02T17:00:00.12345678901Z", "2026/12/02T17:00:00Z"}) {
        EXPECT_FALSE(parse_timestamp(bad).has_value()) << bad;
    }
}

TEST(Timestamp, RoundTrips) {
    for (const auto t : {five_pm, five_pm + milliseconds{1}, timestamp{milliseconds{253'402'300'799'999}}}) {
        EXPECT_EQ(parse_timestamp(format_timestamp(t)), t) << format_timestamp(t);
    }
}

TEST(Duration, ParsesUnitsInOrder) {
    EXPECT_EQ(parse_duration("90"), seconds{90});
    EXPECT_EQ(parse_duration("30s"), seconds{30});
    EXPECT_EQ(parse_duration("15m"), seconds{900});
    EXPECT_EQ(parse_duration("1h"), seconds{3600});
    EXPECT_EQ(parse_duration("7d"), seconds{604'800});
    EXPECT_EQ(parse_duration("1h30m"), seconds{5400});
    EXPECT_EQ(parse_duration("2m30s"), seconds{150});
    for (const char* bad : {"", "h", "0", "0h", "-1h", "1.5h", "1w", "30m1h", "1m1m", "1h30", "1 h", "m30",
                            "99999999999999999999s", "40000d"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    }
}

auction_terms soft_close(timestamp ends_at, seconds window, seconds by, cents increment = cents{1}) {
    return auction_terms{ends_at, window, by, increment};
}

TEST(TimedBidRule, TheEndIsDecidedByTheGivenClock) {
    const auction_terms terms{five_pm, std::nullopt, std::nullopt, cents{1}};
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{100}, cents{101}, five_pm - milliseconds{1}).verdict,
              bid_verdict::accepted)
        << "one millisecond before the end a bid is on time";
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{100}, cents{101}, five_pm).verdict, bid_verdict::closed)
        << "at the end itself the auction is over";
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{100}, cents{101}, five_pm + seconds{1}).verdict,
              bid_verdict::closed)
        << "after the end a bid is refused even while the status still says open";
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{100}, cents{100}, five_pm + seconds{1}).verdict,
              bid_verdict::closed)
        << "an ended auction says closed, whatever the price";
}

TEST(TimedBidRule, MinimumIncrementAtTheBoundary) {
    const auction_terms terms{std::nullopt, std::nullopt, std::nullopt, cents{100}};
    EXPECT_EQ(min_price(cents{5000}, cents{100}), cents{5100});
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{5000}, cents{5100}, five_pm).verdict, bid_verdict::accepted);
    EXPECT_EQ(judge_bid(auction_status::open, terms, cents{5000}, cents{5099}, five_pm).verdict,
              bid_verdict::price_too_low);
    EXPECT_EQ(judge_bid(auction_status::open, cents{5000}, cents{5001}), bid_verdict::accepted)
        << "without terms the old rule holds: one cent more is enough";
    EXPECT_EQ(judge_bid(auction_status::open, cents{5000}, cents{5000}), bid_verdict::price_too_low);
}

TEST(TimedBidRule, SoftCloseMovesTheEndOnlyInsideTheWindow) {
    const auto terms = soft_close(five_pm, seconds{120}, seconds{120});
    const auto early = judge_bid(auction_status::open, terms, cents{100}, cents{200}, five_pm - seconds{121});
    EXPECT_EQ(early.verdict, bid_verdict::accepted);
    EXPECT_EQ(early.ends_at, five_pm) << "a bid before the window leaves the end alone";
    const auto edge = judge_bid(auction_status::open, terms, cents{100}, cents{200}, five_pm - seconds{120});
    EXPECT_EQ(edge.ends_at, five_pm) << "at the window's start: moved to that bid + 120 s, which is the end itself";
    const auto late = judge_bid(auction_status::open, terms, cents{100}, cents{200}, five_pm - milliseconds{1});
    EXPECT_EQ(late.ends_at, five_pm + seconds{120} - milliseconds{1}) << "two minutes after that bid";
    const auto too_low = judge_bid(auction_status::open, terms, cents{100}, cents{100}, five_pm - seconds{1});
    EXPECT_EQ(too_low.verdict, bid_verdict::price_too_low);
    EXPECT_EQ(too_low.ends_at, five_pm) << "a refused bid never extends";
    const auto short_by = judge_bid(auction_status::open, soft_close(five_pm, seconds{120}, seconds{30}), cents{100},
                                    cents{200}, five_pm - seconds{100});
    EXPECT_EQ(short_by.ends_at, five_pm) << "an extension never brings the end closer";
    const auto no_end = judge_bid(auction_status::open, auction_terms{}, cents{100}, cents{200}, five_pm);
    EXPECT_FALSE(no_end.ends_at.has_value());
}

new_auction parsed(std::string_view body) {
    auto r = parse_new_auction(body);
    if (auto* e = std::get_if<body_error>(&r)) {
        ADD_FAILURE() << body << ": " << e->code << " " << e->message;
        return {};
    }
    return std::get<new_auction>(r);
}

std::string refusal(std::string_view body) {
    const auto r = parse_new_auction(body);
    const auto* e = std::get_if<body_error>(&r);
    return e ? e->code : std::string("accepted");
}

TEST(NewAuctionBody, TimedFields) {
    const auto a = parsed(R"({"name":"Lamp","ends_at":"2026-12-02T17:00:00.000Z","extend_window":120,)"
                          R"("extend_by":60,"min_increment":"1.00"})");
    EXPECT_EQ(a.ends_at, five_pm);
    EXPECT_FALSE(a.duration.has_value());
    EXPECT_EQ(a.extend_window, seconds{120});
    EXPECT_EQ(a.extend_by, seconds{60});
    EXPECT_EQ(a.min_increment, cents{100});
    const auto b = parsed(R"({"name":"Lamp","duration":6,"min_increment":0.5})");
    EXPECT_EQ(b.duration, seconds{6});
    EXPECT_EQ(b.min_increment, cents{50});
    const auto c = parsed(R"({"name":"Lamp","ends_at":null,"duration":null,"extend_window":null,"extend_by":null})");
    EXPECT_FALSE(c.ends_at || c.duration || c.extend_window || c.extend_by) << "null means none";
    EXPECT_EQ(c.min_increment, cents{1}) << "the default increment is 0.01";
}

TEST(NewAuctionBody, RefusesBadTimedFields) {
    EXPECT_EQ(refusal(R"({"name":"x","ends_at":"tomorrow"})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","ends_at":"2026-12-02T17:00:00"})"), "invalid_ends_at") << "no zone";
    EXPECT_EQ(refusal(R"({"name":"x","ends_at":1796000000})"), "bad_request");
    EXPECT_EQ(refusal(R"({"name":"x","ends_at":"2026-12-02T17:00:00Z","duration":60})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":0})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":-5})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":1.5})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":1e3})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":31536001})"), "invalid_ends_at");
    EXPECT_EQ(refusal(R"({"name":"x","duration":31536000})"), "accepted");
    EXPECT_EQ(refusal(R"({"name":"x","duration":"60"})"), "bad_request");
    EXPECT_EQ(refusal(R"({"name":"x","duration":60,"extend_window":10})"), "invalid_extension");
    EXPECT_EQ(refusal(R"({"name":"x","extend_window":10,"extend_by":10})"), "invalid_extension") << "needs an end";
    EXPECT_EQ(refusal(R"({"name":"x","duration":60,"extend_window":0,"extend_by":10})"), "invalid_extension");
    EXPECT_EQ(refusal(R"({"name":"x","duration":60,"extend_window":86401,"extend_by":10})"), "invalid_extension");
    EXPECT_EQ(refusal(R"({"name":"x","duration":60,"extend_window":"10","extend_by":10})"), "bad_request");
    EXPECT_EQ(refusal(R"({"name":"x","min_increment":0})"), "invalid_price");
    EXPECT_EQ(refusal(R"({"name":"x","min_increment":"-1"})"), "invalid_price");
    EXPECT_EQ(refusal(R"({"name":"x","min_increment":true})"), "bad_request");
}

// The closer over the in-memory database, whose clock the test sets.
struct closer_fixture : ::testing::Test {
    // spdlog's registry is made on first use: the server makes it at start (logging.cpp) before
    // any thread; so does this test, rather than in four closer threads at once (libspdlog is not
    // instrumented, so ThreadSanitizer cannot see the guard of that initialization).
    closer_fixture() { spdlog::default_logger_raw(); }

    std::shared_ptr<testing::fake_database> db = std::make_shared<testing::fake_database>();
    server_clock clock;
    std::vector<std::pair<auction_id, std::string>> told;
    std::mutex told_mutex;

    std::unique_ptr<auction_closer> make_closer(milliseconds interval = milliseconds{1000}) {
        return std::make_unique<auction_closer>(testing::fake_store::factory(db), nullptr, interval, milliseconds{1000},
                                                clock, [this](auction_id id, const std::string& text) {
                                                    std::lock_guard lock(told_mutex);
                                                    told.emplace_back(id, text);
                                                });
    }
};

TEST_F(closer_fixture, ClosesOnlyWhatHasEndedByTheDatabaseClock) {
    db->set_now(five_pm - seconds{1});
    const auto soon = db->add_timed_auction("soon", cents{5000}, auction_terms{five_pm, {}, {}, cents{1}});
    const auto later = db->add_timed_auction("later", cents{5000}, auction_terms{five_pm + seconds{60}, {}, {}, cents{1}});
    const auto endless = db->add_auction("endless", cents{5000});
    auto closer = make_closer();
    closer->sweep();
    EXPECT_TRUE(told.empty()) << "nothing has ended yet by the database's clock";
    db->set_now(five_pm);
    closer->sweep();
    ASSERT_EQ(told.size(), 1U);
    EXPECT_EQ(told[0].first, soon.id);
    EXPECT_EQ(told[0].second, R"({"type":"bid_closed","bid_id":)" + to_string(soon.id) +
                                  R"(,"final_price":"50.00","winner":null})");
    EXPECT_EQ(db->info(soon.id).status, auction_status::closed);
    EXPECT_EQ(db->info(later.id).status, auction_status::open);
    EXPECT_EQ(db->info(endless.id).status, auction_status::open);
    closer->sweep();
    EXPECT_EQ(told.size(), 1U) << "a closed auction is not closed again";
    EXPECT_EQ(db->closes(soon.id), 1);
}

TEST_F(closer_fixture, AnExtensionPostponesTheClose) {
    db->set_now(five_pm - seconds{10});
    const auto a = db->add_timed_auction("lot", cents{5000}, auction_terms{five_pm, seconds{30}, seconds{30}, cents{1}});
    testing::fake_store store(db);
    const std::vector<bid_request> bids{bid_request{"ann", cents{6000}, std::nullopt}};
    const auto placed = store.place_bids(a.id, bids);
    ASSERT_EQ(placed.bids.at(0).verdict, bid_verdict::accepted);
    EXPECT_EQ(placed.bids[0].entry.ends_at, five_pm + seconds{20});
    auto closer = make_closer();
    db->set_now(five_pm + seconds{5});
    closer->sweep();
    EXPECT_TRUE(told.empty()) << "the bid moved the end to 17:00:20";
    db->set_now(five_pm + seconds{20});
    closer->sweep();
    ASSERT_EQ(told.size(), 1U);
    EXPECT_NE(told[0].second.find(R"("final_price":"60.00","winner":"ann")"), std::string::npos) << told[0].second;
}

TEST_F(closer_fixture, ManyClosersCloseEachAuctionOnce) {
    db->set_now(five_pm - seconds{1});
    std::vector<auction_id> ids;
    for (int i = 0; i < 250; ++i) {  // more than one sweep's limit
        ids.push_back(db->add_timed_auction("lot", cents{100}, auction_terms{five_pm, {}, {}, cents{1}}).id);
    }
    std::vector<std::unique_ptr<auction_closer>> closers;
    for (int i = 0; i < 4; ++i) {
        closers.push_back(make_closer(milliseconds{1}));
        closers.back()->start();
    }
    db->set_now(five_pm);
    for (int i = 0; i < 500; ++i) {
        {
            std::lock_guard lock(told_mutex);
            if (told.size() >= ids.size()) {
                break;
            }
        }
        std::this_thread::sleep_for(milliseconds{10});
    }
    for (auto& c : closers) {
        c->stop();
    }
    EXPECT_EQ(told.size(), ids.size()) << "each ended auction told exactly once";
    for (const auto id : ids) {
        EXPECT_EQ(db->closes(id), 1) << id;
        EXPECT_EQ(db->info(id).status, auction_status::closed);
    }
}

TEST_F(closer_fixture, AFailingDatabaseIsRetriedAtTheNextSweep) {
    db->set_now(five_pm);
    const auto a = db->add_timed_auction("lot", cents{100}, auction_terms{five_pm, {}, {}, cents{1}});
    auto closer = make_closer();
    db->set_fault(testing::fake_database::fault::unreachable);
    EXPECT_NO_THROW(closer->sweep());
    EXPECT_TRUE(told.empty());
    db->set_fault(testing::fake_database::fault::none);
    closer->sweep();
    ASSERT_EQ(told.size(), 1U);
    EXPECT_EQ(told[0].first, a.id);
}

}  // namespace
}  // namespace bidding
