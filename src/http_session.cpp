#include <bidding/http_routes.hpp>
#include <bidding/http_session.hpp>
#include <bidding/websocket_session.hpp>

#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

namespace bidding {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::uint32_t header_limit = 8 * 1024;
constexpr std::uint64_t body_limit = 64 * 1024;
}  // namespace

http_session::http_session(net::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx)
    : stream_(std::move(socket)), ctx_(std::move(ctx)) {}

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
    if (ec) {
        if (ec != beast::error::timeout && ec != net::error::operation_aborted && ec != net::error::connection_reset) {
            spdlog::debug("http read failed: {}", ec.message());
        }
        return;
    }
    auto req = parser_->release();
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
        std::make_shared<websocket_session>(stream_.release_socket(), ctx_, decision.id, decision.since)
            ->run(std::move(req));
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

void http_session::reply(unsigned status, std::string body, bool keep_alive, std::string_view content_type) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
    res->set(http::field::server, "bidding-server");
    res->set(http::field::content_type, content_type);
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
