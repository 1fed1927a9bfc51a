// The one translation unit of bidding-bench that includes Beast and Asio: connections
// (websocket::stream<beast::tcp_stream>), threads with one io_context each, timers.

#include "client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <netinet/in.h>
#include <netinet/ip.h>

#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

// A counter written by one thread and read (approximately) by others.
struct Counter {
    std::atomic<uint64_t> v{0};
    void add(uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct Url {
    std::string text;
    std::string host_header;   // HOST[:PORT] as written
    std::string path;          // may contain {id}; may be empty
    std::string query;         // without '?'
    tcp::endpoint endpoint;

    std::string target(int64_t auction) const {
        std::string id = std::to_string(auction);
        std::string p = path;
        size_t brace = p.find("{id}");
        if (brace != std::string::npos) {
            p.replace(brace, 4, id);
        } else {
            while (!p.empty() && p.back() == '/') p.pop_back();
            p += "/ws/bid/" + id;
        }
        if (!query.empty()) p += "?" + query;
        return p;
    }
};

class TimerImpl final : public Timer {
public:
    explicit TimerImpl(net::io_context& ioc) : t_(ioc) {}
    void at(int64_t when, std::function<void()> fn) override {
        t_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(when)));
        t_.async_wait([fn = std::move(fn)](beast::error_code ec) {
            if (!ec) fn();
        });
    }
    void cancel() override { t_.cancel(); }

private:
    net::steady_timer t_;
};

class EngineImpl;
class ConnImpl;

struct Worker {
    // Every socket and timer of a worker is used on its thread only (other threads post to it), so
    // the reactor needs no locking: UNSAFE_IO (which also selects the one-thread scheduler paths).
    explicit Worker(int i) : index(i), ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), guard(net::make_work_guard(ioc)) {}
    int index;
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> guard;
    std::thread thread;
    std::vector<std::shared_ptr<ConnImpl>> conns;  // registered here; started in order
    std::vector<std::unique_ptr<TimerImpl>> timers;  // destroyed before the io_context
    size_t next_to_start = 0;
    int inflight = 0;
    int limit = 1;
    bool connecting = false;
    Counter messages, bytes, malformed, pings, binary;
};

class EngineImpl final : public Engine {
public:
    EngineImpl(int threads, std::vector<net::ip::address> sources) : sources_(std::move(sources)) {
        for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(i));
    }
    ~EngineImpl() override { stop(); }

    int add_url(const std::string& text, std::string& error) override;
    const std::string& url(int index) const override { return urls_.at(static_cast<size_t>(index)).text; }
    Conn& add(int url_index, int64_t auction, int worker, Handler* handler) override;
    int threads() const override { return static_cast<int>(workers_.size()); }
    void run() override;
    void connect_all(int concurrency) override;
    ConnectProgress progress() const override {
        ConnectProgress p;
        p.registered = registered_.load();
        p.opened = opened_.load();
        p.failed = failed_.load();
        p.last_open_ns = last_open_ns_.load();
        return p;
    }
    void fail_pending(const std::string& reason) override;
    std::map<std::string, int64_t> failures() const override {
        std::lock_guard lk(failures_mu_);
        return failures_;
    }
    void post(int worker, std::function<void()> fn) override { net::post(w(worker).ioc, std::move(fn)); }
    Timer& timer(int worker) override;
    void close_all(double grace) override;
    void stop() override;
    EngineCounters counters() const override {
        EngineCounters c;
        for (const auto& wk : workers_) {
            c.messages += wk->messages.get();
            c.bytes += wk->bytes.get();
            c.malformed += wk->malformed.get();
            c.pings += wk->pings.get();
            c.binary += wk->binary.get();
        }
        return c;
    }

    // Called by connections, on their worker's thread.
    void connect_done(Worker& wk, bool opened, const std::string& failure, int64_t now);
    void pump(Worker& wk);
    const Url& url_at(int i) const { return urls_[static_cast<size_t>(i)]; }
    const net::ip::address* source_for(size_t n) const {
        return sources_.empty() ? nullptr : &sources_[n % sources_.size()];
    }
    std::atomic<int64_t> closes_pending{0};

private:
    Worker& w(int i) { return *workers_.at(static_cast<size_t>(i)); }

    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<Url> urls_;
    std::vector<net::ip::address> sources_;
    std::atomic<int64_t> registered_{0}, opened_{0}, failed_{0}, last_open_ns_{0};
    mutable std::mutex failures_mu_;
    std::map<std::string, int64_t> failures_;
    bool running_ = false;
    bool stopped_ = false;
    size_t source_counter_ = 0;
};

