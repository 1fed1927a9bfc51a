#include <bidding/protocol.hpp>

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace bidding {
namespace {

// Parses `text` and expects a bid; returns it (a default bid on failure).
bid_request expect_bid(const std::string& text) {
    const client_message m = parse_client_message(text);
    if (const auto* e = std::get_if<message_error>(&m)) {
        ADD_FAILURE() << "rejected " << text << " with " << to_string(e->code) << ": " << e->message;
        return {};
    }
    if (std::holds_alternative<pong_message>(m)) {
        ADD_FAILURE() << "parsed " << text << " as a pong instead of a bid";
        return {};
    }
    return std::get<bid_request>(m);
}

message_error expect_error(const std::string& text, error_code code) {
    const client_message m = parse_client_message(text);
    const auto* e = std::get_if<message_error>(&m);
    if (e == nullptr) {
        ADD_FAILURE() << "accepted " << text << " instead of answering " << to_string(code);
        return {};
    }
    EXPECT_EQ(e->code, code) << "wrong error code for " << text << " (message: " << e->message << ")";
    return *e;
}

bool is_pong(const std::string& text) { return std::holds_alternative<pong_message>(parse_client_message(text)); }

// ---- parsing: accepted bids ---------------------------------------------------------------

TEST(ParseClientMessage, PlainBid) {
    const bid_request b = expect_bid(R"({"name":"bk","price":"123.67"})");
    EXPECT_EQ(b.name, "bk");
    EXPECT_EQ(b.price, cents{12367});
    EXPECT_EQ(b.ref, std::nullopt);
}

TEST(ParseClientMessage, ExplicitBidTypeAndRef) {
    const bid_request b = expect_bid(R"({"type":"bid","name":"bk","price":5,"ref":"r1"})");
    EXPECT_EQ(b.price, cents{500});
    EXPECT_EQ(b.ref, "r1");
}

TEST(ParseClientMessage, JsonNumbersAreReadFromTheirTextNotADouble) {
    EXPECT_EQ(expect_bid(R"({"name":"a","price":2.675})").price, cents{268});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":112233.445})").price, cents{11223345});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":1.2345e2})").price, cents{12345});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":1E2})").price, cents{10000});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":12345e-2})").price, cents{12345});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":100})").price, cents{10000});
    EXPECT_EQ(expect_bid(R"({"name":"a","price":99999999.994})").price, cents{9999999999});
    // Through a double printed with 6 decimals these would become 1.005000 and 0.005000.
    EXPECT_EQ(expect_bid(R"({"name":"a","price":1.0049999999})").price, cents{100});
    EXPECT_EQ(expect_error(R"({"name":"a","price":0.0049999999})", error_code::invalid_price).message,
              "price must be greater than 0.00");
}

TEST(ParseClientMessage, CapitalPriceIsAcceptedAndLowerCaseWins) {
    EXPECT_EQ(expect_bid(R"({"name":"a","Price":"7.5"})").price, cents{750});
    EXPECT_EQ(expect_bid(R"({"name":"a","Price":"1","price":"2"})").price, cents{200})
        << "\"price\" must win over \"Price\"";
    EXPECT_EQ(expect_bid(R"({"name":"a","price":"2","Price":"oops"})").price, cents{200});
}

TEST(ParseClientMessage, NameIsTrimmed) {
    EXPECT_EQ(expect_bid(R"({"name":"  bk \t\n","price":"1"})").name, "bk");
    EXPECT_EQ(expect_bid(R"({"name":" Zoë 🚀 ","price":"1"})").name, "Zoë 🚀");
}

TEST(ParseClientMessage, NameLengthCountsCodePoints) {
    std::string name255;
    for (int i = 0; i < 255; ++i) name255 += "é";  // 510 bytes, 255 code points
    EXPECT_EQ(expect_bid(R"({"name":")" + name255 + R"(","price":"1"})").name, name255);
    const message_error e = expect_error(R"({"name":")" + name255 + R"(é","price":"1"})", error_code::invalid_name);
    EXPECT_EQ(e.message, "name must be 1 to 255 characters");
    // Whitespace around does not count toward the limit.
    EXPECT_EQ(expect_bid(R"({"name":"   )" + name255 + R"(   ","price":"1"})").name, name255);
}

