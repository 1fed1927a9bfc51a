#pragma once
// One HTTP connection before (or instead of) a WebSocket upgrade: reads requests, answers the
// plain HTTP routes, and hands a valid upgrade over to a websocket_session.
#include <bidding/connection_limits.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/opening_gate.hpp>
#include <bidding/server_context.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bidding {

struct api_reply;

class http_session : public std::enable_shared_from_this<http_session> {
public:
    // `sessions`: where an upgraded connection's websocket_session runs.
    http_session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<server_context> ctx,
                 boost::asio::io_context& sessions);
    void run();

private:
    void do_read();
    void on_header(boost::beast::error_code ec, std::size_t bytes);
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void refuse(refusal why, unsigned status);
    void upgrade(boost::beast::http::request<boost::beast::http::string_body>&& req);
    // Its turn among the connections being set up (MAX_OPENING_CONNECTIONS) has come.
    void open_websocket(opening_gate::ticket place, opening_gate::clock::duration waited);
    void reply(unsigned status, std::string body, bool keep_alive, std::string_view content_type,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
    void handle_api(boost::beast::http::request<boost::beast::http::string_body>&& req);
    void send_api(api_reply r, bool keep_alive);
    void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);

    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    boost::asio::io_context& sessions_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    // A checked upgrade while it waits for its opening place.
    struct pending_upgrade {
        auction_id id;
        std::optional<seq_t> since;
        ws_identity identity;
        std::string accept_key;
        std::string early_bytes;
        connection_limits::lease place;
    };
    std::optional<pending_upgrade> pending_;
};

}  // namespace bidding
