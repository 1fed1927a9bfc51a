#pragma once
// The HTTP API (docs/api.md): /api/bids, /api/bids/{id}, /api/bids/{id}/history, and the admin
// routes POST /api/bids and POST /api/bids/{id}/close. Deciding what a request asks for (and
// refusing it: 400/401/403/404/405/413) is pure; what needs Postgres comes back as a job for
// the database pool.
#include <bidding/auction.hpp>
#include <bidding/auction_store.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bidding {

inline constexpr std::size_t max_api_body_bytes = 16 * 1024;

struct api_request {
    std::string_view method;
    std::string_view target;
    std::string_view authorization;  // the Authorization header, empty when absent
    std::string_view body;
};

struct api_reply {
    unsigned status{200};
    std::string body;  // JSON
    std::vector<std::pair<std::string, std::string>> headers{};
    // Set when the request closed an auction: the bid_closed message, for the other pods.
    std::optional<std::pair<auction_id, std::string>> closed;
};

struct api_route {
    std::optional<api_reply> reply;               // answered without the database
    std::function<api_reply(auction_store&)> job;  // otherwise: run on the database pool
};

bool is_api_path(std::string_view target);

// `secret_key` verifies admin tokens; `now_seconds` is the Unix time.
api_route route_api(const api_request& req, const std::string& secret_key, std::int64_t now_seconds);

api_reply api_error(unsigned status, std::string_view code, std::string_view message);

// The auction as the API shows it.
std::string auction_json(const auction& a);

}  // namespace bidding
