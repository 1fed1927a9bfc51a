// The strong types themselves: auction_id and seq_t (strong_id) and cents. The static_asserts are
// what prove an id can no longer be passed as another kind of id, or as a plain integer or price.
#include <bidding/auction.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/money.hpp>
#include <bidding/strong_id.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <compare>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace bidding {
namespace {

// ---- compile time: what must not compile -------------------------------------------------

template <class A, class B>
constexpr bool can_compare = requires(const A& a, const B& b) { a == b; };
template <class A, class B>
constexpr bool can_order = requires(const A& a, const B& b) { a < b; };
template <class A, class B>
constexpr bool can_add = requires(const A& a, const B& b) { a + b; };
template <class A, class B>
constexpr bool can_subtract = requires(const A& a, const B& b) { a - b; };
template <class T>
constexpr bool can_increment = requires(T& t) { ++t; };
template <class T>
constexpr bool has_std_to_string = requires(const T& t) { std::to_string(t); };

// One id is never another.
static_assert(!std::is_convertible_v<seq_t, auction_id>);
static_assert(!std::is_convertible_v<auction_id, seq_t>);
static_assert(!std::is_constructible_v<auction_id, seq_t>);
static_assert(!std::is_constructible_v<seq_t, auction_id>);
static_assert(!std::is_assignable_v<auction_id&, seq_t>);
static_assert(!std::is_assignable_v<seq_t&, auction_id>);
static_assert(!can_compare<auction_id, seq_t>);
static_assert(!can_compare<seq_t, auction_id>);
static_assert(!can_order<auction_id, seq_t>);

// An id is made from an integer only on purpose, and never silently becomes one.
static_assert(std::is_constructible_v<auction_id, std::int64_t>);
static_assert(std::is_constructible_v<seq_t, std::int64_t>);
static_assert(!std::is_convertible_v<std::int64_t, auction_id>);
static_assert(!std::is_convertible_v<std::int64_t, seq_t>);
static_assert(!std::is_convertible_v<int, seq_t>);
static_assert(!std::is_convertible_v<auction_id, std::int64_t>);
static_assert(!std::is_convertible_v<seq_t, std::int64_t>);
static_assert(!std::is_constructible_v<std::int64_t, seq_t>);
static_assert(!std::is_assignable_v<seq_t&, std::int64_t>);
static_assert(!can_compare<seq_t, std::int64_t>);
static_assert(!can_compare<std::int64_t, auction_id>);
static_assert(!can_order<seq_t, int>);
static_assert(!has_std_to_string<seq_t>);  // to_string(id), found by ADL, is the one spelling

// Ids are names, not numbers: no arithmetic.
static_assert(!can_add<seq_t, seq_t>);
static_assert(!can_add<seq_t, int>);
static_assert(!can_subtract<auction_id, auction_id>);
static_assert(!can_increment<seq_t>);
static_assert(!can_increment<auction_id>);

// Money is neither an id nor a plain integer.
static_assert(!std::is_convertible_v<std::int64_t, cents>);
static_assert(!std::is_convertible_v<int, cents>);
static_assert(!std::is_convertible_v<cents, std::int64_t>);
static_assert(!std::is_convertible_v<double, cents>);
// Not even explicitly: a price never comes from a binary double.
static_assert(!std::is_constructible_v<cents, double>);
static_assert(!std::is_constructible_v<cents, float>);
static_assert(!std::is_constructible_v<seq_t, double>);
static_assert(!std::is_constructible_v<auction_id, double>);
static_assert(std::is_constructible_v<cents, int>);
static_assert(!std::is_convertible_v<cents, double>);
static_assert(!std::is_constructible_v<cents, seq_t>);
static_assert(!std::is_constructible_v<cents, auction_id>);
static_assert(!std::is_constructible_v<auction_id, cents>);
static_assert(!std::is_constructible_v<seq_t, cents>);
static_assert(!std::is_assignable_v<cents&, std::int64_t>);
static_assert(!can_compare<cents, std::int64_t>);
static_assert(!can_order<cents, int>);
static_assert(!can_add<cents, std::int64_t>);
static_assert(!can_add<cents, seq_t>);
static_assert(!can_compare<cents, auction_id>);
// On the wire a price is text with two decimals (format_cents), never a JSON number.
static_assert(!std::is_constructible_v<nlohmann::json, cents>);
static_assert(std::is_constructible_v<nlohmann::json, auction_id>);

// And what must: cents arithmetic and comparison are constexpr.
static_assert(cents{100} + cents{250} == cents{350});
static_assert(cents{100} - cents{250} == cents{-150});
static_assert(cents{} == cents{0});
static_assert(seq_t{} == seq_t{0});
static_assert(seq_t{1} < seq_t{2});
static_assert(max_price_cents.count() == 9'999'999'999);

// ---- ids ------------------------------------------------------------------------------

TEST(StrongId, HoldsItsValueAndComparesOnlyWithItsOwnKind) {
    EXPECT_EQ(auction_id{42}.value(), 42);
    EXPECT_EQ(seq_t{}.value(), 0) << "a default id is 0 (seq 0: no bid yet)";
    EXPECT_EQ(seq_t{7}, seq_t{7});
    EXPECT_NE(seq_t{7}, seq_t{8});
    EXPECT_LT(seq_t{7}, seq_t{8});
    EXPECT_TRUE((auction_id{-1} <=> auction_id{-2}) == std::strong_ordering::greater);
    std::vector<seq_t> seqs{seq_t{9}, seq_t{2}, seq_t{5}};
    std::sort(seqs.begin(), seqs.end());
    EXPECT_EQ(seqs, (std::vector<seq_t>{seq_t{2}, seq_t{5}, seq_t{9}}));
}

TEST(StrongId, PrintsAsItsInteger) {
    EXPECT_EQ(to_string(auction_id{42}), "42");
    EXPECT_EQ(to_string(seq_t{-1}), "-1");
    EXPECT_EQ(to_string(auction_id{std::numeric_limits<std::int64_t>::max()}), "9223372036854775807");
    std::ostringstream os;
    os << auction_id{3} << '/' << seq_t{12};
    EXPECT_EQ(os.str(), "3/12");
}

TEST(StrongId, FormatsWithFmtLikeAnInteger) {
    EXPECT_EQ(fmt::format("{}", auction_id{42}), "42");
    EXPECT_EQ(fmt::format("auction {} seq {}", auction_id{7}, seq_t{12}), "auction 7 seq 12");
    EXPECT_EQ(fmt::format("[{:>5}]", seq_t{12}), "[   12]") << "integer format specs pass through";
    EXPECT_EQ(fmt::format("{:05}", auction_id{42}), "00042");
    EXPECT_EQ(fmt::format("{}", seq_t{std::numeric_limits<std::int64_t>::min()}), "-9223372036854775808");
}

TEST(StrongId, LogsThroughSpdlog) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    spdlog::logger log("strong_id_test", sink);
    log.set_pattern("%v");
    log.info("auction {} at seq {}", auction_id{5}, seq_t{99});
    log.flush();
    EXPECT_EQ(out.str(), "auction 5 at seq 99\n");
}

TEST(StrongId, IsAJsonIntegerAndRoundTrips) {
    const nlohmann::json j = auction_id{42};
    EXPECT_TRUE(j.is_number_integer());
    EXPECT_EQ(j.dump(), "42");
    EXPECT_EQ(j.get<auction_id>(), auction_id{42});
    const auto parsed = nlohmann::json::parse(R"({"bid_id":9223372036854775807,"seq":0})");
    EXPECT_EQ(parsed.at("bid_id").get<auction_id>(), auction_id{std::numeric_limits<std::int64_t>::max()});
    EXPECT_EQ(parsed.at("seq").get<seq_t>(), seq_t{0});
    const nlohmann::json object{{"bid_id", auction_id{3}}, {"seq", seq_t{12}}};
    EXPECT_EQ(object.dump(), R"({"bid_id":3,"seq":12})");
    EXPECT_EQ(nlohmann::json::parse(object.dump()).at("seq").get<seq_t>(), seq_t{12});
    nlohmann::ordered_json ordered;
    ordered["seq"] = seq_t{12};
    ordered["bid_id"] = auction_id{3};
    EXPECT_EQ(ordered.dump(), R"({"seq":12,"bid_id":3})");
    EXPECT_THROW(nlohmann::json("42").get<auction_id>(), nlohmann::json::type_error) << "a string is not an id";
}

TEST(StrongId, HashesAsAKeyOfAnUnorderedMap) {
    std::unordered_map<auction_id, std::string> names;
    names[auction_id{1}] = "lamp";
    names[auction_id{2}] = "chair";
    names[auction_id{1}] = "vase";
    EXPECT_EQ(names.size(), 2u);
    EXPECT_EQ(names.at(auction_id{1}), "vase");
    EXPECT_EQ(names.at(auction_id{2}), "chair");
    EXPECT_EQ(names.count(auction_id{3}), 0u);
    EXPECT_EQ(std::hash<seq_t>{}(seq_t{12}), std::hash<std::int64_t>{}(12));
}

TEST(StrongId, ParsedFromDecimalText) {
    EXPECT_EQ(parse_id<auction_id>("42"), auction_id{42});
    EXPECT_EQ(parse_id<auction_id>("9223372036854775807"), auction_id{std::numeric_limits<std::int64_t>::max()});
    EXPECT_EQ(parse_id<auction_id>("0"), std::nullopt) << "ids start at 1 unless told";
    EXPECT_EQ(parse_id<seq_t>("0", 0), seq_t{0});
    for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1a", "0x10", "9223372036854775808"}) {
        EXPECT_EQ(parse_id<seq_t>(bad, 0), std::nullopt) << bad;
    }
}

// ---- cents ----------------------------------------------------------------------------

TEST(Cents, AddsSubtractsAndOrders) {
    EXPECT_EQ(cents{12366}.count(), 12366);
    EXPECT_EQ(cents{}.count(), 0);
    EXPECT_EQ(cents{10000} + cents{1}, cents{10001});
    EXPECT_EQ(cents{100} - cents{250}, cents{-150});
    EXPECT_EQ(max_price_cents - cents{9'999'999'998}, cents{1});
    EXPECT_LT(cents{12366}, cents{12367});
    EXPECT_GT(cents{1}, cents{-1});
    EXPECT_LE(cents{5}, cents{5});
    EXPECT_GT(max_price_cents, cents{9'999'999'998});
    EXPECT_EQ(std::max(cents{300}, cents{200}), cents{300});
}

TEST(Cents, PrintsItsUnit) {
    std::ostringstream os;
    os << cents{12366};
    EXPECT_EQ(os.str(), "12366 cents") << "a count of cents must not read as a price";
    EXPECT_EQ(format_cents(cents{10000} + cents{2366}), "123.66");
}

}  // namespace
}  // namespace bidding
