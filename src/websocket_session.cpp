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
      heartbeat_timer_(ws_.get_executor()),
      send_timer_(ws_.get_executor()),
      feed_(ctx_->cfg.max_send_queue_bytes),
      queue_(ctx_->cfg.max_send_queue_bytes) {
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
    if (load_ && lagging_) {
        load_->session_over(false);
    }
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
    load_ = ctx_->registry.join(auction_, shared_from_this());
    joined_ = true;
    phase_ = phase::loading;
    auto self = shared_from_this();
    const bool queued = ctx_->db.post(db_pool::job{
        [self, limit = ctx_->cfg.history_limit](postgres_store& store) {
            snapshot_result result;
            try {
                result.snapshot = store.load_snapshot(self->auction_, limit, self->since_);
                if (result.snapshot) {
                    // Where this pod's delivery of the auction starts, if it has not started yet.
                    self->ctx_->registry.baseline(self->auction_, result.snapshot->info.last_seq);
                }
            } catch (const std::exception& e) {
                spdlog::debug("cannot load auction {}: {}", self->auction_, e.what());
                result.unavailable = true;
            }
            net::post(self->ws_.get_executor(),
                      [self, result = std::move(result)]() mutable { self->on_snapshot(std::move(result)); });
        },
        [self](db_pool::refusal) {
            net::post(self->ws_.get_executor(), [self] { self->on_snapshot(snapshot_result{std::nullopt, true}); });
        },
        clock::now() + ctx_->cfg.db_timeout - ctx_->cfg.db_timeout / 10});
    if (!queued) {
        on_snapshot(snapshot_result{std::nullopt, true});
    }
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
    send(make_shared_text(since_ ? serialize_initial_state(snap.info, snap.entries, *since_, snap.truncated)
                                 : serialize_initial_state(snap.info, snap.entries)));
    apply(feed_.start(snap.info.last_seq));
    report_lag(clock::now());
    touch();
    next_ping_ = clock::now() + ctx_->cfg.heartbeat_interval;
    arm_heartbeat();
    do_read();
}

