#include <bidding/bid_service.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/protocol.hpp>
#include <bidding/session_registry.hpp>
#include <bidding/websocket_session.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <span>

namespace bidding {

namespace net = boost::asio;

namespace {

std::string peer_of(const net::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) {
        return {};
    }
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
        addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());  // the dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    }
    return addr.to_string() + ":" + std::to_string(ep.port());
}

// One read buffer per socket thread, not per connection: a read's bytes are parsed (and copied
// where they must be kept) before the handler returns.
constexpr std::size_t read_chunk = 64 * 1024;
thread_local std::array<char, read_chunk> read_buffer;

}  // namespace

websocket_session::websocket_session(net::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx,
                                     auction_id id, std::optional<seq_t> since, ws_identity identity,
                                     std::string accept_key, std::string early_bytes, connection_limits::lease place,
                                     opening_gate::ticket opening)
    : socket_(std::move(socket)),
      ctx_(std::move(ctx)),
      auction_(id),
      since_(since),
      identity_(std::move(identity)),
      response_("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: " +
                accept_key + "\r\nServer: bidding-server\r\n\r\n"),
      early_(std::move(early_bytes)),
      admission_(ctx_->cfg.bid_rate_limit, ctx_->cfg.bid_burst),
      place_(std::move(place)),
      opening_(std::move(opening)),
      peer_(peer_of(socket_)),
      heartbeat_timer_(socket_.get_executor()),
      send_timer_(socket_.get_executor()),
      parser_(ctx_->cfg.max_message_bytes),
      feed_(ctx_->cfg.max_send_queue_bytes),
      queue_(ctx_->cfg.max_send_queue_bytes) {}

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

void websocket_session::run() {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);  // reads drain the socket until it would block
    // The opening handshake is bounded like the close: a client that takes no bytes is dropped.
    close_deadline_ = clock::now() + ctx_->cfg.ws_handshake_timeout;
    arm_send_watch(close_deadline_);
    net::async_write(socket_, net::buffer(response_),
                     [self = shared_from_this()](error_code_t e, std::size_t) { self->on_accept(e); });
}

void websocket_session::on_accept(error_code_t ec) {
    response_ = std::string();
    if (ec || phase_ != phase::handshake) {
        spdlog::debug("websocket handshake failed: {} {}", peer_, ec.message());
        finish();
        return;
    }
    // The handshake's watch stays armed: when it fires it checks whatever is due then.
    spdlog::debug("connection opened: {} auction {}", peer_, auction_);
    ctx_->stats.connection_opened();
    counted_ = true;
    if (ctx_->draining) {
        opening_.release();
        phase_ = phase::live;  // so that close() proceeds
        close(1012, "server shutdown");
        return;
    }
    if (identity_.refused) {
        spdlog::debug("unauthorized: {} auction {}", peer_, auction_);
        opening_.release();
        phase_ = phase::live;
        close(4001, "unauthorized");
        return;
    }
    // Join before reading the snapshot: a bid committed after the read is then surely
    // delivered, and one committed before it is dropped by its seq.
    load_ = ctx_->registry.join(auction_, shared_from_this());
    joined_ = true;
    phase_ = phase::loading;
    auto self = shared_from_this();
    ctx_->history.load_snapshot(auction_, ctx_->cfg.history_limit, since_,
                                [self](history_reader::snapshot_result result) {
                                    net::post(self->socket_.get_executor(), [self, result = std::move(result)]() mutable {
                                        self->on_snapshot(std::move(result));
                                    });
                                });
}

