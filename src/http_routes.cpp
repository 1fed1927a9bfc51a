#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/jwt.hpp>
#include <bidding/protocol.hpp>
#include <bidding/web_assets.hpp>

#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>

#include <limits>

namespace bidding {

namespace {

// The request target as Boost.URL reads it: origin-form (RFC 9112 3.2.1), absolute-path ["?" query].
std::optional<boost::urls::url_view> parse_target(std::string_view target) {
    const auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed) {
        return std::nullopt;
    }
    return *parsed;
}

}  // namespace

bool valid_target(std::string_view target) { return parse_target(target).has_value(); }

std::string bad_target_body() {
    return error_body("bad_request",
                      "the request target must be a path and an optional query (RFC 3986), each % followed by two "
                      "hex digits");
}

std::string_view path_of(std::string_view target) {
    const auto url = parse_target(target);
    return url ? std::string_view(url->encoded_path()) : std::string_view{};
}

std::string error_body(std::string_view code, std::string_view message) {
    return nlohmann::json{{"error", code}, {"message", message}}.dump();
}

std::optional<auction_id> match_ws_bid_path(std::string_view target) {
    constexpr std::string_view prefix = "/ws/bid/";
    auto path = path_of(target);
    if (!path.starts_with(prefix)) {
        return std::nullopt;
    }
    path.remove_prefix(prefix.size());
    if (path.ends_with('/')) {
        path.remove_suffix(1);
    }
    return parse_id<auction_id>(path, 1);
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto url = parse_target(target);
    if (!url) {
        return std::nullopt;
    }
    // Percent-decoded; "+" stays "+" (RFC 3986, as the query was read before).
    const auto params = url->params(boost::urls::encoding_opts{false, false, false});
    const auto it = params.find(name);  // the first of repeated names
    if (it == params.end()) {
        return std::nullopt;
    }
    return std::string((*it).value);  // "" for "?name" and "?name="
}

upgrade_decision decide_upgrade(const std::vector<std::string>& allowed_hosts, std::string_view target,
                                std::string_view host, std::optional<std::string_view> origin) {
    if (!request_allowed(allowed_hosts, host, origin)) {
        return {403, auction_id{}, std::nullopt};
    }
    const auto id = match_ws_bid_path(target);
    if (!id) {
        return {404, auction_id{}, std::nullopt};
    }
    upgrade_decision ok{0, *id, std::nullopt};
    if (const auto since = query_param(target, "since")) {
        ok.since = parse_id<seq_t>(*since, 0);
        if (!ok.since) {
            return {400, auction_id{}, std::nullopt};
        }
    }
    return ok;
}

ws_identity decide_identity(std::optional<std::string_view> token, const std::string& secret_key, bool required,
                            std::int64_t now_seconds) {
    if (!token) {
        return ws_identity{required, std::nullopt};
    }
    // A token that is present must be valid, whether or not tokens are required.
    if (secret_key.empty()) {
        return ws_identity{true, std::nullopt};
    }
    const auto result = verify_jwt(*token, secret_key, now_seconds);
    if (!result.claims || !result.claims->contains("sub") || !(*result.claims)["sub"].is_string()) {
        return ws_identity{true, std::nullopt};
    }
    // An admin token opens the API, it is nobody's bidder identity: a leaked one must not bid.
    if (!result.claims->contains("role") || (*result.claims)["role"] != "bidder") {
        return ws_identity{true, std::nullopt};
    }
    auto name = normalize_name((*result.claims)["sub"].get<std::string>());
    if (!name) {
        return ws_identity{true, std::nullopt};
    }
    return ws_identity{false, std::move(name)};
}

std::string upgrade_refusal_body(unsigned status) {
    switch (status) {
    case 400:
        return error_body("bad_request", "since must be a non-negative integer");
    case 403:
        return error_body("forbidden", "host or origin not allowed");
    default:
        return error_body("not_found", "no such auction endpoint");
    }
}

unsigned oversized_head_status(std::string_view head_bytes) {
    return head_bytes.find('\n') == std::string_view::npos ? 414 : 431;
}

