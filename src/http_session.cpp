#include <bidding/api_routes.hpp>
#include <bidding/client_address.hpp>
#include <bidding/connection_limits.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/http_session.hpp>
#include <bidding/websocket_session.hpp>
#include <bidding/ws_frames.hpp>

#include <boost/asio/dispatch.hpp>
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
constexpr auto body_timeout = std::chrono::seconds(30);  // the rest of a request, once its headers are in
constexpr std::uint32_t header_limit = 8 * 1024;  // the request line and the headers together
constexpr std::uint64_t body_limit = max_api_body_bytes;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Every X-Forwarded-For of the request, in order, as one list.
std::string forwarded_for(const http::request<http::string_body>& req) {
    std::string out;
    const auto [first, last] = req.equal_range("X-Forwarded-For");
    for (auto it = first; it != last; ++it) {
        if (!out.empty()) {
            out += ',';
        }
        out += it->value();
    }
    return out;
}
}  // namespace

http_session::http_session(net::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx,
                           net::io_context& sessions)
    : stream_(std::move(socket)), ctx_(std::move(ctx)), sessions_(sessions) {}

void http_session::run() { do_read(); }

// The headers first, within HTTP_HEADER_TIMEOUT (a client sending a byte every few seconds is
// dropped, as nginx's client_header_timeout does), then whatever body they announce.
void http_session::do_read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    stream_.expires_after(ctx_->cfg.http_header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&http_session::on_header, shared_from_this()));
}

