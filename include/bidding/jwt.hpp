#pragma once
// HS256 JSON Web Tokens (RFC 7519) for admin calls and signed bidder identities. The signature
// is OpenSSL's HMAC-SHA256; verification compares in constant time and accepts only HS256.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bidding {

// HMAC-SHA256 of `data` under `key` (32 raw bytes); also signs the pods' bus messages.
std::string hmac_sha256(std::string_view key, std::string_view data);
// Equal without revealing, by its timing, where two secrets first differ.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// header {"alg":"HS256","typ":"JWT"} . claims . signature
std::string sign_jwt(const nlohmann::json& claims, std::string_view key);

enum class jwt_error { malformed, bad_algorithm, bad_signature, expired, missing_expiry };
std::string_view describe(jwt_error error);

struct jwt_result {
    std::optional<nlohmann::json> claims;  // set when valid
    jwt_error error{jwt_error::malformed};
};

// Valid when well formed, HS256, correctly signed with `key`, and `exp` (required) is after
// `now_seconds` (Unix time).
jwt_result verify_jwt(std::string_view token, std::string_view key, std::int64_t now_seconds);

}  // namespace bidding