TEST(ParseClientMessage, UnknownFieldsAndNestedValuesAreIgnored) {
    const bid_request b = expect_bid(R"({"name":"a","price":"3","extra":{"price":"9","name":[1,2]},"x":[{}]})");
    EXPECT_EQ(b.price, cents{300}) << "a nested \"price\" must not be read";
    EXPECT_EQ(b.name, "a");
}

TEST(ParseClientMessage, HugeJsonNumbersAreTooLargeNotInvalidJson) {
    EXPECT_EQ(expect_error(R"({"name":"a","price":1e400})", error_code::invalid_price).message,
              "price must be at most 99999999.99");
    EXPECT_EQ(expect_error(R"({"name":"a","price":)" + std::string(400, '9') + "}", error_code::invalid_price).message,
              "price must be at most 99999999.99");
    EXPECT_EQ(expect_error(R"({"name":"a","price":-1e400})", error_code::invalid_price).message,
              "price must be greater than 0.00");
    // A huge number elsewhere must not disturb the price.
    EXPECT_EQ(expect_bid(R"({"x":[1e999,2e999],"name":"a","price":2.675,"y":-3e999})").price, cents{268});
    expect_error(R"({"name":"a","price":1e400)", error_code::invalid_json);  // still must be valid JSON
}

// ---- parsing: pong --------------------------------------------------------------------

TEST(ParseClientMessage, Pong) {
    EXPECT_TRUE(is_pong("pong"));
    EXPECT_TRUE(is_pong("  pong\r\n"));
    EXPECT_TRUE(is_pong(R"({"type":"pong"})"));
    EXPECT_TRUE(is_pong(R"({"type":"pong","name":5,"price":null})")) << "a pong ignores other fields";
    EXPECT_FALSE(is_pong("PONG"));
    EXPECT_FALSE(is_pong("\"pong\""));
}

// ---- parsing: errors, in check order ----------------------------------------------------

TEST(ParseClientMessage, InvalidJson) {
    for (const std::string text : {"", "{", "{\"name\":\"a\",}", "{\"name\":\"a\"} x", "{'name':'a'}", "ping",
                                   "{\"name\":\"a\" \"price\":1}", "{\"price\":NaN}", "{\"price\":01}"}) {
        const message_error e = expect_error(text, error_code::invalid_json);
        EXPECT_EQ(e.message, "message is not valid JSON");
        EXPECT_EQ(e.ref, std::nullopt);
    }
}

TEST(ParseClientMessage, InvalidUtf8IsInvalidJson) {
    expect_error("{\"name\":\"a\xff\",\"price\":\"1\"}", error_code::invalid_json);
    expect_error("{\"name\":\"\xc3\",\"price\":\"1\"}", error_code::invalid_json);
    expect_error("{\"name\":\"\xed\xa0\x80\",\"price\":\"1\"}", error_code::invalid_json);  // surrogate
    expect_error(R"({"name":"\ud800","price":"1"})", error_code::invalid_json);             // lone surrogate escape
}

TEST(ParseClientMessage, TopLevelMustBeAnObject) {
    for (const std::string text : {"[]", "1", "\"bid\"", "null", "true", "[{\"name\":\"a\",\"price\":1}]"}) {
        EXPECT_EQ(expect_error(text, error_code::invalid_message).message, "message must be a JSON object") << text;
    }
}

TEST(ParseClientMessage, DuplicateField) {
    const message_error e = expect_error(R"({"name":"a","price":"1","name":"b","ref":"r"})", error_code::invalid_message);
    EXPECT_EQ(e.message, "duplicate field \"name\"");
    EXPECT_EQ(e.ref, "r") << "a valid ref is echoed";
    const message_error r = expect_error(R"({"ref":"a","name":"a","price":"1","ref":"b"})", error_code::invalid_message);
    EXPECT_EQ(r.message, "duplicate field \"ref\"");
    EXPECT_EQ(r.ref, std::nullopt) << "an ambiguous ref must not be echoed";
    // "price" and "Price" are different fields.
    EXPECT_EQ(expect_bid(R"({"name":"a","price":"1","Price":"2"})").price, cents{100});
}