void websocket_session::on_snapshot(history_reader::snapshot_result result) {
    if (phase_ != phase::loading) {
        return;
    }
    phase_ = phase::live;
    // Set up once this handler is done (initial_state queued, or the close): the next opening
    // connection may start, from this thread.
    const auto set_up = std::move(opening_);
    if (result.unavailable) {
        close(1013, "try again later");
        return;
    }
    if (!result.snapshot) {
        close(4004, "bid not found");
        return;
    }
    const auto& snap = *result.snapshot;
    if (snap.info.status != auction_status::open) {
        close(4003, "bid closed");
        return;
    }
    const auto now = ctx_->clock.now();
    send(make_shared_text(since_ ? serialize_initial_state(snap.info, snap.entries, *since_, snap.truncated, now)
                                 : serialize_initial_state(snap.info, snap.entries, now)));
    apply(feed_.start(snap.info.last_seq));
    report_lag(clock::now());
    touch();
    next_ping_ = clock::now() + ctx_->cfg.heartbeat_interval;
    arm_heartbeat();
    if (!early_.empty()) {
        const auto early = std::move(early_);
        early_.clear();
        process(early);
    }
    do_read();
}

void websocket_session::do_read() {
    if (reading_ || phase_ == phase::closed || phase_ == phase::handshake || parser_.done()) {
        return;
    }
    reading_ = true;
    socket_.async_wait(net::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](error_code_t ec) { self->on_readable(ec); });
}

void websocket_session::on_readable(error_code_t ec) {
    reading_ = false;
    if (ec) {
        finish();
        return;
    }
    // A few reads per turn at most, so that one busy client does not hold the thread.
    for (int round = 0; round < 4 && phase_ != phase::closed && !parser_.done(); ++round) {
        error_code_t rec;
        const auto n = socket_.read_some(net::buffer(read_buffer), rec);
        if (rec == net::error::would_block || rec == net::error::try_again) {
            break;
        }
        if (rec) {
            if (rec != net::error::eof && rec != net::error::connection_reset) {
                spdlog::debug("read failed: {} {}", peer_, rec.message());
            }
            finish();  // the client went away without a close frame
            return;
        }
        process(std::string_view(read_buffer.data(), n));
        if (n < read_buffer.size()) {
            break;
        }
    }
    do_read();
}

void websocket_session::process(std::string_view bytes) {
    events_.clear();
    parser_.feed(bytes, events_);
    for (auto& event : events_) {
        if (phase_ == phase::closed) {
            return;
        }
        on_event(event);
    }
}

void websocket_session::on_event(ws_event& event) {
    switch (event.what) {
    case ws_event::kind::text:
        if (phase_ == phase::live) {
            ctx_->stats.message_in();
            handle_text(event.payload);
        }
        return;
    case ws_event::kind::binary:
        if (phase_ == phase::live) {
            ctx_->stats.message_in();
            reject(error_code::unsupported, "binary frames are not supported", std::nullopt);
        }
        return;
    case ws_event::kind::ping:
        if (phase_ == phase::live || phase_ == phase::loading) {
            if (!queue_.push_control(make_shared_text(std::move(event.payload)), ws_opcode::pong, clock::now())) {
                slow_consumer();  // pings it does not read the answers to
            } else if (!queue_.writing()) {
                do_write();
            }
        }
        return;
    case ws_event::kind::pong:
        return;  // an answer to nothing we sent: allowed (unsolicited pongs are heartbeats)
    case ws_event::kind::close:
        peer_closed_ = true;
        if (close_queued_) {
            if (close_written_) {
                finish();  // the closing handshake is complete
            }
            return;  // our close frame is on its way; the end follows its write
        }
        // Echo the client's code (none when it sent none).
        close_now(event.code, {});
        return;
    case ws_event::kind::error:
        spdlog::debug("protocol error from {}: {} (close {})", peer_, event.payload, event.code);
        ctx_->stats.refused(event.code == ws_close::too_big         ? refusal::ws_message_too_big
                            : event.code == ws_close::bad_payload ? refusal::ws_invalid_utf8
                                                                      : refusal::ws_protocol_error);
        close_now(event.code, event.payload);
        return;
    }
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
    if (const auto refused = admission_.admit(now, ctx_->draining, load_->refuse_bids(now))) {
        reject(refused->code, refused->message, bid.ref);
        return;
    }
    ctx_->bids.submit(auction_, std::move(bid), now, [self = shared_from_this()](seq_t accepted_seq, shared_text reply) {
        net::post(self->socket_.get_executor(), [self, accepted_seq, reply = std::move(reply)]() mutable {
            self->on_bid_reply(accepted_seq, std::move(reply));
        });
    });
}

