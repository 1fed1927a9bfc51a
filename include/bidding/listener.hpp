#pragma once
// Accepts TCP connections and gives each its own strand and an http_session. Accepting and
// plain HTTP (/healthz, /readyz, /metrics, the API, upgrade requests) run on their own
// io_context, apart from the WebSocket sessions' (`sessions`): an operator's probe and a new
// client's handshake never wait behind a flood's fan-out.
#include <bidding/server_context.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace bidding {

class listener : public std::enable_shared_from_this<listener> {
public:
    // Throws boost::system::system_error when the port cannot be bound.
    listener(boost::asio::io_context& ioc, boost::asio::io_context& sessions, boost::asio::ip::tcp::endpoint endpoint,
             std::shared_ptr<server_context> ctx);
    void run();
    void stop();  // stops accepting; callable from any thread
    std::uint16_t port() const;

private:
    void do_accept();
    void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

    boost::asio::io_context& ioc_;
    boost::asio::io_context& sessions_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_timer_;
    std::shared_ptr<server_context> ctx_;
};

}  // namespace bidding