TEST(ParseClientMessage, InvalidRef) {
    std::string ref64(64, 'r');
    EXPECT_EQ(expect_bid(R"({"name":"a","price":"1","ref":")" + ref64 + "\"}").ref, ref64);
    std::string ref64_wide;
    for (int i = 0; i < 64; ++i) ref64_wide += "ж";
    EXPECT_EQ(expect_bid(R"({"name":"a","price":"1","ref":")" + ref64_wide + "\"}").ref, ref64_wide)
        << "ref length counts code points, not bytes";
    for (const std::string& bad : {"\"" + ref64 + "r\"", std::string("\"\""), std::string("7"), std::string("null"),
                                  std::string("{}")}) {
        const message_error e =
            expect_error(R"({"name":"a","price":"1","ref":)" + bad + "}", error_code::invalid_message);
        EXPECT_EQ(e.message, "ref must be a string of at most 64 characters") << bad;
        EXPECT_EQ(e.ref, std::nullopt) << "an invalid ref must not be echoed";
    }
    // ref is checked before everything else about the message.
    EXPECT_EQ(expect_error(R"({"ref":5})", error_code::invalid_message).message,
              "ref must be a string of at most 64 characters");
}

TEST(ParseClientMessage, UnknownOrNonStringType) {
    const message_error e = expect_error(R"({"type":"subscribe","ref":"r2"})", error_code::invalid_message);
    EXPECT_EQ(e.message, "unknown type \"subscribe\"");
    EXPECT_EQ(e.ref, "r2");
    EXPECT_EQ(expect_error(R"({"type":")" + std::string(100, 't') + "\"}", error_code::invalid_message).message,
              "unknown type \"" + std::string(64, 't') + "\"")
        << "the echoed type is capped at 64 characters";
    expect_error(R"({"type":1,"name":"a","price":"1"})", error_code::invalid_message);
    expect_error(R"({"type":null,"name":"a","price":"1"})", error_code::invalid_message);
    expect_error(R"({"type":"BID","name":"a","price":"1"})", error_code::invalid_message);
}

TEST(ParseClientMessage, NameMissingOrNotAString) {
    for (const std::string text : {R"({"price":"1"})", R"({"name":5,"price":"1"})", R"({"name":null,"price":"1"})",
                                   R"({"name":["a"],"price":"1"})", R"({"Name":"a","price":"1"})"}) {
        const message_error e = expect_error(text, error_code::invalid_message);
        EXPECT_EQ(e.message, "name is required and must be a string") << text;
    }
    EXPECT_EQ(expect_error(R"({"price":"1","ref":"x"})", error_code::invalid_message).ref, "x");
}

TEST(ParseClientMessage, PriceMissingOrWrongKind) {
    EXPECT_EQ(expect_error(R"({"name":"a","ref":"r"})", error_code::invalid_message).message, "price is required");
    EXPECT_EQ(expect_error(R"({"name":"a","ref":"r"})", error_code::invalid_message).ref, "r");
    for (const std::string value : {"true", "false", "null", "{}", "[1]"}) {
        const message_error e = expect_error(R"({"name":"a","price":)" + value + "}", error_code::invalid_message);
        EXPECT_EQ(e.message, "price must be a number or a numeric string") << value;
    }
    // The price's kind is checked before the name's content.
    expect_error(R"({"name":"","price":true})", error_code::invalid_message);
}

TEST(ParseClientMessage, InvalidName) {
    EXPECT_EQ(expect_error(R"({"name":"","price":"1"})", error_code::invalid_name).message,
              "name must be 1 to 255 characters");
    EXPECT_EQ(expect_error(R"({"name":"   ","price":"1"})", error_code::invalid_name).message,
              "name must be 1 to 255 characters");
    for (const std::string name : {R"(a\u0000b)", R"(a\tb)", R"(a\u001fb)", R"(a\u007fb)", R"(a\u0085b)",
                                   R"(a\u009fb)"}) {
        const message_error e = expect_error(R"({"name":")" + name + R"(","price":"1","ref":"q"})",
                                             error_code::invalid_name);
        EXPECT_EQ(e.message, "name must not contain control characters") << name;
        EXPECT_EQ(e.ref, "q");
    }
    EXPECT_EQ(expect_bid(R"({"name":"a\u00a0b","price":"1"})").name, "a\u00a0b") << "U+00A0 is not a control";
    // The name's content is checked before the price's value.
    expect_error(R"({"name":"","price":"abc"})", error_code::invalid_name);
}