class ConnImpl final : public Conn, public std::enable_shared_from_this<ConnImpl> {
public:
    ConnImpl(EngineImpl& eng, Worker& wk, int url, int64_t auction, Handler* h, const net::ip::address* source)
        : eng_(eng), wk_(wk), url_(url), auction_(auction), handler_(h), source_(source), ws_(wk.ioc) {}

    void send(std::string text) override {
        if (st_.load(std::memory_order_relaxed) != ConnState::open || closing_) return;
        outq_.push_back(std::move(text));
        if (!writing_) do_write();
    }
    size_t queued() const override { return outq_.size(); }
    ConnState state() const override { return st_.load(std::memory_order_acquire); }
    int worker() const override { return wk_.index; }
    int url_index() const override { return url_; }
    int64_t auction() const override { return auction_; }

    void start() {
        st_.store(ConnState::connecting, std::memory_order_release);
        const Url& u = eng_.url_at(url_);
        auto& sock = beast::get_lowest_layer(ws_).socket();
        beast::error_code ec;
        sock.open(u.endpoint.protocol(), ec);
        if (ec) return fail("socket: " + ec.message());
        if (source_ != nullptr) {
            int one = 1;
            // Defer the choice of the local port to connect(): each source address then has its own
            // ephemeral port range per destination.
            ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sock.bind(tcp::endpoint(*source_, 0), ec);
            if (ec) return fail("bind " + source_->to_string() + ": " + ec.message());
        }
        beast::get_lowest_layer(ws_).async_connect(
            u.endpoint, [self = shared_from_this()](beast::error_code e) { self->on_connect(e); });
    }

    // The connect deadline: fail unless open.
    void deadline(const std::string& reason) {
        ConnState s = st_.load(std::memory_order_relaxed);
        if (s == ConnState::registered) {
            st_.store(ConnState::failed, std::memory_order_release);
            report_failure(reason, false);
            return;
        }
        if (s != ConnState::connecting) return;
        fail(reason);
    }

    // End of run: a close frame, then the read loop sees the server's close.
    void close_gracefully() {
        ConnState s = st_.load(std::memory_order_relaxed);
        if (s == ConnState::registered || s == ConnState::connecting) {
            deadline("closed by the end of the run");
            return;
        }
        if (s != ConnState::open || closing_) return;
        closing_ = true;
        eng_.closes_pending.fetch_add(1);
        ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
            // The pending read completes too and reports the end; if it already has, drop the socket.
            if (self->st_.load(std::memory_order_relaxed) != ConnState::open) self->drop_socket();
        });
    }

