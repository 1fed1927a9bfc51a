// HTTP requests in memory, as src/http_session.cpp reads and routes them: Beast's request parser
// with the session's limits (8 KiB of head, 16 KiB of body), then the same pure decisions in the
// same order (the target check, the upgrade's checks and identity, the page, the API, the
// operator routes). API jobs run against the unit tests' in-memory store. Pipelined requests on
// one connection are read one after the other until one ends the connection.
#include <fuzz_targets.hpp>

#include "../../tests/unit/fakes.hpp"

#include <bidding/api_routes.hpp>
#include <bidding/client_address.hpp>
#include <bidding/client_message.hpp>
#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/ws_frames.hpp>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bidding::fuzz {

namespace {

namespace http = boost::beast::http;

constexpr std::uint32_t header_limit = 8 * 1024;  // as src/http_session.cpp
constexpr std::uint64_t body_limit = max_api_body_bytes;
constexpr std::size_t max_requests = 8;  // per input: a connection's pipelined requests

const std::string secret_key(fuzz_secret_key);
const std::vector<std::string> allowed_hosts = {"localhost", "127.0.0.1", "[::1]", ".example.com"};

bool header_safe(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// What the session sends: a known status, JSON where it says JSON, headers that cannot split.
void check_reply(unsigned status, const std::string& body, std::string_view content_type,
                 const std::vector<std::pair<std::string, std::string>>& headers, std::string_view target) {
    constexpr unsigned known[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 414, 426, 429, 431, 503};
    fuzz_check(std::find(std::begin(known), std::end(known), status) != std::end(known), "an unexpected status",
               target);
    if (content_type == "application/json") {
        fuzz_check(nlohmann::json::accept(body), "a JSON reply that is not JSON", body);
    }
    for (const auto& [name, value] : headers) {
        fuzz_check(!name.empty() && header_safe(name) && header_safe(value), "a header that would split the reply",
                   value);
    }
    if (status == 405) {
        fuzz_check(std::any_of(headers.begin(), headers.end(), [](const auto& h) { return h.first == "Allow"; }),
                   "405 without Allow", target);
    }
}

void check_api_reply(const api_reply& r, std::string_view target) {
    check_reply(r.status, r.body, "application/json", r.headers, target);
    if (r.status == 401) {
        fuzz_check(std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "WWW-Authenticate"; }),
                   "401 without WWW-Authenticate", target);
    }
}

// The jobs log at info: quiet while they run here, without changing what the unit tests log.
class quiet_logs {
public:
    quiet_logs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
    ~quiet_logs() { spdlog::set_level(level_); }
    quiet_logs(const quiet_logs&) = delete;
    quiet_logs& operator=(const quiet_logs&) = delete;

private:
    spdlog::level::level_enum level_;
};