// Names are shown to every client: nothing that draws nothing or reorders the text.
TEST(ParseClientMessage, InvisibleOrBidiName) {
    for (const std::string name :
         {R"(ali\u200bce)", R"(\u202eecila)", R"(alice\u200d)", R"(\u2066x\u2069)", R"(a\u00adb)", R"(\ufeffbob)",
          R"(a\u2028b)", R"(a\u061cb)", R"(a\u180eb)", R"(a\u2060b)", R"(a\ufe0f)", R"(\u3164)", R"(a\u034fb)",
          R"(a\udb40\udc01b)" /* U+E0001, a tag */, R"(a\udb40\udd00b)" /* U+E0100, a variation selector */}) {
        const message_error e = expect_error(R"({"name":")" + name + R"(","price":"1","ref":"q"})",
                                             error_code::invalid_name);
        EXPECT_EQ(e.message, "name must not contain invisible or bidirectional-control characters") << name;
        EXPECT_EQ(e.ref, "q");
    }
    for (const std::string name : {R"(\u3000)", R"( \u2003 \u00a0 )"}) {
        EXPECT_EQ(expect_error(R"({"name":")" + name + R"(","price":"1"})", error_code::invalid_name).message,
                  "name must contain a visible character")
            << name;
    }
    // Visible text of any script, and spaces between words, stay names.
    for (const std::string name : {R"(Zo\u00eb)", R"(Jos\u00e9 Garc\u00eda)", R"(\u0639\u0644\u064a)",
                                   R"(\u5c71\u7530 \u592a\u90ce)", R"(\ud83e\udd8a)", R"(a\u3000b)"}) {
        expect_bid(R"({"name":")" + name + R"(","price":"1"})");
    }
    EXPECT_TRUE(normalize_name(R"(\u202e)")) << "JSON's escapes are decoded before the name is checked";
    EXPECT_FALSE(normalize_name("x\xe2\x80\xae"));  // U+202E itself
}

TEST(ParseClientMessage, InvalidPrice) {
    struct sample {
        std::string price;
        std::string message;
    };
    const std::string nan = "price must be a decimal number, e.g. 112233.44";
    const std::string low = "price must be greater than 0.00";
    const std::string big = "price must be at most 99999999.99";
    for (const sample& s : {sample{R"("abc")", nan}, sample{R"("NaN")", nan}, sample{R"("Infinity")", nan},
                            sample{R"("")", nan}, sample{R"("1e")", nan}, sample{R"("0x10")", nan},
                            sample{"1e20", big}, sample{R"("1e20")", big}, sample{"-1", low}, sample{R"("-1")", low},
                            sample{"0", low}, sample{"0.004", low}, sample{"-0", low},
                            sample{R"("99999999.995")", big}}) {
        const message_error e =
            expect_error(R"({"name":"a","ref":"p","price":)" + s.price + "}", error_code::invalid_price);
        EXPECT_EQ(e.message, s.message) << "price " << s.price;
        EXPECT_EQ(e.ref, "p");
    }
    EXPECT_EQ(expect_bid(R"({"name":"a","price":"0.005"})").price, cents{1});
}

// ---- serializers ---------------------------------------------------------------------

history_entry entry(std::int64_t seq, std::string bidder, std::int64_t price_cents, std::string at) {
    history_entry e;
    e.seq = seq_t{seq};
    e.bidder = std::move(bidder);
    e.price = cents{price_cents};
    e.added_at = std::move(at);
    return e;
}

// 2026-12-02T17:00:00.000Z
const timestamp five_pm{std::chrono::sys_days{std::chrono::year{2026} / 12 / 2} + std::chrono::hours{17}};

TEST(Serialize, InitialState) {
    auction a;
    a.id = auction_id{1};
    a.name = "Vintage Camera";
    a.status = auction_status::open;
    a.initial_price = cents{10000};
    a.current_price = cents{12366};
    a.last_seq = seq_t{42};
    const std::vector<history_entry> history{entry(42, "bk", 12366, "2026-11-25T14:00:00.123Z"),
                                             entry(41, "Zoë", 12000, "2026-11-25T13:59:00.000Z")};
    EXPECT_EQ(serialize_initial_state(a, history, five_pm),
              R"({"type":"initial_state","bid":{"id":1,"name":"Vintage Camera","status":"open",)"
              R"("initial_price":"100.00","current_price":"123.66","last_seq":42,"ends_at":null,)"
              R"("extend_window":null,"extend_by":null,"min_increment":"0.01","min_price":"123.67"},"data":[)"
              R"({"seq":42,"bidder":"bk","price":"123.66","added_at":"2026-11-25T14:00:00.123Z"},)"
              R"({"seq":41,"bidder":"Zoë","price":"120.00","added_at":"2026-11-25T13:59:00.000Z"}],)"
              R"("server_time":"2026-12-02T17:00:00.000Z"})");
    a.status = auction_status::closed;
    a.last_seq = seq_t{0};
    EXPECT_EQ(serialize_initial_state(a, {}, five_pm + std::chrono::milliseconds{7}),
              R"({"type":"initial_state","bid":{"id":1,"name":"Vintage Camera","status":"closed",)"
              R"("initial_price":"100.00","current_price":"123.66","last_seq":0,"ends_at":null,)"
              R"("extend_window":null,"extend_by":null,"min_increment":"0.01","min_price":"123.67"},"data":[],)"
              R"("server_time":"2026-12-02T17:00:00.007Z"})");
}

