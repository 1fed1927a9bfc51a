#include <bidding/jwt.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <charconv>

namespace bidding {

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out.data(), &len);
    return std::string(reinterpret_cast<const char*>(out.data()), len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}


std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (const unsigned char c : bytes) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[(buffer >> bits) & 0x3F];
        }
    }
    if (bits > 0) {
        out += alphabet[(buffer << (6 - bits)) & 0x3F];
    }
    return out;  // unpadded, as JWTs are
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (const char c : text) {
        const auto pos = alphabet.find(c);
        if (pos == std::string_view::npos) {
            return std::nullopt;
        }
        buffer = (buffer << 6) | static_cast<std::uint32_t>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    if (bits >= 6 || (buffer & ((1u << bits) - 1)) != 0) {
        return std::nullopt;  // a dangling character or non-zero padding bits: not canonical
    }
    return out;
}

std::string sign_jwt(const nlohmann::json& claims, std::string_view key) {
    const auto signing_input =
        base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims.dump());
    return signing_input + "." + base64url_encode(hmac_sha256(key, signing_input));
}

std::string_view describe(jwt_error error) {
    switch (error) {
    case jwt_error::malformed:
        return "the token is malformed";
    case jwt_error::bad_algorithm:
        return "the token is not signed with HS256";
    case jwt_error::bad_signature:
        return "the token's signature is wrong";
    case jwt_error::expired:
        return "the token has expired";
    case jwt_error::missing_expiry:
        return "the token has no exp claim";
    }
    return "the token is invalid";
}

jwt_result verify_jwt(std::string_view token, std::string_view key, std::int64_t now_seconds) {
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        return {std::nullopt, jwt_error::malformed};
    }
    const auto header_text = base64url_decode(token.substr(0, dot1));
    const auto claims_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
    const auto signature = base64url_decode(token.substr(dot2 + 1));
    if (!header_text || !claims_text || !signature) {
        return {std::nullopt, jwt_error::malformed};
    }
    const auto header = nlohmann::json::parse(*header_text, nullptr, false);
    auto claims = nlohmann::json::parse(*claims_text, nullptr, false);
    if (header.is_discarded() || claims.is_discarded() || !header.is_object() || !claims.is_object()) {
        return {std::nullopt, jwt_error::malformed};
    }
    // Only HS256: "none" and every other algorithm are refused before any signature check.
    if (!header.contains("alg") || header["alg"] != "HS256") {
        return {std::nullopt, jwt_error::bad_algorithm};
    }
    const auto expected = hmac_sha256(key, token.substr(0, dot2));
    if (!constant_time_equal(*signature, expected)) {
        return {std::nullopt, jwt_error::bad_signature};
    }
    if (!claims.contains("exp") || !claims["exp"].is_number()) {
        return {std::nullopt, jwt_error::missing_expiry};
    }
    if (claims["exp"].get<double>() <= static_cast<double>(now_seconds)) {
        return {std::nullopt, jwt_error::expired};
    }
    return {std::move(claims), jwt_error::malformed};
}

}  // namespace bidding
