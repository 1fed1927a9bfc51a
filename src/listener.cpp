#include <bidding/http_session.hpp>
#include <bidding/listener.hpp>

#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <spdlog/spdlog.h>

namespace bidding {

namespace net = boost::asio;
namespace beast = boost::beast;

namespace {
constexpr int send_buffer_bytes = 64 * 1024;  // the kernel doubles it for its bookkeeping
}  // namespace

listener::listener(net::io_context& ioc, net::io_context& sessions, net::ip::tcp::endpoint endpoint,
                   std::shared_ptr<server_context> ctx)
    : ioc_(ioc), sessions_(sessions), acceptor_(net::make_strand(ioc)), retry_timer_(acceptor_.get_executor()), ctx_(std::move(ctx)) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    if (endpoint.address().is_v6()) {
        acceptor_.set_option(net::ip::v6_only(false));  // one socket for IPv4 and IPv6
    }
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

std::uint16_t listener::port() const { return acceptor_.local_endpoint().port(); }

void listener::run() { do_accept(); }

void listener::stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
        beast::error_code ec;
        self->retry_timer_.cancel();
        self->acceptor_.close(ec);
    });
}

void listener::do_accept() {
    // Each connection gets its own strand: its handlers never run concurrently.
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&listener::on_accept, shared_from_this()));
}

void listener::on_accept(beast::error_code ec, net::ip::tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
        return;
    }
    if (ec) {
        // Typically EMFILE under load: back off briefly instead of spinning on the error.
        spdlog::warn("accept failed: {}", ec.message());
        retry_timer_.expires_after(std::chrono::milliseconds(50));
        retry_timer_.async_wait([self = shared_from_this()](beast::error_code e) {
            if (!e) {
                self->do_accept();
            }
        });
        return;
    }
    beast::error_code ignored;
    socket.set_option(net::ip::tcp::no_delay(true), ignored);
    // A fixed kernel send buffer: autotuning would let a client that stops reading park up to
    // 4 MiB in the kernel before MAX_SEND_QUEUE_BYTES even starts to count (and 20,000 of them
    // would tie up gigabytes of kernel memory).
    socket.set_option(net::socket_base::send_buffer_size(send_buffer_bytes), ignored);
    std::make_shared<http_session>(std::move(socket), ctx_, sessions_)->run();
    do_accept();
}

}  // namespace bidding