private:
    void on_connect(beast::error_code ec) {
        if (st_.load(std::memory_order_relaxed) != ConnState::connecting) return;
        if (ec) return fail("connect: " + ec.message());
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(http::field::user_agent, "bidding-bench"); }));
        ws_.auto_fragment(false);
        ws_.secure_prng(false);  // masking keys need not be cryptographic in a load tool
        ws_.read_message_max(64 * 1024 * 1024);
        const Url& u = eng_.url_at(url_);
        response_ = std::make_unique<websocket::response_type>();
        ws_.async_handshake(*response_, u.host_header, u.target(auction_),
                            [self = shared_from_this()](beast::error_code e) { self->on_handshake(e); });
    }

    void on_handshake(beast::error_code ec) {
        if (st_.load(std::memory_order_relaxed) != ConnState::connecting) return;
        if (ec) {
            std::string why = "handshake: " + ec.message();
            if (ec == websocket::error::upgrade_declined && response_)
                why = "handshake: HTTP " + std::to_string(response_->result_int());
            return fail(why);
        }
        response_.reset();
        do_read();
    }

    void do_read() {
        ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
    }

    void on_read(beast::error_code ec, std::size_t n) {
        ConnState s = st_.load(std::memory_order_relaxed);
        if (s == ConnState::failed || s == ConnState::closed) return;
        int64_t now = now_ns();
        if (ec) return ended(ec, now);
        wk_.messages.add();
        wk_.bytes.add(n);
        auto data = buf_.cdata();
        std::string_view raw(static_cast<const char*>(data.data()), data.size());
        if (!ws_.got_text()) {
            wk_.binary.add();
        } else {
            if (!scan(raw, scan_)) {
                wk_.malformed.add();
                scan_ = Scan{};
            }
            if (s == ConnState::connecting) {
                st_.store(ConnState::open, std::memory_order_release);
                eng_.connect_done(wk_, true, {}, now);
            }
            if (scan_.type == "ping") {
                wk_.pings.add();
                static const std::string pong = R"({"type":"pong"})";
                send(pong);
            }
            handler_->on_message(*this, scan_, raw, now);
        }
        buf_.consume(buf_.size());
        if (first_) {
            first_ = false;
            buf_.shrink_to_fit();  // initial_state may be large; later messages are small
        }
        do_read();
    }

    void do_write() {
        writing_ = true;
        ws_.text(true);
        ws_.async_write(net::buffer(outq_.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        writing_ = false;
        if (ec) {
            outq_.clear();
            return;
        }
        outq_.pop_front();
        if (!outq_.empty() && !closing_) do_write();
    }

    void ended(beast::error_code ec, int64_t now) {
        ConnState before = st_.load(std::memory_order_relaxed);
        CloseInfo info;
        info.was_open = before == ConnState::open;
        info.by_us = closing_;
        if (ec == websocket::error::closed) {
            info.kind = "close_frame";
            info.code = static_cast<int>(ws_.reason().code);
            info.reason = std::string(ws_.reason().reason.c_str());
        } else if (ec == net::error::eof || ec == http::error::end_of_stream) {
            info.kind = "eof";
            info.reason = ec.message();
        } else if (ec == net::error::connection_reset || ec == net::error::broken_pipe) {
            info.kind = "reset";
            info.reason = ec.message();
        } else {
            info.kind = "error";
            info.reason = ec.message();
        }
        if (!info.was_open) {
            // Ended before its first message: a connect failure (e.g. close 4004 bid not found).
            std::string why = info.kind == "close_frame"
                                  ? "closed before the first message: " + std::to_string(info.code) +
                                        (info.reason.empty() ? "" : " " + info.reason)
                                  : "ended before the first message: " + info.reason;
            return fail(why);
        }
        st_.store(ConnState::closed, std::memory_order_release);
        if (closing_) eng_.closes_pending.fetch_sub(1);
        drop_socket();
        handler_->on_closed(*this, info, now);
    }

    void fail(const std::string& why) {
        bool counted = st_.load(std::memory_order_relaxed) == ConnState::connecting;
        st_.store(ConnState::failed, std::memory_order_release);
        drop_socket();
        if (counted) report_failure(why, true);
    }

    void report_failure(const std::string& why, bool was_inflight) {
        if (!was_inflight) ++wk_.inflight;  // connect_done decrements; a never-started one was not counted
        eng_.connect_done(wk_, false, why, now_ns());
        CloseInfo info;
        info.kind = "failed";
        info.reason = why;
        handler_->on_closed(*this, info, now_ns());
    }

    void drop_socket() {
        beast::error_code ignored;
        auto& sock = beast::get_lowest_layer(ws_).socket();
        if (sock.is_open()) {
            sock.shutdown(tcp::socket::shutdown_both, ignored);
            sock.close(ignored);
        }
    }

    EngineImpl& eng_;
    Worker& wk_;
    int url_;
    int64_t auction_;
    Handler* handler_;
    const net::ip::address* source_;
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buf_;
    std::unique_ptr<websocket::response_type> response_;
    std::deque<std::string> outq_;
    Scan scan_;
    std::atomic<ConnState> st_{ConnState::registered};
    bool writing_ = false;
    bool closing_ = false;
    bool first_ = true;
};

int EngineImpl::add_url(const std::string& text, std::string& error) {
    Url u;
    u.text = text;
    std::string rest;
    if (text.rfind("ws://", 0) == 0) {
        rest = text.substr(5);
    } else {
        error = "unsupported URL \"" + text + "\": expected ws://HOST[:PORT][/PATH] (wss:// is not supported)";
        return -1;
    }
    size_t slash = rest.find_first_of("/?");
    std::string authority = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    size_t q = path.find('?');
    if (q != std::string::npos) {
        u.query = path.substr(q + 1);
        path = path.substr(0, q);
    }
    u.path = path;
    std::string host, port = "80";
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos) {
            error = "bad URL \"" + text + "\": unterminated [IPv6] host";
            return -1;
        }
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') {
                error = "bad URL \"" + text + "\"";
                return -1;
            }
            port = authority.substr(close + 2);
        }
    } else {
        size_t colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
        error = "bad URL \"" + text + "\": expected ws://HOST[:PORT][/PATH]";
        return -1;
    }
    u.host_header = authority;
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(host, port, ec);
    if (ec || results.empty()) {
        error = "cannot resolve " + host + ":" + port + ": " + (ec ? ec.message() : std::string("no address"));
        return -1;
    }
    u.endpoint = results.begin()->endpoint();
    for (const auto& r : results)  // prefer an address of the sources' family
        if (!sources_.empty() && r.endpoint().address().is_v4() == sources_.front().is_v4()) {
            u.endpoint = r.endpoint();
            break;
        }
    if (!sources_.empty() && u.endpoint.address().is_v4() != sources_.front().is_v4()) {
        error = "the --sources and " + text + " are not of the same address family";
        return -1;
    }
    urls_.push_back(std::move(u));
    return static_cast<int>(urls_.size() - 1);
}

