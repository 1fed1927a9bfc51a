#include <bidding/bid_service.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/protocol.hpp>
#include <bidding/session_registry.hpp>
#include <bidding/websocket_session.hpp>

#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

namespace bidding {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

const shared_text& ping_message() {
    static const shared_text ping = make_shared_text(serialize_ping());
    return ping;
}

websocket::close_reason reason(std::uint16_t code, const char* text) {
    websocket::close_reason r(code);
    r.reason = text;
    return r;
}

}  // namespace

websocket_session::websocket_session(net::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx,
                                     auction_id id, std::optional<seq_t> since, ws_identity identity)
    : ws_(std::move(socket)),
      ctx_(std::move(ctx)),
      auction_(id),
      since_(since),
      identity_(std::move(identity)),
      bid_rate_(ctx_->cfg.bid_rate_limit, ctx_->cfg.bid_burst),
      ping_timer_(ws_.get_executor()),
      idle_timer_(ws_.get_executor()) {
    beast::error_code ec;
    const auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    if (!ec) {
        auto addr = ep.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
            addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());  // the dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        }
        peer_ = addr.to_string() + ":" + std::to_string(ep.port());
    }
}

websocket_session::~websocket_session() {
    if (counted_) {
        ctx_->stats.connection_closed();
    }
    if (joined_) {
        ctx_->registry.leave(auction_, this);
    }
    spdlog::debug("connection closed: {} auction {}", peer_, auction_);
}

void websocket_session::run(http::request<http::string_body> req) {
    // The websocket stream's own timeouts replace the tcp_stream's: handshakes (opening and
    // closing) are bounded; idleness is judged by the application heartbeat instead.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout opt{};
    opt.handshake_timeout = std::chrono::seconds(10);
    opt.idle_timeout = websocket::stream_base::none();
    opt.keep_alive_pings = false;
    ws_.set_option(opt);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "bidding-server"); }));
    ws_.read_message_max(ctx_->cfg.max_message_bytes);
    ws_.async_accept(req, beast::bind_front_handler(&websocket_session::on_accept, shared_from_this()));
}

void websocket_session::on_accept(beast::error_code ec) {
    if (ec) {
        spdlog::debug("websocket handshake failed: {} {}", peer_, ec.message());
        phase_ = phase::closed;
        return;
    }
    spdlog::debug("connection opened: {} auction {}", peer_, auction_);
    ctx_->stats.connection_opened();
    counted_ = true;
    if (ctx_->draining) {
        phase_ = phase::live;  // so that close() proceeds
        close(reason(1012, "server shutdown"));
        return;
    }
    if (identity_.refused) {
        spdlog::debug("unauthorized: {} auction {}", peer_, auction_);
        phase_ = phase::live;
        close(reason(4001, "unauthorized"));
        return;
    }
    // Join before reading the snapshot: a bid committed after the read is then surely
    // delivered, and one committed before it is dropped by its seq.
    ctx_->registry.join(auction_, shared_from_this());
    joined_ = true;
    phase_ = phase::loading;
    ctx_->db.post([self = shared_from_this(), limit = ctx_->cfg.history_limit](postgres_store& store) {
        snapshot_result result;
        try {
            result.snapshot = store.load_snapshot(self->auction_, limit, self->since_);
            if (result.snapshot) {
                // Where this pod's delivery of the auction starts, if it has not started yet.
                self->ctx_->registry.baseline(self->auction_, result.snapshot->info.last_seq);
            }
        } catch (const std::exception& e) {
            spdlog::warn("cannot load auction {}: {}", self->auction_, e.what());
            result.unavailable = true;
        }
        net::post(self->ws_.get_executor(),
                  [self, result = std::move(result)]() mutable { self->on_snapshot(std::move(result)); });
    });
}

void websocket_session::on_snapshot(snapshot_result result) {
    if (phase_ != phase::loading) {
        return;
    }
    phase_ = phase::live;
    if (result.unavailable) {
        close(reason(1013, "try again later"));
        return;
    }
    if (!result.snapshot) {
        close(reason(4004, "bid not found"));
        return;
    }
    const auto& snap = *result.snapshot;
    if (snap.info.status != auction_status::open) {
        close(reason(4003, "bid closed"));
        return;
    }
    last_seq_ = snap.info.last_seq;
    send(make_shared_text(since_ ? serialize_initial_state(snap.info, snap.entries, *since_, snap.truncated)
                                 : serialize_initial_state(snap.info, snap.entries)));
    release_held();
    touch();
    arm_ping();
    arm_idle();
    do_read();
}