void http_session::on_header(beast::error_code ec, std::size_t bytes) {
    if (ec == beast::error::timeout) {
        ctx_->stats.refused(refusal::header_timeout);
        return;  // the stream closed the socket
    }
    if (ec || parser_->is_done()) {
        on_read(ec, bytes);
        return;
    }
    stream_.expires_after(body_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

// Answers a request refused before routing, then closes: what follows it cannot be trusted.
void http_session::refuse(refusal why, unsigned status) {
    ctx_->stats.refused(why);
    const auto r = refusal_reply(status);
    reply(r.status, r.body, false, r.content_type, r.headers);
}

void http_session::on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) {
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
        return;
    }
    if (ec == http::error::header_limit) {
        const auto head = buffer_.cdata();
        const auto status = oversized_head_status(std::string_view(static_cast<const char*>(head.data()), head.size()));
        refuse(status == 414 ? refusal::uri_too_long : refusal::headers_too_large, status);
        return;
    }
    if (ec == http::error::body_limit) {
        refuse(refusal::body_too_large, 413);
        return;
    }
    if (ec) {
        if (ec.category() == make_error_code(http::error::bad_method).category() && ec != http::error::partial_message &&
            ec != http::error::need_more && ec != http::error::need_buffer) {
            refuse(refusal::malformed_request, 400);  // not HTTP: bad method, version, field, chunk...
        } else if (ec == beast::error::timeout) {
            ctx_->stats.refused(refusal::header_timeout);  // the body did not come in time either
        } else if (ec != net::error::operation_aborted && ec != net::error::connection_reset &&
                   ec != http::error::partial_message) {
            spdlog::debug("http read failed: {}", ec.message());
        }
        return;
    }
    auto req = parser_->release();
    // A target Boost.URL does not read as a path and a query: 400, upgrade or not, before any route.
    if (!valid_target(req.target())) {
        ctx_->stats.refused(refusal::malformed_request);
        reply(400, bad_target_body(), false, "application/json");
        return;
    }
    if (beast::websocket::is_upgrade(req)) {
        upgrade(std::move(req));
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
    const auto extra = ctx_->observe(false);
    service_status status;
    status.app_name = ctx_->cfg.app_name;
    status.app_version = ctx_->cfg.app_version;
    status.env = to_string(ctx_->cfg.env);
    status.draining = ctx_->draining;
    status.postgres_up = extra.postgres_up;
    status.redis_configured = extra.redis_configured;
    status.redis_connected = extra.redis_connected;
    const auto r = route_http(req.method_string(), req.target(), status,
                              [&] { return ctx_->stats.render(ctx_->observe(true)); });
    reply(r.status, r.body, req.keep_alive(), r.content_type, r.headers);
}

// Every check of an upgrade is answered here, before the connection becomes a websocket_session
// and before any database work: a refused client costs one short HTTP answer.
void http_session::upgrade(http::request<http::string_body>&& req) {
    std::optional<std::string_view> origin;
    if (const auto it = req.find(http::field::origin); it != req.end()) {
        origin = it->value();
    }
    const auto decision = decide_upgrade(ctx_->cfg.allowed_hosts, req.target(), req[http::field::host], origin);
    if (decision.status != 0) {
        // The path only: the query may hold a ?token=, which no log line ever shows.
        spdlog::debug("upgrade refused with {}: path {}", decision.status, path_of(req.target()));
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
    // MAX_CONNECTIONS, then MAX_CONNECTIONS_PER_IP for the client behind any trusted proxy.
    beast::error_code ec;
    const auto peer = ip_address::parse(stream_.socket().remote_endpoint(ec).address().to_string());
    if (ec || !peer) {
        return;  // the client is gone already
    }
    const auto client = client_address(*peer, forwarded_for(req), ctx_->cfg.trusted);
    auto admission = ctx_->limits->admit(client.limit_key());
    if (admission.result != connection_limits::verdict::admitted) {
        const bool pod = admission.result == connection_limits::verdict::pod_full;
        ctx_->stats.refused(pod ? refusal::max_connections : refusal::max_connections_per_ip);
        const auto r = refusal_reply(pod ? 503 : 429, pod ? ctx_->limits->max_total() : ctx_->limits->max_per_client());
        reply(r.status, r.body, false, r.content_type, r.headers);
        return;
    }
    auto identity = decide_identity(query_param(req.target(), "token"), ctx_->cfg.secret_key, ctx_->cfg.auth_required,
                                    unix_now());
    // Bytes the client sent right after its request (its first frames) are the session's.
    const auto early = buffer_.cdata();
    std::string early_bytes(static_cast<const char*>(early.data()), early.size());
    buffer_.consume(buffer_.size());
    stream_.expires_never();
    pending_ = pending_upgrade{decision.id,          decision.since,         std::move(identity),
                               std::move(*accept),   std::move(early_bytes), std::move(admission.place)};
    // Now when fewer than MAX_OPENING_CONNECTIONS are being set up, else in its turn.
    ctx_->openings->enter([self = shared_from_this()](opening_gate::ticket place, opening_gate::clock::duration waited) {
        net::dispatch(self->stream_.get_executor(), [self, place = std::move(place), waited]() mutable {
            self->open_websocket(std::move(place), waited);
        });
    });
}

void http_session::open_websocket(opening_gate::ticket place, opening_gate::clock::duration waited) {
    auto up = std::move(*pending_);
    pending_.reset();
    // Its place came too late for a client that has waited this long: a fast answer instead (the
    // places free as the database answers the snapshot reads, at worst after DB_TIMEOUT).
    if (waited > ctx_->cfg.ws_handshake_timeout) {
        ctx_->stats.refused(refusal::opening_timeout);
        const auto r = opening_refusal_reply();
        reply(r.status, r.body, false, r.content_type, r.headers);
        return;
    }
    if (ctx_->draining) {
        reply(503, R"({"error":"draining","message":"server is shutting down"})", false, "application/json");
        return;
    }
    beast::error_code ec;
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
    std::make_shared<websocket_session>(std::move(moved), ctx_, up.id, up.since, std::move(up.identity),
                                        std::move(up.accept_key), std::move(up.early_bytes), std::move(up.place),
                                        std::move(place))
        ->run();
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
    // RFC 9110 asks it of a server with a clock; the list page counts down by it.
    res->set(http::field::date, format_http_date(ctx_->clock.now()));
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
