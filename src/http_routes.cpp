#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>

namespace bidding {

namespace {

std::string_view path_of(std::string_view target) {
    const auto q = target.find_first_of("?#");
    return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string error_body(std::string_view code, std::string_view message) {
    return nlohmann::json{{"error", code}, {"message", message}}.dump();
}

}  // namespace

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
    if (path.empty() || path.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    auction_id id = 0;
    const auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), id);
    if (ec != std::errc{} || end != path.data() + path.size() || id <= 0) {
        return std::nullopt;  // out of range or zero
    }
    return id;
}

upgrade_decision decide_upgrade(const std::vector<std::string>& allowed_hosts, std::string_view target,
                                std::string_view host, std::optional<std::string_view> origin) {
    if (!request_allowed(allowed_hosts, host, origin)) {
        return {403, 0};
    }
    const auto id = match_ws_bid_path(target);
    if (!id) {
        return {404, 0};
    }
    return {0, *id};
}

http_reply route_http(std::string_view method, std::string_view target) {
    const auto path = path_of(target);
    if (path == "/healthz") {
        if (method != "GET" && method != "HEAD") {
            return {405, error_body("method_not_allowed", "use GET")};
        }
        return {200, R"({"status":"ok"})"};
    }
    if (match_ws_bid_path(target)) {
        return {426, error_body("upgrade_required", "this endpoint speaks WebSocket only")};
    }
    return {404, error_body("not_found", "no such resource")};
}

}  // namespace bidding
