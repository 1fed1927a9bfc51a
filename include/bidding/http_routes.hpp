#pragma once
// Routing decisions for HTTP requests, apart from any socket: unit-tested on their own.
#include <bidding/auction.hpp>

#include <functional>
#include <cstddef>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace bidding {

// Whether Boost.URL reads the request target as origin-form (RFC 9112 3.2.1): a path starting
// with "/" and an optional query, no fragment, every "%" followed by two hex digits. The HTTP
// session answers any other target 400 (bad_target_body()) before routing it; the functions
// below see no path and no query in it.
bool valid_target(std::string_view target);
std::string bad_target_body();

// The path of a request target, without its query, still percent-encoded ("" for an invalid target).
std::string_view path_of(std::string_view target);

// Every HTTP error body: {"error":CODE,"message":TEXT}.
std::string error_body(std::string_view code, std::string_view message);

// "/ws/bid/42", "/ws/bid/42/", "/ws/bid/42?since=7" -> 42. nullopt for any other path and for an
// id that is not a positive 64-bit integer ("0", "-1", "abc", "99999999999999999999").
std::optional<auction_id> match_ws_bid_path(std::string_view target);

// The value of one query parameter ("since" in "/ws/bid/1?since=5&x=y"), percent-decoded
// ("?since=%35" gives "5"); the first one when the name repeats; "" for "?since" and "?since=".
std::optional<std::string> query_param(std::string_view target, std::string_view name);

struct upgrade_decision {
    unsigned status{0};  // 0: upgrade; otherwise the HTTP status to answer with
    auction_id id{0};
    std::optional<seq_t> since;  // ?since=SEQ: the client's last seen seq
};

// The checks before a WebSocket upgrade: Host and Origin against ALLOWED_HOSTS (403), then
// the path (404), then ?since= (400 unless a non-negative integer).
upgrade_decision decide_upgrade(const std::vector<std::string>& allowed_hosts, std::string_view target,
                                std::string_view host, std::optional<std::string_view> origin);

// Who a WebSocket client is, from its ?token= (a bidder token signed with SECRET_KEY).
struct ws_identity {
    bool refused{false};              // close 4001 "unauthorized" after the upgrade
    std::optional<std::string> name;  // the token's sub: every bid of the connection carries it
};
ws_identity decide_identity(std::optional<std::string_view> token, const std::string& secret_key, bool required,
                            std::int64_t now_seconds);

// A request whose head outgrew the header limit, from the bytes read of it: 414 when its request
// line had not ended yet (the target is what is too long), 431 otherwise (RFC 9110, RFC 6585).
unsigned oversized_head_status(std::string_view head_bytes);

// The answer to a request refused before routing (414, 431, 413, 400), or to an upgrade over a
// connection limit (503 MAX_CONNECTIONS, 429 MAX_CONNECTIONS_PER_IP); its `Retry-After` where
// waiting helps.
struct http_reply;
http_reply refusal_reply(unsigned status, std::size_t limit = 0);
// 503 `busy` to an upgrade that waited longer than WS_HANDSHAKE_TIMEOUT for a place among the
// connections being set up (MAX_OPENING_CONNECTIONS).
http_reply opening_refusal_reply();

// The JSON body of a refused upgrade (400, 403 or 404).
std::string upgrade_refusal_body(unsigned status);

struct http_reply {
    unsigned status{200};
    std::string body;
    std::string content_type{"application/json"};
    std::vector<std::pair<std::string, std::string>> headers{};
};

// The browser page: "/" (the list), "/bid/{id}" (one auction) and "/static/NAME" (its files),
// from the files embedded in the binary. nullopt for any other path.
std::optional<http_reply> route_page(std::string_view method, std::string_view target);

// What the health and version routes report.
struct service_status {
    std::string_view app_name;
    std::string_view app_version;
    std::string_view env;
    bool draining{false};
    bool postgres_up{false};
    bool redis_configured{false};
    bool redis_connected{false};
};

// Plain HTTP requests (no upgrade): /healthz, /readyz, /version, /metrics.
// `render_metrics` is called only for /metrics.
http_reply route_http(std::string_view method, std::string_view target, const service_status& status,
                      const std::function<std::string()>& render_metrics);

}  // namespace bidding