http_reply refusal_reply(unsigned status, std::size_t limit) {
    switch (status) {
    case 414:
        return {414, error_body("uri_too_long", "the request line must be at most 8 KiB")};
    case 431:
        return {431, error_body("headers_too_large", "the request's headers must be at most 8 KiB in all")};
    case 413:
        return {413, error_body("payload_too_large", "the body must be at most 16 KiB")};
    case 503:
        return {503,
                error_body("server_full", "this server holds its maximum of " + std::to_string(limit) +
                                              " connections; try again later or another server"),
                "application/json",
                {{"Retry-After", "5"}}};
    case 429:
        return {429,
                error_body("too_many_connections",
                           "at most " + std::to_string(limit) + " connections per client address; close one first"),
                "application/json",
                {{"Retry-After", "5"}}};
    default:
        return {400, error_body("bad_request", "not an HTTP/1.1 request")};
    }
}

http_reply opening_refusal_reply() {
    return {503, error_body("busy", "too many connections are being opened at once; try again in a moment"),
            "application/json", {{"Retry-After", "1"}}};
}

std::optional<http_reply> route_page(std::string_view method, std::string_view target) {
    const auto path = path_of(target);
    std::string_view file;
    if (path == "/") {
        file = "index.html";
    } else if (path.starts_with("/bid/")) {
        // Same digits rule as the WebSocket endpoint: /bid/{id} for exactly the ids /ws/bid/ takes.
        if (!match_ws_bid_path(std::string("/ws") + std::string(path))) {
            return std::nullopt;
        }
        file = "bid.html";
    } else if (path.starts_with("/static/")) {
        file = path.substr(8);
        if (file.empty() || file.find('/') != std::string_view::npos) {
            return std::nullopt;
        }
    } else {
        return std::nullopt;
    }
    if (method != "GET" && method != "HEAD") {
        http_reply r{405, error_body("method_not_allowed", "use GET"), "application/json", {}};
        r.headers.emplace_back("Allow", "GET");
        return r;
    }
    const auto* asset = find_web_asset(file);
    if (asset == nullptr) {
        return http_reply{404, error_body("not_found", "no such file"), "application/json", {}};
    }
    http_reply r{200, std::string(asset->body), std::string(content_type_for(file)), {}};
    // The page runs only its own scripts and styles and talks only to its own origin.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Cache-Control", file.ends_with(".html") ? "no-cache" : "public, max-age=300");
    return r;
}

http_reply route_http(std::string_view method, std::string_view target, const service_status& status,
                      const std::function<std::string()>& render_metrics) {
    const auto path = path_of(target);
    const bool known = path == "/healthz" || path == "/readyz" || path == "/version" || path == "/metrics";
    if (known && method != "GET" && method != "HEAD") {
        // RFC 9110 15.5.6: a 405 names the methods that work, as the page's and the API's do.
        return {405, error_body("method_not_allowed", "use GET"), "application/json", {{"Allow", "GET"}}};
    }
    if (path == "/healthz") {
        return {200, R"({"status":"ok"})"};
    }
    if (path == "/readyz") {
        // Ready means: a new client would be served now. Postgres is a condition (without it a
        // pod serves nobody); Redis is not: every pod loses it at once, and a 503 from all of
        // them would take the whole service out of the load balancer while each pod can still
        // serve its own clients. Its state is in the body either way.
        nlohmann::json reasons = nlohmann::json::array();
        if (status.draining) {
            reasons.push_back("draining");
        }
        if (!status.postgres_up) {
            reasons.push_back("postgres unreachable");
        }
        nlohmann::ordered_json body;
        body["status"] = reasons.empty() ? "ready" : "not_ready";
        if (!reasons.empty()) {
            body["reasons"] = reasons;
        }
        body["postgres"] = status.postgres_up ? "ok" : "unavailable";
        body["redis"] = !status.redis_configured ? "not_configured" : status.redis_connected ? "ok" : "unavailable";
        return {reasons.empty() ? 200u : 503u, body.dump()};
    }
    if (path == "/version") {
        return {200, nlohmann::ordered_json{{"name", status.app_name}, {"version", status.app_version}, {"env", status.env}}
                        .dump()};
    }
    if (path == "/metrics") {
        return {200, render_metrics(), "text/plain; version=0.0.4; charset=utf-8"};
    }
    if (match_ws_bid_path(target)) {
        return {426, error_body("upgrade_required", "this endpoint speaks WebSocket only")};
    }
    return {404, error_body("not_found", "no such resource")};
}

}  // namespace bidding
