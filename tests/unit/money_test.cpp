#include <bidding/money.hpp>

#include <gtest/gtest.h>

#include <string>

namespace bidding {
namespace {

// Expects `text` to parse to `expected` cents.
void expect_price(const std::string& text, cents expected) {
    const price_parse_result r = parse_price(text);
    ASSERT_TRUE(r.value.has_value()) << "parse_price(\"" << text << "\") rejected a valid price";
    EXPECT_EQ(*r.value, expected) << "parse_price(\"" << text << "\") gave the wrong number of cents";
}

void expect_error(const std::string& text, price_error expected) {
    const price_parse_result r = parse_price(text);
    ASSERT_FALSE(r.value.has_value()) << "parse_price(\"" << text << "\") accepted " << r.value->count()
                                      << " cents instead of rejecting";
    EXPECT_EQ(r.error, expected) << "parse_price(\"" << text << "\") gave the wrong error kind";
}

TEST(ParsePrice, PlainDecimals) {
    expect_price("123.66", cents{12366});
    expect_price("100", cents{10000});
    expect_price("0.01", cents{1});
    expect_price("5.", cents{500});
    expect_price(".5", cents{50});
    expect_price("+5", cents{500});
    expect_price("007.50", cents{750});
}

TEST(ParsePrice, SurroundingWhitespaceIsIgnored) {
    expect_price(" 7.5 ", cents{750});
    expect_price("\t\n12\r\n", cents{1200});
}

TEST(ParsePrice, RoundsHalfUpOnTheFirstDroppedDigit) {
    expect_price("2.675", cents{268});            // a double would give 2.67499999...
    expect_price("112233.445", cents{11223345});  // likewise
    expect_price("0.005", cents{1});
    expect_price("1.004", cents{100});
    expect_price("1.00499999", cents{100});  // only the first dropped digit counts
    expect_price("1.0050000", cents{101});
    expect_price("0.0099", cents{1});
}

TEST(ParsePrice, Exponents) {
    expect_price("1.2345e2", cents{12345});
    expect_price("1E2", cents{10000});
    expect_price("12345e-2", cents{12345});
    expect_price("1e+2", cents{10000});
    expect_price("5e-3", cents{1});   // 0.005 rounds up
}

TEST(ParsePrice, ZeroAndNegativeAreNotPositive) {
    expect_error("0", price_error::not_positive);
    expect_error("0.00", price_error::not_positive);
    expect_error("-0", price_error::not_positive);
    expect_error("-1", price_error::not_positive);
    expect_error("-0.50", price_error::not_positive);
    expect_error("0.004", price_error::not_positive);  // rounds to 0.00
    expect_error("4e-3", price_error::not_positive);
    expect_error("1e-99999999999", price_error::not_positive);
    expect_error("-1e999", price_error::not_positive);
}

TEST(ParsePrice, AboveNumeric10_2IsTooLarge) {
    expect_price("99999999.99", max_price_cents);
    expect_price("99999999.994", cents{9999999999});
    expect_error("99999999.995", price_error::too_large);  // rounds to 100000000.00
    expect_error("100000000", price_error::too_large);
    expect_error("1e20", price_error::too_large);
    expect_error("1e999999999999999999", price_error::too_large);  // exponent saturates, no overflow
    expect_error("1e99999999999999999999999999999999999999", price_error::too_large);
}

TEST(ParsePrice, HugeDigitStrings) {
    expect_price(std::string(500, '0') + "42.5", cents{4250});
    expect_price("0." + std::string(400, '0') + "1e402", cents{1000});  // 1e-401 * 1e402 = 10
    expect_price("3.14159" + std::string(600, '9'), cents{314});
    expect_price("3.145" + std::string(600, '0'), cents{315});
    expect_price("1" + std::string(300, '0') + "e-300", cents{100});
    expect_error(std::string(300, '9'), price_error::too_large);
    expect_error("1" + std::string(300, '0') + ".5", price_error::too_large);
    expect_error("0." + std::string(700, '0') + "1", price_error::not_positive);
}

TEST(ParsePrice, MalformedTextIsNotANumber) {
    for (const std::string text : {"NaN", "nan", "Infinity", "-Infinity", "inf", "abc", "", "   ", "0x10", "1e",
                                   "1e+", "1.2.3", "--1", "+-1", "1 2", ".", "-.", "e5", "1,5", "$5", "5$", "1e2.5",
                                   "12a", "\"5\""}) {
        expect_error(text, price_error::not_a_number);
    }
}

TEST(FormatCents, AlwaysTwoDecimals) {
    EXPECT_EQ(format_cents(cents{12366}), "123.66");
    EXPECT_EQ(format_cents(cents{5}), "0.05");
    EXPECT_EQ(format_cents(cents{0}), "0.00");
    EXPECT_EQ(format_cents(cents{-5}), "-0.05");
    EXPECT_EQ(format_cents(cents{10000}), "100.00");
    EXPECT_EQ(format_cents(max_price_cents), "99999999.99");
    EXPECT_EQ(format_cents(cents{-123456}), "-1234.56");
}

TEST(Describe, EachErrorHasItsOwnText) {
    EXPECT_EQ(describe(price_error::not_a_number), "price must be a decimal number, e.g. 112233.44");
    EXPECT_EQ(describe(price_error::not_positive), "price must be greater than 0.00");
    EXPECT_EQ(describe(price_error::too_large), "price must be at most 99999999.99");
}

}  // namespace
}  // namespace bidding