void websocket_session::do_read() {
    if (reading_ || phase_ != phase::live) {
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
        reject(error_code::unsupported, "binary frames are not supported", std::nullopt);
    } else {
        const auto data = buffer_.cdata();
        handle_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    buffer_.consume(buffer_.size());
    do_read();
}

void websocket_session::reject(error_code code, std::string_view message, const std::optional<std::string>& ref) {
    ctx_->stats.bid_rejected(code);
    send(make_shared_text(serialize_error(code, message, ref)));
}

void websocket_session::handle_text(std::string_view text) {
    auto message = parse_client_message(text, identity_.name.has_value());
    if (std::holds_alternative<pong_message>(message)) {
        touch();
        return;
    }
    if (auto* error = std::get_if<message_error>(&message)) {
        // A bid that failed validation still counts as a sign of life.
        if (error->code == error_code::invalid_name || error->code == error_code::invalid_price) {
            touch();
        }
        reject(error->code, error->message, error->ref);
        return;
    }
    auto& bid = std::get<bid_request>(message);
    if (identity_.name) {
        bid.name = *identity_.name;  // a signed identity wins over whatever the message says
    }
    touch();
    const auto now = clock::now();
    if (!bid_rate_.allow(now)) {
        reject(error_code::rate_limited, "too many bids; slow down and try again", bid.ref);
        return;
    }
    if (ctx_->draining) {
        reject(error_code::unavailable, "the server is shutting down; the bid was not stored", bid.ref);
        return;
    }
    if (bids_in_flight_ >= max_bids_in_flight || load_->refuse_bids(now)) {
        // Reading goes on (a bid left unread in the socket would wait without bound): what this
        // connection cannot take now is refused at once; and while this auction's fan-out is
        // behind, taking more would grow every client's queue: refuse before any reaches its bound.
        reject(error_code::overloaded, "the server is too busy; the bid was not stored; retry later", bid.ref);
        return;
    }
    ++bids_in_flight_;
    ctx_->bids.submit(auction_, std::move(bid), now, [self = shared_from_this()](seq_t accepted_seq, shared_text reply) {
        net::post(self->ws_.get_executor(), [self, accepted_seq, reply = std::move(reply)]() mutable {
            self->on_bid_reply(accepted_seq, std::move(reply));
        });
    });
}

void websocket_session::on_bid_reply(seq_t accepted_seq, shared_text reply) {
    --bids_in_flight_;
    if (phase_ == phase::live) {
        apply(feed_.reply(accepted_seq, std::move(reply)));
        report_lag(clock::now());
    }
}

void websocket_session::deliver(fanout_batch batch, std::int64_t bytes, clock::time_point handed_over) {
    net::post(ws_.get_executor(), [self = shared_from_this(), batch = std::move(batch), bytes, handed_over] {
        self->on_deliver(batch, bytes, handed_over);
    });
}

void websocket_session::on_deliver(const fanout_batch& batch, std::int64_t bytes, clock::time_point handed_over) {
    load_->taken(bytes);
    if (phase_ == phase::loading || phase_ == phase::live) {
        apply(feed_.deliver(*batch), handed_over);
        report_lag(clock::now());
    }
}

void websocket_session::apply(session_feed::step step, clock::time_point since) {
    for (auto& m : step.send) {
        send(std::move(m), since);
    }
    if (step.fill && phase_ == phase::live) {
        start_fill();
    }
}

void websocket_session::start_fill() {
    auto self = shared_from_this();
    const auto fail = [self] {
        net::post(self->ws_.get_executor(), [self] { self->on_fill(std::nullopt, false); });
    };
    const bool queued = ctx_->db.post(db_pool::job{
        [self, after = feed_.last()](postgres_store& store) {
            std::optional<std::vector<fanout_message>> rows;
            bool complete = false;
            try {
                const auto entries = store.history_after(self->auction_, after, session_registry::fill_limit);
                complete = entries.size() < session_registry::fill_limit;
                rows.emplace();
                rows->reserve(entries.size());
                seq_t prev = after;
                for (const auto& e : entries) {
                    rows->push_back(fanout_message{prev, e.seq, make_shared_text(serialize_new_bid(self->auction_, e))});
                    prev = e.seq;
                }
            } catch (const std::exception& e) {
                spdlog::debug("cannot read auction {} after seq {}: {}", self->auction_, after, e.what());
            }
            net::post(self->ws_.get_executor(), [self, rows = std::move(rows), complete]() mutable {
                self->on_fill(std::move(rows), complete);
            });
        },
        [fail](db_pool::refusal) { fail(); }, clock::now() + ctx_->cfg.db_timeout - ctx_->cfg.db_timeout / 10});
    if (!queued) {
        on_fill(std::nullopt, false);
    }
}

void websocket_session::on_fill(std::optional<std::vector<fanout_message>> rows, bool complete) {
    if (phase_ != phase::live) {
        return;
    }
    if (!rows) {
        // Order can no longer be promised on this connection: the client reconnects with since.
        close(reason(1013, "try again later"));
        return;
    }
    apply(feed_.filled(*rows, complete));
    report_lag(clock::now());
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
        for (auto& reply : feed_.take_replies()) {
            send(std::move(reply));
        }
        send(message);
    }
    if (phase_ == phase::loading || phase_ == phase::live) {
        phase_ = phase::live;
        close(std::move(why));
    }
}

void websocket_session::send(shared_text message, clock::time_point since) {
    if (phase_ != phase::live) {
        return;
    }
    if (!queue_.push(std::move(message), since)) {
        slow_consumer();
        return;
    }
    ctx_->stats.message_out();
    if (!queue_.writing()) {
        do_write();
    }
}

void websocket_session::do_write() {
    // Called when the socket has nothing in flight: the clock of this write starts now.
    last_progress_ = clock::now();
    if (!send_watch_armed_) {
        arm_send_watch(last_progress_ + ctx_->cfg.send_timeout);
    }
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.start_write()),
                    beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t) {
    queue_.finish_write();
    last_progress_ = clock::now();
    if (ec) {
        if (ec != net::error::operation_aborted && phase_ != phase::closed) {
            spdlog::debug("write failed: {} {}", peer_, ec.message());
        }
        finish();
        return;
    }
    if (phase_ == phase::closed) {
        return;
    }
    if (queue_.has_waiting()) {
        do_write();
    } else if (phase_ == phase::closing && close_reason_) {
        do_close();
    }
    report_lag(last_progress_);
}

void websocket_session::close(websocket::close_reason why) {
    if (phase_ != phase::live) {
        return;
    }
    phase_ = phase::closing;
    heartbeat_timer_.cancel();
    close_reason_ = std::move(why);
    // The close too must finish in time: a peer that reads nothing never takes the close frame.
    close_deadline_ = clock::now() + ctx_->cfg.send_timeout;
    if (!send_watch_armed_) {
        arm_send_watch(close_deadline_);
    }
    if (!queue_.writing()) {
        do_close();  // otherwise after the queued messages are written
    }
}

