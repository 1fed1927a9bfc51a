#pragma once
// One WebSocket client following one auction. Everything it does runs on its own strand;
// the public methods may be called from any thread and post onto that strand.
//
// It moves frames and runs timers. The frames themselves are ws_frames' (the session writes the
// 101 answer to an upgrade http_session has checked, parses what the client sends, and writes
// its own frames, every waiting one in one gather write); what to send, in which order, comes
// from its session_feed; its outgoing frames wait in an outbound_queue bounded in bytes. A client
// that falls further behind than that, or whose writes (or close) make no progress for
// SEND_TIMEOUT, is cut off (close 1008 "slow consumer" when a close frame can still go out, else
// the TCP connection is dropped) without slowing anybody else.
#include <bidding/fanout.hpp>
#include <bidding/fanout_load.hpp>
#include <bidding/feed_subscriber.hpp>
#include <bidding/history_reader.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/outbound_queue.hpp>
#include <bidding/auction_store.hpp>
#include <bidding/bid_admission.hpp>
#include <bidding/connection_limits.hpp>
#include <bidding/opening_gate.hpp>
#include <bidding/server_context.hpp>
#include <bidding/session_feed.hpp>
#include <bidding/ws_frames.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bidding {

class websocket_session final : public feed_subscriber, public std::enable_shared_from_this<websocket_session> {
public:
    // One gather write takes at most this many frames / bytes.
    static constexpr std::size_t write_max_frames = 64;
    static constexpr std::size_t write_max_bytes = 64 * 1024;

    // `accept_key`: the Sec-WebSocket-Accept to answer with; `early_bytes`: what the client sent
    // after its upgrade request (already read by http_session); `since`: the client reconnects
    // having seen up to that seq (?since=SEQ).
    websocket_session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx, auction_id id,
                      std::optional<seq_t> since, ws_identity identity, std::string accept_key,
                      std::string early_bytes, connection_limits::lease place, opening_gate::ticket opening);
    ~websocket_session() override;

    // Writes the 101 answer, then serves the client.
    void run();

    // feed_subscriber: each posts onto the session's strand.
    void deliver(fanout_batch batch, std::int64_t bytes, std::chrono::steady_clock::time_point handed_over) override;
    void close_auction(shared_text bid_closed_message) override;
    void shutdown(shared_text shutdown_message) override;

private:
    using clock = std::chrono::steady_clock;
    using error_code_t = boost::system::error_code;
    enum class phase { handshake, loading, live, closing, closed };

    void on_accept(error_code_t ec);
    void on_snapshot(history_reader::snapshot_result result);
    void do_read();
    void on_readable(error_code_t ec);
    void process(std::string_view bytes);
    void on_event(ws_event& event);
    void handle_text(std::string_view text);
    void reject(error_code code, std::string_view message, const std::optional<std::string>& ref);
    void on_bid_reply(seq_t accepted_seq, shared_text reply);
    void on_deliver(const fanout_batch& batch, std::int64_t bytes, clock::time_point handed_over);
    // Sends what the feed says; its messages have waited since `since`.
    void apply(session_feed::step step, clock::time_point since);
    void apply(session_feed::step step) { apply(std::move(step), clock::now()); }
    void start_fill();
    void on_fill(std::optional<std::vector<fanout_message>> rows, bool complete);

    void send(shared_text message, clock::time_point since);
    void send(shared_text message) { send(std::move(message), clock::now()); }
    void do_write();
    void on_write(error_code_t ec, std::size_t bytes);
    // Server-initiated close: the waiting messages go first, then the close frame; the TCP
    // connection ends when the client answers it (or at the close deadline).
    void close(std::uint16_t code, const char* reason);
    // The client closed, or broke the protocol: what waits is dropped, the close frame goes out,
    // then the TCP connection ends.
    void close_now(std::uint16_t code, std::string_view reason);
    void queue_close(std::uint16_t code, std::string_view reason);
    void last_word(const shared_text& message, std::uint16_t code, const char* reason);
    void slow_consumer();
    void abort(const char* why);
    void finish();
    void report_lag(clock::time_point now);

    void touch();
    void arm_heartbeat();
    void on_heartbeat(error_code_t ec);
    void arm_send_watch(clock::time_point at);
    void on_send_watch(error_code_t ec);

    boost::asio::ip::tcp::socket socket_;
    std::shared_ptr<server_context> ctx_;
    const auction_id auction_;
    const std::optional<seq_t> since_;
    const ws_identity identity_;
    std::string response_;  // the 101 answer, while it is written
    std::string early_;     // what the client sent right after its upgrade request
    bid_admission admission_;
    connection_limits::lease place_;  // this connection's place under MAX_CONNECTIONS(_PER_IP)
    opening_gate::ticket opening_;    // its place under MAX_OPENING_CONNECTIONS, until initial_state
    std::string peer_;
    boost::asio::steady_timer heartbeat_timer_;  // pings and the idle deadline
    boost::asio::steady_timer send_timer_;       // a write or a close making no progress

    phase phase_{phase::handshake};
    bool joined_{false};
    bool counted_{false};  // in the open-connections gauge
    bool reading_{false};
    bool send_watch_armed_{false};
    std::uint64_t send_watch_generation_{0};
    bool slow_counted_{false};  // in the slow-consumer counter (once per connection)
    bool close_queued_{false};
    bool close_written_{false};
    bool peer_closed_{false};       // the client's close frame arrived
    bool end_after_close_{false};   // end the TCP connection once our close frame is out
    ws_frame_parser parser_;
    std::vector<ws_event> events_;
    session_feed feed_;
    outbound_queue queue_;
    std::vector<boost::asio::const_buffer> buffers_;  // of the write in flight
    std::shared_ptr<fanout_load> load_;
    bool lagging_{false};  // as counted in load_: the oldest unwritten message is older than FANOUT_MAX_LAG
    clock::time_point last_activity_;
    clock::time_point next_ping_;
    clock::time_point last_progress_;  // the last write completed (or the first one started)
    clock::time_point close_deadline_;
};

}  // namespace bidding