TEST(Serialize, TimedAuctionObject) {
    auction a;
    a.id = auction_id{4};
    a.name = "Pocket Watch";
    a.initial_price = cents{5000};
    a.current_price = cents{6000};
    a.terms.ends_at = five_pm + std::chrono::minutes{10} + std::chrono::milliseconds{5};
    a.terms.extend_window = std::chrono::seconds{120};
    a.terms.extend_by = std::chrono::seconds{90};
    a.terms.min_increment = cents{100};
    EXPECT_EQ(auction_object(a).dump(),
              R"({"id":4,"name":"Pocket Watch","status":"open","initial_price":"50.00","current_price":"60.00",)"
              R"("last_seq":0,"ends_at":"2026-12-02T17:10:00.005Z","extend_window":120,"extend_by":90,)"
              R"("min_increment":"1.00","min_price":"61.00"})")
        << "a client needs the end, the soft-close rule and the smallest acceptable next bid";
}

TEST(Serialize, InitialStateSinceCarriesSinceAndTruncated) {
    auction a;
    a.id = auction_id{2};
    a.name = "Antique Vase";
    a.initial_price = cents{20000};
    a.current_price = cents{20100};
    a.last_seq = seq_t{9};
    const std::vector<history_entry> oldest_first{entry(7, "a", 20050, "2026-11-25T14:00:00.000Z"),
                                                  entry(9, "b", 20100, "2026-11-25T14:00:01.000Z")};
    EXPECT_EQ(serialize_initial_state(a, oldest_first, seq_t{5}, false, five_pm),
              R"({"type":"initial_state","bid":{"id":2,"name":"Antique Vase","status":"open",)"
              R"("initial_price":"200.00","current_price":"201.00","last_seq":9,"ends_at":null,)"
              R"("extend_window":null,"extend_by":null,"min_increment":"0.01","min_price":"201.01"},"data":[)"
              R"({"seq":7,"bidder":"a","price":"200.50","added_at":"2026-11-25T14:00:00.000Z"},)"
              R"({"seq":9,"bidder":"b","price":"201.00","added_at":"2026-11-25T14:00:01.000Z"}],"since":5,)"
              R"("server_time":"2026-12-02T17:00:00.000Z"})")
        << "a reconnecting client needs the entries after its seq, oldest first, and to know they are";
    EXPECT_NE(serialize_initial_state(a, oldest_first, seq_t{0}, true, five_pm).find(R"("since":0,"truncated":true,)"),
              std::string::npos)
        << "a client that missed more than HISTORY_LIMIT must be told";
}

TEST(Serialize, NewBid) {
    EXPECT_EQ(serialize_new_bid(auction_id{1}, entry(43, "bk", 12367, "2026-11-25T14:00:01.000Z")),
              R"({"type":"new_bid","bid_id":1,"seq":43,"bidder":"bk","price":"123.67",)"
              R"("added_at":"2026-11-25T14:00:01.000Z"})")
        << "an auction without an end, at the default increment: the new_bid of old";
    auto extended = entry(44, "ann", 13000, "2026-12-02T16:59:30.000Z");
    extended.ends_at = five_pm + std::chrono::seconds{90};
    extended.min_increment = cents{50};
    EXPECT_EQ(serialize_new_bid(auction_id{1}, extended),
              R"({"type":"new_bid","bid_id":1,"seq":44,"bidder":"ann","price":"130.00",)"
              R"("added_at":"2026-12-02T16:59:30.000Z","ends_at":"2026-12-02T17:01:30.000Z","min_increment":"0.50"})")
        << "every client learns an extension from the new_bid that caused it";
    auto stepped = entry(45, "bo", 13100, "2026-12-02T16:59:31.000Z");
    stepped.min_increment = cents{100};
    EXPECT_EQ(serialize_new_bid(auction_id{1}, stepped),
              R"({"type":"new_bid","bid_id":1,"seq":45,"bidder":"bo","price":"131.00",)"
              R"("added_at":"2026-12-02T16:59:31.000Z","ends_at":null,"min_increment":"1.00"})")
        << "an increment other than 0.01 is told in every new_bid";
}

