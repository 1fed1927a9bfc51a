#include <bidding/jwt.hpp>

#include <gtest/gtest.h>

namespace bidding {
namespace {

const std::string key = "0123456789abcdef0123456789abcdef";

TEST(Base64Url, RoundTripsAndRejectsGarbage) {
    for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                          std::string("\xff\x00\xfe", 3)}) {
        EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
    }
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8") << "URL-safe alphabet, no padding";
    EXPECT_FALSE(base64url_decode("ab=c").has_value());
    EXPECT_FALSE(base64url_decode("a").has_value()) << "one dangling character is not a byte";
}

TEST(Jwt, MatchesAnIndependentImplementation) {
    // The same claims signed by an independent implementation (Python's hmac and base64).
    const std::string python =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjIwMDAwMDAwMDAsInN1YiI6ImFubiJ9."
        "aA0xnz1q3bz3l5PxfG9gv_uBf83X2HkCe0EkWNL5PSA";
    const auto token = sign_jwt(nlohmann::json{{"sub", "ann"}, {"exp", 2000000000}}, key);
    EXPECT_EQ(token, python) << "HS256 must match other implementations bit for bit";
    const auto r = verify_jwt(token, key, 1'900'000'000);
    ASSERT_TRUE(r.claims.has_value()) << describe(r.error);
    EXPECT_EQ((*r.claims)["sub"], "ann");
}

TEST(Jwt, RefusesWrongKeyExpiredNoExpiryAndOtherAlgorithms) {
    const auto token = sign_jwt(nlohmann::json{{"sub", "ann"}, {"exp", 100}}, key);
    EXPECT_EQ(verify_jwt(token, "another key, 32 characters long!", 50).error, jwt_error::bad_signature)
        << "a token signed with another key must be refused";
    EXPECT_EQ(verify_jwt(token, key, 100).error, jwt_error::expired) << "exp equal to now is expired";
    EXPECT_TRUE(verify_jwt(token, key, 99).claims.has_value());
    EXPECT_EQ(verify_jwt(sign_jwt(nlohmann::json{{"sub", "ann"}}, key), key, 1).error, jwt_error::missing_expiry);
    const auto none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                      base64url_encode(R"({"sub":"ann","exp":9999999999})") + ".";
    EXPECT_EQ(verify_jwt(none, key, 1).error, jwt_error::bad_algorithm) << "alg none must never pass";
    auto tampered = token;
    tampered[tampered.find('.') + 2] ^= 1;
    EXPECT_FALSE(verify_jwt(tampered, key, 1).claims.has_value()) << "a changed claim must break the signature";
    EXPECT_EQ(verify_jwt("a.b", key, 1).error, jwt_error::malformed);
    EXPECT_EQ(verify_jwt("not a token", key, 1).error, jwt_error::malformed);
}

}  // namespace
}  // namespace bidding
