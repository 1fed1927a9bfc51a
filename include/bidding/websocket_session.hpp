#pragma once
// One WebSocket client following one auction. Everything it does runs on its own strand;
// the public methods may be called from any thread and post onto that strand.
#include <bidding/fanout.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/rate_limiter.hpp>
#include <bidding/postgres_store.hpp>
#include <bidding/server_context.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

namespace bidding {

class websocket_session : public std::enable_shared_from_this<websocket_session> {
public:
    // A client that falls this many messages behind is cut off rather than buffered without bound.
    static constexpr std::size_t max_queued_messages = 4096;
    // Bids of one client awaiting their reply; beyond it reading pauses (back-pressure).
    static constexpr int max_bids_in_flight = 32;

    // `since`: the client reconnects having seen up to that seq (?since=SEQ).
    websocket_session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx, auction_id id,
                      std::optional<seq_t> since, ws_identity identity);
    ~websocket_session();

    // Completes the upgrade of `req` (already validated: host, origin, path).
    void run(boost::beast::http::request<boost::beast::http::string_body> req);

    void deliver(fanout_batch batch);
    void close_auction(shared_text bid_closed_message);
    void shutdown(shared_text shutdown_message);

private:
    enum class phase { handshake, loading, live, closing, closed };

    struct snapshot_result {
        std::optional<auction_snapshot> snapshot;
        bool unavailable{false};
    };

    void on_accept(boost::beast::error_code ec);
    void on_snapshot(snapshot_result result);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void handle_text(std::string_view text);
    void on_bid_reply(seq_t accepted_seq, shared_text reply);
    void flush_replies();
    void on_deliver(const fanout_batch& batch);
    void take(const fanout_message& m);
    void release_held();
    void start_fill();
    void on_fill(std::optional<std::vector<history_entry>> rows);

    void send(shared_text message);
    void do_write();
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    void close(boost::beast::websocket::close_reason reason);
    void last_word(const shared_text& message, boost::beast::websocket::close_reason why);
    void do_close();
    void abort(const char* why);
    void finish();

    void touch();
    void arm_ping();
    void arm_idle();

    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    const auction_id auction_;
    const std::optional<seq_t> since_;
    const ws_identity identity_;
    rate_limiter bid_rate_;
    std::string peer_;
    boost::asio::steady_timer ping_timer_;
    boost::asio::steady_timer idle_timer_;

    phase phase_{phase::handshake};
    bool joined_{false};
    bool counted_{false};  // in the open-connections gauge
    bool reading_{false};
    bool read_paused_{false};
    bool writing_{false};
    int bids_in_flight_{0};
    seq_t last_seq_{0};
    // new_bid held while initial_state is loading, or while a gap is read from Postgres
    std::vector<fanout_message> held_;
    bool filling_{false};
    std::deque<shared_text> queue_;
    // Replies in decision order; a bid_accepted waits until its new_bid has been sent.
    std::deque<std::pair<seq_t, shared_text>> replies_;
    std::optional<boost::beast::websocket::close_reason> close_reason_;
    std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace bidding