void websocket_session::on_bid_reply(seq_t accepted_seq, shared_text reply) {
    admission_.answered();
    if (phase_ == phase::live) {
        apply(feed_.reply(accepted_seq, std::move(reply)));
        report_lag(clock::now());
    }
}

void websocket_session::deliver(fanout_batch batch, std::int64_t bytes, clock::time_point handed_over) {
    net::post(socket_.get_executor(), [self = shared_from_this(), batch = std::move(batch), bytes, handed_over] {
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
    ctx_->history.read_after(auction_, feed_.last(), session_registry::fill_limit,
                             [self](history_reader::rows_result result) {
                                 net::post(self->socket_.get_executor(), [self, result = std::move(result)]() mutable {
                                     self->on_fill(std::move(result.rows), result.complete);
                                 });
                             });
}

void websocket_session::on_fill(std::optional<std::vector<fanout_message>> rows, bool complete) {
    if (phase_ != phase::live) {
        return;
    }
    if (!rows) {
        // Order can no longer be promised on this connection: the client reconnects with since.
        close(1013, "try again later");
        return;
    }
    apply(feed_.filled(*rows, complete));
    report_lag(clock::now());
}

void websocket_session::close_auction(shared_text message) {
    net::post(socket_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
        self->last_word(message, 4003, "bid closed");
    });
}

void websocket_session::shutdown(shared_text message) {
    net::post(socket_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
        self->last_word(message, 1012, "server shutdown");
    });
}