void websocket_session::do_read() {
    if (reading_ || phase_ != phase::live) {
        return;
    }
    if (bids_in_flight_ >= max_bids_in_flight) {
        read_paused_ = true;
        return;
    }
    reading_ = true;
    ws_.async_read(buffer_, beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec) {
        if (ec == websocket::error::message_too_big) {
            // Beast has already closed the connection with 1009.
            spdlog::debug("frame over MAX_MESSAGE_BYTES from {}: closed with 1009", peer_);
        } else if (ec != websocket::error::closed && ec != net::error::operation_aborted) {
            spdlog::debug("read failed: {} {}", peer_, ec.message());
        }
        finish();
        return;
    }
    if (phase_ != phase::live) {
        return;
    }
    ctx_->stats.message_in();
    if (!ws_.got_text()) {
        ctx_->stats.bid_rejected(error_code::unsupported);
        send(make_shared_text(serialize_error(error_code::unsupported, "binary frames are not supported", std::nullopt)));
    } else {
        const auto data = buffer_.cdata();
        handle_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    buffer_.consume(buffer_.size());
    do_read();
}

void websocket_session::handle_text(std::string_view text) {
    auto message = parse_client_message(text, identity_.name.has_value());
    if (auto* bid = std::get_if<bid_request>(&message); bid != nullptr && identity_.name) {
        bid->name = *identity_.name;  // a signed identity wins over whatever the message says
    }
    if (std::holds_alternative<pong_message>(message)) {
        touch();
        return;
    }
    if (auto* error = std::get_if<message_error>(&message)) {
        // A bid that failed validation still counts as a sign of life.
        if (error->code == error_code::invalid_name || error->code == error_code::invalid_price) {
            touch();
        }
        spdlog::debug("bid rejected: auction {} {} from {}", auction_, to_string(error->code), peer_);
        ctx_->stats.bid_rejected(error->code);
        send(make_shared_text(serialize_error(error->code, error->message, error->ref)));
        return;
    }
    touch();
    if (!bid_rate_.allow(std::chrono::steady_clock::now())) {
        auto& bid = std::get<bid_request>(message);
        ctx_->stats.bid_rejected(error_code::rate_limited);
        send(make_shared_text(
            serialize_error(error_code::rate_limited, "too many bids; slow down and try again", bid.ref)));
        return;
    }
    if (ctx_->draining) {
        auto& bid = std::get<bid_request>(message);
        ctx_->stats.bid_rejected(error_code::unavailable);
        send(make_shared_text(serialize_error(error_code::unavailable,
                                              "the server is shutting down; the bid was not stored", bid.ref)));
        return;
    }
    ++bids_in_flight_;
    ctx_->bids.submit(auction_, std::move(std::get<bid_request>(message)),
                      [self = shared_from_this()](seq_t accepted_seq, shared_text reply) {
                          net::post(self->ws_.get_executor(), [self, accepted_seq, reply = std::move(reply)]() mutable {
                              self->on_bid_reply(accepted_seq, std::move(reply));
                          });
                      });
}

void websocket_session::on_bid_reply(seq_t accepted_seq, shared_text reply) {
    --bids_in_flight_;
    replies_.emplace_back(accepted_seq, std::move(reply));
    flush_replies();
    if (read_paused_) {
        read_paused_ = false;
        do_read();
    }
}

// The bidder sees its new_bid before its bid_accepted, even when this pod is still catching up
// on bids from other pods that precede it.
void websocket_session::flush_replies() {
    while (!replies_.empty() && replies_.front().first <= last_seq_) {
        send(std::move(replies_.front().second));
        replies_.pop_front();
    }
}

void websocket_session::deliver(fanout_batch batch) {
    net::post(ws_.get_executor(), [self = shared_from_this(), batch = std::move(batch)] { self->on_deliver(batch); });
}

void websocket_session::on_deliver(const fanout_batch& batch) {
    if (phase_ == phase::loading || (phase_ == phase::live && filling_)) {
        held_.insert(held_.end(), batch->begin(), batch->end());
        return;
    }
    for (const auto& m : *batch) {
        take(m);
    }
}

// Exactly once, in order, no gap: a message is sent only when it follows the last one sent.
void websocket_session::take(const fanout_message& m) {
    if (phase_ != phase::live || m.seq <= last_seq_) {
        return;
    }
    if (filling_) {
        held_.push_back(m);
        return;
    }
    if (m.prev > last_seq_) {
        // This client's snapshot is older than what the pod has delivered since (two first
        // clients whose snapshots finished out of order): read the missing rows for it.
        held_.push_back(m);
        start_fill();
        return;
    }
    send(m.text);
    last_seq_ = m.seq;
    flush_replies();
}

void websocket_session::release_held() {
    auto held = std::move(held_);
    held_.clear();
    for (const auto& m : held) {
        take(m);
    }
}

void websocket_session::start_fill() {
    filling_ = true;
    ctx_->db.post([self = shared_from_this(), after = last_seq_](postgres_store& store) {
        std::optional<std::vector<history_entry>> rows;
        try {
            rows = store.history_after(self->auction_, after, session_registry::fill_limit);
        } catch (const std::exception& e) {
            spdlog::warn("cannot read auction {} after seq {}: {}", self->auction_, after, e.what());
        }
        net::post(self->ws_.get_executor(), [self, rows = std::move(rows)]() mutable { self->on_fill(std::move(rows)); });
    });
}

void websocket_session::on_fill(std::optional<std::vector<history_entry>> rows) {
    filling_ = false;
    if (!rows) {
        // Order can no longer be promised on this connection: the client reconnects with since.
        close(reason(1013, "try again later"));
        return;
    }
    for (const auto& row : *rows) {
        if (row.seq > last_seq_) {
            send(make_shared_text(serialize_new_bid(auction_, row)));
            last_seq_ = row.seq;
        }
    }
    flush_replies();
    release_held();
}

void websocket_session::close_auction(shared_text message) {
    net::post(ws_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
        self->last_word(message, reason(4003, "bid closed"));
    });
}

