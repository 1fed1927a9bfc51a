#include <bidding/api_routes.hpp>
#include <bidding/auction_closing.hpp>
#include <bidding/api_body.hpp>
#include <bidding/text.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/jwt.hpp>
#include <bidding/protocol.hpp>

#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <iterator>
#include <limits>

namespace bidding {

namespace {

using ordered_json = nlohmann::ordered_json;

// The path segments of "/api/bids/12/history" after "/api/bids", as Boost.URL splits the
// target's path: {"12", "history"}, still percent-encoded; one trailing slash is ignored.
std::vector<std::string_view> segments_after_api_bids(std::string_view target) {
    const auto url = boost::urls::parse_origin_form(target);
    if (!url) {
        return {};  // route_api sees an empty path first: no such route
    }
    std::vector<std::string_view> out;
    const auto segments = url->encoded_segments();
    for (auto it = std::next(segments.begin(), 2); it != segments.end(); ++it) {  // past "api", "bids"
        out.emplace_back(*it);
    }
    if (!out.empty() && out.back().empty()) {
        out.pop_back();
    }
    return out;
}

api_reply method_not_allowed(std::string_view allow) {
    auto r = api_error(405, "method_not_allowed", "use " + std::string(allow));
    r.headers.emplace_back("Allow", std::string(allow));
    return r;
}

api_route done(api_reply r) { return api_route{std::move(r), {}}; }

// Admin routes: a valid HS256 token whose role is admin.
std::optional<api_reply> check_admin(std::string_view authorization, const std::string& key, std::int64_t now) {
    const auto unauthorized = [](std::string_view why) {
        auto r = api_error(401, "unauthorized", why);
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
    };
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size() || !iequals(authorization.substr(0, scheme.size()), scheme)) {
        return unauthorized("an admin token is required: Authorization: Bearer TOKEN");
    }
    if (key.empty()) {
        return unauthorized("this server has no SECRET_KEY, so it accepts no token");
    }
    const auto result = verify_jwt(authorization.substr(scheme.size()), key, now);
    if (!result.claims) {
        return unauthorized(describe(result.error));
    }
    const auto& claims = *result.claims;
    if (!claims.contains("role") || claims["role"] != "admin") {
        return api_error(403, "forbidden", "this token is not an admin token");
    }
    return std::nullopt;
}

api_reply store_unavailable_reply(const std::exception& e) {
    spdlog::warn("API request failed: {}", e.what());
    return api_error(503, "unavailable", "the database is unavailable; try again later");
}

template <class F>
std::function<api_reply(auction_store&)> guarded(F&& body) {
    return [body = std::forward<F>(body)](auction_store& store) -> api_reply {
        try {
            return body(store);
        } catch (const store_unavailable& e) {
            return store_unavailable_reply(e);
        } catch (const end_time_refused& e) {
            return api_error(400, "invalid_ends_at", e.what());
        }
    };
}

api_route list_route(std::string_view target) {
    std::optional<auction_status> status;
    if (const auto s = query_param(target, "status")) {
        if (*s == "open") {
            status = auction_status::open;
        } else if (*s == "closed") {
            status = auction_status::closed;
        } else {
            return done(api_error(400, "bad_request", "status must be open or closed"));
        }
    }
    std::size_t limit = 20;
    std::size_t offset = 0;
    if (const auto l = query_param(target, "limit")) {
        const auto v = parse_integer<std::size_t>(*l, 1, 100);
        if (!v) {
            return done(api_error(400, "bad_request", "limit must be an integer from 1 to 100"));
        }
        limit = *v;
    }
    if (const auto o = query_param(target, "offset")) {
        const auto v = parse_integer<std::size_t>(*o, 0, 1'000'000'000);
        if (!v) {
            return done(api_error(400, "bad_request", "offset must be a non-negative integer"));
        }
        offset = *v;
    }
    return {std::nullopt, guarded([=](auction_store& store) {
                const auto page = store.list_auctions(status, limit, offset);
                std::string body = "{\"data\":[";
                for (std::size_t i = 0; i < page.items.size(); ++i) {
                    body += (i == 0 ? "" : ",") + auction_json(page.items[i]);
                }
                body += "],\"limit\":" + std::to_string(limit) + ",\"offset\":" + std::to_string(offset) +
                        ",\"total\":" + std::to_string(page.total) + "}";
                return api_reply{200, std::move(body), {}, std::nullopt};
            })};
}

api_route history_route(auction_id id, std::string_view target) {
    seq_t since{0};
    std::size_t limit = 100;
    if (const auto s = query_param(target, "since")) {
        const auto v = parse_id<seq_t>(*s, 0);
        if (!v) {
            return done(api_error(400, "bad_request", "since must be a non-negative integer"));
        }
        since = *v;
    }
    if (const auto l = query_param(target, "limit")) {
        const auto v = parse_integer<std::size_t>(*l, 1, 1000);
        if (!v) {
            return done(api_error(400, "bad_request", "limit must be an integer from 1 to 1000"));
        }
        limit = *v;
    }
    return {std::nullopt, guarded([=](auction_store& store) {
                if (!store.find_auction(id)) {
                    return api_error(404, "not_found", "no such auction");
                }
                auto rows = store.history_after(id, since, limit + 1);  // one more tells whether there is more
                const bool more = rows.size() > limit;
                rows.resize(std::min(rows.size(), limit));
                ordered_json j = ordered_json::object();
                j["bid_id"] = id;
                j["since"] = since;
                j["limit"] = limit;
                j["data"] = ordered_json::array();
                for (const auto& e : rows) {
                    j["data"].push_back(history_object(e));
                }
                j["has_more"] = more;
                return api_reply{200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), {}, std::nullopt};
            })};
}

}  // namespace