// A client that already has its initial_state gets the message first; one still loading is
// just closed. Replies still waiting for their new_bid (this pod was catching up on another
// pod's bids) go out first: an acknowledgement of a stored bid must not be lost to the close;
// the client reads the new_bid back with ?since= when it reconnects.
void websocket_session::last_word(const shared_text& message, std::uint16_t code, const char* reason) {
    if (phase_ == phase::live) {
        for (auto& reply : feed_.take_replies()) {
            send(std::move(reply));
        }
        send(message);
    }
    if (phase_ == phase::loading || phase_ == phase::live) {
        phase_ = phase::live;
        close(code, reason);
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

// Every waiting frame (up to a limit) in one gather write.
void websocket_session::do_write() {
    // Called when the socket has nothing in flight: the clock of this write starts now.
    last_progress_ = clock::now();
    arm_send_watch(last_progress_ + ctx_->cfg.send_timeout);
    buffers_.clear();
    for (const auto& f : queue_.start_write(write_max_frames, write_max_bytes)) {
        buffers_.emplace_back(f.header.bytes.data(), f.header.size);
        buffers_.emplace_back(f.payload->data(), f.payload->size());
    }
    net::async_write(socket_, std::span<const net::const_buffer>(buffers_),
                     [self = shared_from_this()](error_code_t ec, std::size_t n) { self->on_write(ec, n); });
}

void websocket_session::on_write(error_code_t ec, std::size_t) {
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
    } else if (close_queued_) {
        // The close frame was the last one queued: it is out.
        close_written_ = true;
        if (peer_closed_ || end_after_close_) {
            finish();
        }
        // else: the client's close frame is awaited (reading goes on) until the close deadline
    }
    report_lag(last_progress_);
}

void websocket_session::queue_close(std::uint16_t code, std::string_view reason) {
    close_queued_ = true;
    auto payload = code == ws_close::no_status ? std::string() : close_payload(code, reason);
    // The close frame goes out even when the queue is full: beyond the bound by a few bytes.
    queue_.push(make_shared_text(std::move(payload)), clock::now(), ws_opcode::close, true);
    heartbeat_timer_.cancel();
    // The close too must finish in time: a peer that reads nothing never takes the close frame.
    close_deadline_ = clock::now() + ctx_->cfg.send_timeout;
    arm_send_watch(close_deadline_);
    if (!queue_.writing()) {
        do_write();  // otherwise after the frames in flight
    }
    do_read();  // the client's answering close frame must be read, also before its initial_state
}

void websocket_session::close(std::uint16_t code, const char* reason) {
    if (phase_ != phase::live) {
        return;
    }
    phase_ = phase::closing;
    spdlog::debug("closing {} auction {}: {} {}", peer_, auction_, code, reason);
    queue_close(code, reason);
}

void websocket_session::close_now(std::uint16_t code, std::string_view reason) {
    if (phase_ == phase::closed || close_queued_) {
        return;
    }
    phase_ = phase::closing;
    end_after_close_ = true;
    queue_.drop_waiting();
    queue_close(code, reason);
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
    if (phase_ == phase::live) {
        close(ws_close::policy, "slow consumer");
    } else if (!close_queued_) {
        close_now(ws_close::policy, "slow consumer");
    }
    report_lag(clock::now());
}

void websocket_session::abort(const char* why) {
    spdlog::info("dropping {} on auction {}: {}", peer_, auction_, why);
    if (!slow_counted_) {
        slow_counted_ = true;
        ctx_->stats.slow_consumer_dropped();
    }
    finish();
}

// The end: the descriptor is released now; pending operations complete as aborted.
void websocket_session::finish() {
    if (phase_ == phase::closed) {
        return;
    }
    phase_ = phase::closed;
    opening_.release();
    queue_.drop_waiting();
    heartbeat_timer_.cancel();
    send_timer_.cancel();
    error_code_t ec;
    socket_.shutdown(net::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
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
    heartbeat_timer_.async_wait([self = shared_from_this()](error_code_t ec) { self->on_heartbeat(ec); });
}

void websocket_session::on_heartbeat(error_code_t ec) {
    if (ec || phase_ != phase::live) {
        return;
    }
    const auto now = clock::now();
    if (now >= last_activity_ + ctx_->cfg.idle_timeout) {
        spdlog::debug("idle timeout: {} auction {}", peer_, auction_);
        close(1000, "idle timeout");
        return;
    }
    if (now >= next_ping_) {
        // Each ping carries the server's time (the clients' clock offset), so it is made per send.
        send(make_shared_text(serialize_ping(ctx_->clock.now())));
        next_ping_ = std::max(next_ping_ + ctx_->cfg.heartbeat_interval, now);
    }
    if (phase_ == phase::live) {
        arm_heartbeat();
    }
}

// Armed for the earliest deadline that matters; moving it earlier re-arms (the superseded wait
// completes as aborted and is told apart by its generation).
void websocket_session::arm_send_watch(clock::time_point at) {
    if (send_watch_armed_ && send_timer_.expiry() <= at) {
        return;
    }
    send_watch_armed_ = true;
    const auto generation = ++send_watch_generation_;
    send_timer_.expires_at(at);
    send_timer_.async_wait([self = shared_from_this(), generation](error_code_t ec) {
        if (generation == self->send_watch_generation_) {
            self->on_send_watch(ec);
        }
    });
}

// A write in flight must complete, and a close (or the opening handshake) must finish, in time.
void websocket_session::on_send_watch(error_code_t ec) {
    send_watch_armed_ = false;
    if (ec || phase_ == phase::closed) {
        return;
    }
    const auto now = clock::now();
    if (phase_ == phase::handshake) {
        if (now >= close_deadline_) {
            spdlog::debug("websocket handshake timed out: {}", peer_);
            ctx_->stats.refused(refusal::handshake_timeout);
            finish();
        } else {
            arm_send_watch(close_deadline_);
        }
        return;
    }
    const auto write_deadline = last_progress_ + ctx_->cfg.send_timeout;
    if (phase_ == phase::closing && now >= close_deadline_) {
        if (close_written_) {
            spdlog::debug("no close frame from {} within SEND_TIMEOUT: closing the connection", peer_);
            finish();
        } else {
            abort("the close did not complete within SEND_TIMEOUT");
        }
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