void websocket_session::shutdown(shared_text message) {
    net::post(ws_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
        self->last_word(message, reason(1012, "server shutdown"));
    });
}

// A client that already has its initial_state gets the message first; one still loading is
// just closed. Replies still waiting for their new_bid (this pod was catching up on another
// pod's bids) go out first: an acknowledgement of a stored bid must not be lost to the close;
// the client reads the new_bid back with ?since= when it reconnects.
void websocket_session::last_word(const shared_text& message, websocket::close_reason why) {
    if (phase_ == phase::live) {
        for (auto& [seq, reply] : replies_) {
            send(std::move(reply));
        }
        replies_.clear();
        send(message);
    }
    if (phase_ == phase::loading || phase_ == phase::live) {
        phase_ = phase::live;
        close(std::move(why));
    }
}

void websocket_session::send(shared_text message) {
    if (phase_ != phase::live) {
        return;
    }
    if (queue_.size() >= max_queued_messages) {
        abort("too far behind");
        return;
    }
    queue_.push_back(std::move(message));
    ctx_->stats.message_out();
    if (!writing_) {
        do_write();
    }
}

void websocket_session::do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
        if (ec != net::error::operation_aborted) {
            spdlog::debug("write failed: {} {}", peer_, ec.message());
        }
        finish();
        return;
    }
    queue_.pop_front();
    if (!queue_.empty()) {
        do_write();
    } else if (phase_ == phase::closing && close_reason_) {
        do_close();
    }
}

void websocket_session::close(websocket::close_reason why) {
    if (phase_ != phase::live) {
        return;
    }
    phase_ = phase::closing;
    ping_timer_.cancel();
    idle_timer_.cancel();
    close_reason_ = std::move(why);
    if (!writing_) {
        do_close();  // otherwise after the queued messages are written
    }
}

void websocket_session::do_close() {
    spdlog::debug("closing {} auction {}: {} {}", peer_, auction_, close_reason_->code, close_reason_->reason.c_str());
    ws_.async_close(*close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
    close_reason_.reset();
}

void websocket_session::abort(const char* why) {
    spdlog::info("dropping {} on auction {}: {}", peer_, auction_, why);
    ctx_->stats.slow_consumer_dropped();
    finish();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
}

void websocket_session::finish() {
    phase_ = phase::closed;
    queue_.clear();
    ping_timer_.cancel();
    idle_timer_.cancel();
}

void websocket_session::touch() { last_activity_ = std::chrono::steady_clock::now(); }

void websocket_session::arm_ping() {
    ping_timer_.expires_after(ctx_->cfg.heartbeat_interval);
    ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->phase_ != phase::live) {
            return;
        }
        self->send(ping_message());
        self->arm_ping();
    });
}

void websocket_session::arm_idle() {
    // One timer per session, re-armed only when it fires: activity just moves the deadline.
    idle_timer_.expires_at(last_activity_ + ctx_->cfg.idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->phase_ != phase::live) {
            return;
        }
        if (std::chrono::steady_clock::now() >= self->last_activity_ + self->ctx_->cfg.idle_timeout) {
            spdlog::debug("idle timeout: {} auction {}", self->peer_, self->auction_);
            self->close(reason(1000, "idle timeout"));
        } else {
            self->arm_idle();
        }
    });
}

}  // namespace bidding