void websocket_session::do_close() {
    spdlog::debug("closing {} auction {}: {} {}", peer_, auction_, close_reason_->code, close_reason_->reason.c_str());
    ws_.async_close(*close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
    close_reason_.reset();
}

// Beyond MAX_SEND_QUEUE_BYTES: what waits is dropped (so the pod's memory stays bounded) and the
// client is told why, once the write in flight (if any) is out; the send watch drops the TCP
// connection if even that does not happen within SEND_TIMEOUT.
void websocket_session::slow_consumer() {
    spdlog::info("slow consumer: closing {} on auction {} ({} bytes waiting)", peer_, auction_, queue_.bytes());
    if (!slow_counted_) {
        slow_counted_ = true;
        ctx_->stats.slow_consumer_dropped();
    }
    queue_.drop_waiting();
    close(reason(1008, "slow consumer"));
    report_lag(clock::now());
}

void websocket_session::abort(const char* why) {
    spdlog::info("dropping {} on auction {}: {}", peer_, auction_, why);
    if (!slow_counted_) {
        slow_counted_ = true;
        ctx_->stats.slow_consumer_dropped();
    }
    finish();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);  // releases the descriptor now; pending operations abort
}

void websocket_session::finish() {
    phase_ = phase::closed;
    queue_.drop_waiting();
    heartbeat_timer_.cancel();
    send_timer_.cancel();
    report_lag(clock::now());
}

// Whether this client is late (its oldest unwritten message waited longer than FANOUT_MAX_LAG),
// kept current in the auction's fan-out load: one atomic operation per change, none per message.
void websocket_session::report_lag(clock::time_point now) {
    if (!load_) {
        return;
    }
    const auto oldest = queue_.oldest();
    const bool late = phase_ != phase::closed && oldest && now - *oldest > load_->max_lag();
    if (late != lagging_) {
        load_->session_over(late);
        lagging_ = late;
    }
}

void websocket_session::touch() { last_activity_ = clock::now(); }

// One timer for the heartbeat and the idle deadline: it fires at whichever comes first; activity
// only moves the idle deadline later, so it costs no timer operation.
void websocket_session::arm_heartbeat() {
    heartbeat_timer_.expires_at(std::min(next_ping_, last_activity_ + ctx_->cfg.idle_timeout));
    heartbeat_timer_.async_wait(beast::bind_front_handler(&websocket_session::on_heartbeat, shared_from_this()));
}

void websocket_session::on_heartbeat(beast::error_code ec) {
    if (ec || phase_ != phase::live) {
        return;
    }
    const auto now = clock::now();
    if (now >= last_activity_ + ctx_->cfg.idle_timeout) {
        spdlog::debug("idle timeout: {} auction {}", peer_, auction_);
        close(reason(1000, "idle timeout"));
        return;
    }
    if (now >= next_ping_) {
        send(ping_message());
        next_ping_ = std::max(next_ping_ + ctx_->cfg.heartbeat_interval, now);
    }
    if (phase_ == phase::live) {
        arm_heartbeat();
    }
}

void websocket_session::arm_send_watch(clock::time_point at) {
    send_watch_armed_ = true;
    send_timer_.expires_at(at);
    send_timer_.async_wait(beast::bind_front_handler(&websocket_session::on_send_watch, shared_from_this()));
}

// A write in flight must complete, and a close must finish, within SEND_TIMEOUT.
void websocket_session::on_send_watch(beast::error_code ec) {
    send_watch_armed_ = false;
    if (ec || phase_ == phase::closed) {
        return;
    }
    const auto now = clock::now();
    const auto write_deadline = last_progress_ + ctx_->cfg.send_timeout;
    if (phase_ == phase::closing && now >= close_deadline_) {
        abort("the close did not complete within SEND_TIMEOUT");
        return;
    }
    if (queue_.writing() && now >= write_deadline) {
        abort("no write progress for SEND_TIMEOUT");
        return;
    }
    std::optional<clock::time_point> next;
    if (queue_.writing()) {
        next = write_deadline;
    }
    if (phase_ == phase::closing) {
        next = next ? std::min(*next, close_deadline_) : close_deadline_;
    }
    if (next) {
        arm_send_watch(*next);
    }
}

}  // namespace bidding
