#include <bidding/api_routes.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/http_session.hpp>
#include <bidding/websocket_session.hpp>
#include <bidding/ws_frames.hpp>

#include <boost/asio/strand.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

namespace bidding {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::uint32_t header_limit = 8 * 1024;
constexpr std::uint64_t body_limit = max_api_body_bytes;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

http_session::http_session(net::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx,
                           net::io_context& sessions)
    : stream_(std::move(socket)), ctx_(std::move(ctx)), sessions_(sessions) {}

void http_session::run() { do_read(); }

void http_session::do_read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    stream_.expires_after(request_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) {
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
        return;
    }
    if (ec == http::error::body_limit) {
        const auto r = api_error(413, "payload_too_large", "the body must be at most 16 KiB");
        reply(r.status, r.body, false, "application/json");
        return;
    }
    if (ec) {
        if (ec != beast::error::timeout && ec != net::error::operation_aborted && ec != net::error::connection_reset) {
            spdlog::debug("http read failed: {}", ec.message());
        }
        return;
    }
    auto req = parser_->release();
    // A target Boost.URL does not read as a path and a query: 400, upgrade or not, before any route.
    if (!valid_target(req.target())) {
        reply(400, bad_target_body(), false, "application/json");
        return;
    }
    if (beast::websocket::is_upgrade(req)) {
        std::optional<std::string_view> origin;
        if (const auto it = req.find(http::field::origin); it != req.end()) {
            origin = it->value();
        }
        const auto decision = decide_upgrade(ctx_->cfg.allowed_hosts, req.target(), req[http::field::host], origin);
        if (decision.status != 0) {
            spdlog::debug("upgrade refused with {}: target {}", decision.status, std::string_view(req.target()));
            reply(decision.status, upgrade_refusal_body(decision.status), false, "application/json");
            return;
        }
        if (ctx_->draining) {
            reply(503, R"({"error":"draining","message":"server is shutting down"})", false, "application/json");
            return;
        }
        // RFC 6455 4.2.1: version 13 only (426 names it), a key that is base64 of 16 bytes.
        if (req[http::field::sec_websocket_version] != "13") {
            reply(426, error_body("upgrade_required", "Sec-WebSocket-Version must be 13"), false, "application/json",
                  {{"Sec-WebSocket-Version", "13"}});
            return;
        }
        auto accept = websocket_accept_key(req[http::field::sec_websocket_key]);
        if (!accept) {
            reply(400, error_body("bad_request", "Sec-WebSocket-Key must be the base64 of 16 bytes"), false,
                  "application/json");
            return;
        }
        auto identity = decide_identity(query_param(req.target(), "token"), ctx_->cfg.secret_key,
                                        ctx_->cfg.auth_required, unix_now());
        // Bytes the client sent right after its request (its first frames) are the session's.
        const auto early = buffer_.cdata();
        std::string early_bytes(static_cast<const char*>(early.data()), early.size());
        buffer_.consume(buffer_.size());
        stream_.expires_never();
        // The connection moves to the sessions' io_context, with a strand of its own there.
        auto front = stream_.release_socket();
        net::ip::tcp::socket moved(net::make_strand(sessions_));
        const auto protocol = front.local_endpoint(ec).protocol();
        const auto native = front.release(ec);
        if (ec) {
            return;
        }
        moved.assign(protocol, native, ec);
        if (ec) {
            ::close(native);
            return;
        }
        std::make_shared<websocket_session>(std::move(moved), ctx_, decision.id, decision.since,
                                            std::move(identity), std::move(*accept), std::move(early_bytes))
            ->run();
        return;
    }
    // The page and the API answer only for ALLOWED_HOSTS, as Django does (400).
    auto page = route_page(req.method_string(), req.target());
    const bool api = is_api_path(req.target());
    if ((api || page) && !host_allowed(ctx_->cfg.allowed_hosts, req[http::field::host])) {
        const auto r = api_error(400, "bad_request", "host not allowed");
        reply(r.status, r.body, false, "application/json");
        return;
    }
    if (api) {
        handle_api(std::move(req));
        return;
    }
    if (page) {
        reply(page->status, std::move(page->body), req.keep_alive(), page->content_type, page->headers);
        return;
    }
    const auto extra = ctx_->observe();
    service_status status;
    status.app_name = ctx_->cfg.app_name;
    status.app_version = ctx_->cfg.app_version;
    status.env = to_string(ctx_->cfg.env);
    status.draining = ctx_->draining;
    status.postgres_up = extra.postgres_up;
    status.redis_configured = extra.redis_configured;
    status.redis_connected = extra.redis_connected;
    const auto r = route_http(req.method_string(), req.target(), status,
                              [&] { return ctx_->stats.render(extra); });
    reply(r.status, r.body, req.keep_alive(), r.content_type);
}

void http_session::handle_api(http::request<http::string_body>&& req) {
    const bool keep_alive = req.keep_alive();
    const api_request areq{req.method_string(), req.target(), req[http::field::authorization], req.body()};
    auto route = route_api(areq, ctx_->cfg.secret_key, unix_now());
    if (route.reply) {
        send_api(std::move(*route.reply), keep_alive);
        return;
    }
    // Postgres work runs on the pool; the reply comes back to this connection's strand.
    auto self = shared_from_this();
    const auto unavailable = [self, keep_alive](std::string_view why) {
        net::post(self->stream_.get_executor(), [self, keep_alive, why = std::string(why)] {
            self->send_api(api_error(503, "unavailable", why), keep_alive);
        });
    };
    const bool queued = ctx_->db.post(db_pool::job{
        [self, job = std::move(route.job), keep_alive](auction_store& store) {
            auto r = job(store);
            net::post(self->stream_.get_executor(),
                      [self, r = std::move(r), keep_alive]() mutable { self->send_api(std::move(r), keep_alive); });
        },
        [unavailable](db_pool::refusal why) {
            unavailable(why == db_pool::refusal::expired ? "the server is too busy; try again later"
                                                          : "the database is unavailable; try again later");
        },
        std::chrono::steady_clock::now() + ctx_->cfg.db_timeout});
    if (!queued) {
        unavailable("the server is too busy; try again later");
    }
}

void http_session::send_api(api_reply r, bool keep_alive) {
    if (r.closed && ctx_->publish_close) {
        ctx_->publish_close(r.closed->first, r.closed->second);
    }
    reply(r.status, std::move(r.body), keep_alive, "application/json", r.headers);
}

void http_session::reply(unsigned status, std::string body, bool keep_alive, std::string_view content_type,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
    res->set(http::field::server, "bidding-server");
    res->set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) {
        res->set(name, value);
    }
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t n) {
        self->on_write(keep_alive, ec, n);
    });
}

void http_session::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
    if (ec) {
        return;
    }
    if (!keep_alive) {
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
        return;
    }
    do_read();
}

}  // namespace bidding