Conn& EngineImpl::add(int url_index, int64_t auction, int worker, Handler* handler) {
    Worker& wk = w(worker);
    auto c = std::make_shared<ConnImpl>(*this, wk, url_index, auction, handler, source_for(source_counter_++));
    wk.conns.push_back(c);
    registered_.fetch_add(1);
    return *c;
}

void EngineImpl::run() {
    if (running_) return;
    running_ = true;
    for (auto& wk : workers_) {
        Worker* p = wk.get();
        p->thread = std::thread([p] {
            for (;;) {
                try {
                    p->ioc.run();
                    return;
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "bidding-bench: thread %d: %s (continuing)\n", p->index, e.what());
                }
            }
        });
    }
}

void EngineImpl::connect_all(int concurrency) {
    int n = static_cast<int>(workers_.size());
    for (auto& wk : workers_) {
        Worker* p = wk.get();
        int limit = std::max(1, (concurrency + n - 1) / n);
        net::post(p->ioc, [this, p, limit] {
            p->limit = limit;
            p->connecting = true;
            pump(*p);
        });
    }
}

void EngineImpl::pump(Worker& wk) {
    while (wk.connecting && wk.inflight < wk.limit && wk.next_to_start < wk.conns.size()) {
        auto& c = wk.conns[wk.next_to_start++];
        if (c->state() != ConnState::registered) continue;
        ++wk.inflight;
        c->start();
    }
}

void EngineImpl::connect_done(Worker& wk, bool opened, const std::string& failure, int64_t now) {
    --wk.inflight;
    if (opened) {
        opened_.fetch_add(1);
        int64_t prev = last_open_ns_.load();
        while (prev < now && !last_open_ns_.compare_exchange_weak(prev, now)) {
        }
    } else {
        failed_.fetch_add(1);
        std::lock_guard lk(failures_mu_);
        ++failures_[failure];
    }
    pump(wk);
}

void EngineImpl::fail_pending(const std::string& reason) {
    std::atomic<int> left{static_cast<int>(workers_.size())};
    for (auto& wk : workers_) {
        Worker* p = wk.get();
        net::post(p->ioc, [p, reason, &left] {
            p->connecting = false;
            for (auto& c : p->conns) c->deadline(reason);
            left.fetch_sub(1);
        });
    }
    while (left.load() > 0 && running_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

Timer& EngineImpl::timer(int worker) {
    Worker& wk = w(worker);
    std::lock_guard lk(failures_mu_);
    wk.timers.push_back(std::make_unique<TimerImpl>(wk.ioc));
    return *wk.timers.back();
}

void EngineImpl::close_all(double grace) {
    if (!running_ || stopped_) return;
    std::atomic<int> left{static_cast<int>(workers_.size())};
    for (auto& wk : workers_) {
        Worker* p = wk.get();
        net::post(p->ioc, [p, &left] {
            p->connecting = false;
            for (auto& c : p->conns) c->close_gracefully();
            left.fetch_sub(1);
        });
    }
    while (left.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace);
    while (closes_pending.load() > 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void EngineImpl::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& wk : workers_) {
        wk->guard.reset();
        wk->ioc.stop();
    }
    for (auto& wk : workers_)
        if (wk->thread.joinable()) wk->thread.join();
}

}  // namespace

std::unique_ptr<Engine> Engine::create(int threads, const std::vector<std::string>& sources, std::string& error) {
    std::vector<net::ip::address> addrs;
    for (const auto& s : sources) {
        beast::error_code ec;
        auto a = net::ip::make_address(s, ec);
        if (ec) {
            error = "--sources: \"" + s + "\" is not an IP address";
            return nullptr;
        }
        if (!addrs.empty() && a.is_v4() != addrs.front().is_v4()) {
            error = "--sources: mixes IPv4 and IPv6 addresses";
            return nullptr;
        }
        addrs.push_back(a);
    }
    return std::make_unique<EngineImpl>(threads, std::move(addrs));
}

}  // namespace bench