TEST(Serialize, EscapesStrings) {
    EXPECT_EQ(serialize_new_bid(auction_id{1}, entry(1, "a\"b\\c/é", 1, "t")),
              R"({"type":"new_bid","bid_id":1,"seq":1,"bidder":"a\"b\\c/é","price":"0.01","added_at":"t"})");
    EXPECT_EQ(serialize_new_bid(auction_id{1}, entry(1, std::string("x\x01y"), 1, "t")),
              R"({"type":"new_bid","bid_id":1,"seq":1,"bidder":"x\u0001y","price":"0.01","added_at":"t"})");
    EXPECT_NO_THROW(serialize_new_bid(auction_id{1}, entry(1, "bad\xff", 1, "t"))) << "invalid UTF-8 must not throw";
}

TEST(Serialize, BidAccepted) {
    const history_entry e = entry(43, "bk", 12367, "t");
    EXPECT_EQ(serialize_bid_accepted(e, "r1"), R"({"type":"bid_accepted","seq":43,"price":"123.67","ref":"r1"})");
    EXPECT_EQ(serialize_bid_accepted(e, std::nullopt),
              R"({"type":"bid_accepted","seq":43,"price":"123.67","ref":null})");
}

TEST(Serialize, Error) {
    EXPECT_EQ(serialize_error(error_code::price_too_low, price_too_low_message(cents{12366}, cents{12367}),
                              std::nullopt, cents{12366}, cents{12367}),
              R"({"type":"error","code":"price_too_low","message":"Bid must be higher than 123.66",)"
              R"("ref":null,"current_price":"123.66","min_price":"123.67"})");
    EXPECT_EQ(serialize_error(error_code::invalid_json, "message is not valid JSON", "r9"),
              R"({"type":"error","code":"invalid_json","message":"message is not valid JSON","ref":"r9"})");
}

TEST(Serialize, ErrorCodeNames) {
    EXPECT_EQ(to_string(error_code::invalid_json), "invalid_json");
    EXPECT_EQ(to_string(error_code::invalid_message), "invalid_message");
    EXPECT_EQ(to_string(error_code::invalid_name), "invalid_name");
    EXPECT_EQ(to_string(error_code::invalid_price), "invalid_price");
    EXPECT_EQ(to_string(error_code::price_too_low), "price_too_low");
    EXPECT_EQ(to_string(error_code::bid_closed), "bid_closed");
    EXPECT_EQ(to_string(error_code::unsupported), "unsupported");
    EXPECT_EQ(to_string(error_code::unavailable), "unavailable");
}

TEST(Serialize, PingClosedShutdown) {
    EXPECT_EQ(serialize_ping(five_pm), R"({"type":"ping","server_time":"2026-12-02T17:00:00.000Z"})");
    EXPECT_EQ(serialize_bid_closed(auction_id{1}, cents{12367}, "bk"),
              R"({"type":"bid_closed","bid_id":1,"final_price":"123.67","winner":"bk"})");
    EXPECT_EQ(serialize_bid_closed(auction_id{2}, cents{10000}, std::nullopt),
              R"({"type":"bid_closed","bid_id":2,"final_price":"100.00","winner":null})");
    EXPECT_EQ(serialize_server_shutdown(), R"({"type":"server_shutdown","reconnect":true})");
}

TEST(PriceTooLowMessage, UsesTwoDecimals) {
    EXPECT_EQ(price_too_low_message(cents{12366}, cents{12367}), "Bid must be higher than 123.66");
    EXPECT_EQ(price_too_low_message(cents{10000}, cents{10001}), "Bid must be higher than 100.00");
    EXPECT_EQ(price_too_low_message(cents{10000}, cents{10100}), "Bid must be at least 101.00")
        << "with a larger increment the message names the smallest acceptable price";
}

}  // namespace
}  // namespace bidding