// An API job on a small database: an open auction with two bids (1) and a closed one (2).
api_reply run_job(const std::function<api_reply(auction_store&)>& job) {
    auto db = std::make_shared<testing::fake_database>();
    const auto open = db->add_auction("Vintage Camera", cents(10'000));
    db->add_auction("Lamp", cents(2'500), auction_status::closed);
    testing::fake_store store(db);
    const bid_request bids[] = {{"ann", cents(11'000), std::nullopt}, {"bk", cents(12'366), std::nullopt}};
    store.place_bids(open.id, bids);
    const quiet_logs quiet;
    return job(store);
}

void route_upgrade(const http::request<http::string_body>& req) {
    const std::string_view target = req.target();
    std::optional<std::string_view> origin;
    if (const auto it = req.find(http::field::origin); it != req.end()) origin = it->value();
    const auto decision = decide_upgrade(allowed_hosts, target, req[http::field::host], origin);
    if (decision.status != 0) {
        check_reply(decision.status, upgrade_refusal_body(decision.status), "application/json", {}, target);
        return;
    }
    if (req[http::field::sec_websocket_version] != "13") {
        check_reply(426, error_body("upgrade_required", "Sec-WebSocket-Version must be 13"), "application/json",
                    {{"Sec-WebSocket-Version", "13"}}, target);
        return;
    }
    const auto accept = websocket_accept_key(req[http::field::sec_websocket_key]);
    if (!accept) return;  // 400
    fuzz_check(accept->size() == 28 && header_safe(*accept), "a Sec-WebSocket-Accept of the wrong form", *accept);
    // Behind a trusted proxy on loopback, as one deployment runs it.
    std::string forwarded;
    const auto [first, last] = req.equal_range("X-Forwarded-For");
    for (auto it = first; it != last; ++it) {
        if (!forwarded.empty()) forwarded += ',';
        forwarded += it->value();
    }
    const auto peer = *ip_address::parse("127.0.0.1");
    const auto client = client_address(peer, forwarded, *trusted_proxies::parse("127.0.0.0/8"));
    fuzz_check(!client.limit_key().empty(), "a client without a limit key", forwarded);
    const auto token = query_param(target, "token");
    for (const bool required : {false, true}) {
        const auto identity = decide_identity(token, secret_key, required, fuzz_now);
        if (!token) {
            fuzz_check(identity.refused == required && !identity.name, "an identity without a token", target);
        }
        if (identity.name) {
            fuzz_check(!identity.refused && normalize_name(*identity.name) == identity.name,
                       "a token's name that a bid could not carry", *identity.name);
        } else {
            fuzz_check(identity.refused || !token, "a token accepted without a name", target);
        }
    }
}

void route_request(const http::request<http::string_body>& req) {
    const std::string_view target = req.target();
    if (!valid_target(target)) {
        check_reply(400, bad_target_body(), "application/json", {}, target);
        return;
    }
    if (boost::beast::websocket::is_upgrade(req)) {
        route_upgrade(req);
        return;
    }
    const auto page = route_page(req.method_string(), target);
    const bool api = is_api_path(target);
    if (page) {
        fuzz_check(!api, "a page on an API path", target);
        check_reply(page->status, page->body, page->content_type, page->headers, target);
    }
    if ((api || page) && !host_allowed(allowed_hosts, req[http::field::host])) {
        return;  // 400 host not allowed
    }
    if (api) {
        const api_request areq{req.method_string(), target, req[http::field::authorization], req.body()};
        auto route = route_api(areq, secret_key, fuzz_now);
        if (route.reply) {
            check_api_reply(*route.reply, target);
        } else {
            fuzz_check(static_cast<bool>(route.job), "an API route with neither a reply nor a job", target);
            check_api_reply(run_job(route.job), target);
        }
        return;
    }
    if (page) return;
    for (const bool ready : {true, false}) {
        service_status status;
        status.app_name = "bidding-server";
        status.app_version = "0.1.0";
        status.env = "test";
        status.draining = !ready;
        status.postgres_up = ready;
        status.redis_configured = true;
        status.redis_connected = ready;
        const auto r = route_http(req.method_string(), target, status, [] { return std::string("bidding_draining 0\n"); });
        check_reply(r.status, r.body, r.content_type, r.headers, target);
    }
}

}  // namespace

void http_request_one(std::string_view input) {
    const auto head_status = oversized_head_status(input);
    fuzz_check(head_status == 414 || head_status == 431, "oversized_head_status is neither 414 nor 431", input);

    std::string_view rest = input;
    for (std::size_t n = 0; n < max_requests && !rest.empty(); ++n) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        boost::beast::error_code ec;
        const std::string_view start = rest;
        // As Beast's read does: put what there is; need_more with nothing left is the end of the stream.
        while (!parser.is_done()) {
            const auto used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
            rest.remove_prefix(used);
            if (ec == http::error::need_more) {
                ec = {};
                if (used == 0) {
                    parser.put_eof(ec);
                    break;
                }
                continue;
            }
            if (ec || used == 0) break;
        }
        if (ec == http::error::header_limit) {
            const auto status = oversized_head_status(start);
            fuzz_check(status == 414 || status == 431, "oversized_head_status is neither 414 nor 431", start);
            const auto r = refusal_reply(status);
            check_reply(r.status, r.body, r.content_type, r.headers, {});
            return;
        }
        if (ec || !parser.is_done()) {
            return;  // 413, 400 or a partial request: the connection ends
        }
        const auto req = parser.release();
        fuzz_check(req.body().size() <= body_limit, "a body over the limit was read", req.target());
        route_request(req);
        if (!req.keep_alive() || boost::beast::websocket::is_upgrade(req)) {
            return;  // the session closes, or hands the rest of the bytes to a WebSocket session
        }
    }
}

}  // namespace bidding::fuzz