bool is_api_path(std::string_view target) {
    const auto path = path_of(target);
    return path == "/api" || path.starts_with("/api/");
}

api_reply api_error(unsigned status, std::string_view code, std::string_view message) {
    return api_reply{status, error_body(code, message), {}, std::nullopt};
}

std::string auction_json(const auction& a) {
    auto j = auction_object(a);
    j["leader"] = a.leader ? ordered_json(*a.leader) : ordered_json(nullptr);
    j["winner"] = a.status == auction_status::closed && a.leader ? ordered_json(*a.leader) : ordered_json(nullptr);
    j["created_at"] = a.created_at;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

api_route route_api(const api_request& req, const std::string& secret_key, std::int64_t now_seconds) {
    const auto path = path_of(req.target);
    if (path != "/api/bids" && !path.starts_with("/api/bids/")) {
        return done(api_error(404, "not_found", "no such resource"));
    }
    const auto parts = segments_after_api_bids(req.target);
    const bool get = req.method == "GET" || req.method == "HEAD";
    const bool post = req.method == "POST";

    if (parts.empty()) {  // /api/bids
        if (get) {
            return list_route(req.target);
        }
        if (!post) {
            return done(method_not_allowed("GET, POST"));
        }
        if (auto refused = check_admin(req.authorization, secret_key, now_seconds)) {
            return done(std::move(*refused));
        }
        if (req.body.size() > max_api_body_bytes) {
            return done(api_error(413, "payload_too_large", "the body must be at most 16 KiB"));
        }
        auto parsed = parse_new_auction(req.body);
        if (auto* error = std::get_if<body_error>(&parsed)) {
            return done(api_error(400, error->code, error->message));
        }
        const auto request = std::get<new_auction_request>(std::move(parsed));
        return {std::nullopt, guarded([request](auction_store& store) {
                    const auto a = store.create_auction(request);
                    spdlog::info("auction {} created through the API", a.id);
                    api_reply r{201, auction_json(a), {}, std::nullopt};
                    r.headers.emplace_back("Location", "/api/bids/" + to_string(a.id));
                    return r;
                })};
    }

    const auto id = parse_id<auction_id>(parts[0], 1);
    if (!id || parts.size() > 2) {
        return done(api_error(404, "not_found", "no such resource"));
    }
    if (parts.size() == 1) {  // /api/bids/{id}
        if (!get) {
            return done(method_not_allowed("GET"));
        }
        return {std::nullopt, guarded([id = *id](auction_store& store) {
                    const auto a = store.find_auction(id);
                    return a ? api_reply{200, auction_json(*a), {}, std::nullopt}
                             : api_error(404, "not_found", "no such auction");
                })};
    }
    if (parts[1] == "history") {
        if (!get) {
            return done(method_not_allowed("GET"));
        }
        return history_route(*id, req.target);
    }
    if (parts[1] == "close") {
        if (!post) {
            return done(method_not_allowed("POST"));
        }
        if (auto refused = check_admin(req.authorization, secret_key, now_seconds)) {
            return done(std::move(*refused));
        }
        return {std::nullopt, guarded([id = *id](auction_store& store) {
                    const auto [r, bid_closed] = close_auction(store, id);
                    if (!r.found) {
                        return api_error(404, "not_found", "no such auction");
                    }
                    if (!r.was_open) {
                        return api_error(409, "already_closed", "this auction is already closed");
                    }
                    spdlog::info("auction {} closed through the API", id);
                    ordered_json j{{"id", id},
                                   {"status", "closed"},
                                   {"final_price", format_cents(r.final_price)},
                                   {"winner", r.winner ? ordered_json(*r.winner) : ordered_json(nullptr)}};
                    api_reply reply{200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), {},
                                    std::nullopt};
                    reply.closed.emplace(id, bid_closed);
                    return reply;
                })};
    }
    return done(api_error(404, "not_found", "no such resource"));
}

}  // namespace bidding
