#include <bidding/text.hpp>

#include <gtest/gtest.h>

using namespace bidding;

TEST(Text, TrimRemovesAsciiWhitespaceOnBothSidesOnly) {
    EXPECT_EQ(trim("  a b \t\r\n"), "a b");
    EXPECT_EQ(trim("\f\v"), "");
    EXPECT_EQ(trim(""), "");
    // Not ASCII whitespace: a no-break space (U+00A0) stays.
    EXPECT_EQ(trim("\xc2\xa0x"), "\xc2\xa0x");
}

TEST(Text, LowercasesAsciiOnlyWhateverTheLocale) {
    EXPECT_EQ(to_lower("ExAmple.COM:8000"), "example.com:8000");
    EXPECT_EQ(to_lower("\xc3\x89"), "\xc3\x89");  // É untouched
    EXPECT_TRUE(iequals("Bearer", "bEARER"));
    EXPECT_FALSE(iequals("Bearer", "Bearer "));
    EXPECT_FALSE(iequals("a", "b"));
}

TEST(Text, DigitsAndSpaces) {
    EXPECT_TRUE(is_ascii_digit('0'));
    EXPECT_TRUE(is_ascii_digit('9'));
    EXPECT_FALSE(is_ascii_digit('a'));
    EXPECT_FALSE(is_ascii_digit('\xd9'));  // a byte of an Arabic-Indic digit
    EXPECT_TRUE(is_ascii_space('\v'));
    EXPECT_FALSE(is_ascii_space('\0'));
}
