// The one translation unit of bidding-bench that includes Asio: connections on plain TCP sockets,
// threads with one io_context each, timers. The WebSocket protocol is ws_frame.hpp's: this file
// writes the upgrade request, reads the server's frames straight from the socket and writes
// masked client frames.
//
// Reading: each thread has ONE 64 KiB read buffer shared by its connections. A connection waits
// for readability (async_wait, edge-triggered epoll underneath), then reads with non-blocking
// read_some into that buffer and hands every complete frame to its Handler before reading again;
// only a frame cut by the end of a read is copied into the connection (ws::Reader). A read that
// fills the buffer is followed by up to kReadsPerWakeup - 1 more, then the connection yields
// (a post) so that one busy connection does not starve the others. A read shorter than the
// buffer emptied the socket: waiting again is safe, new bytes raise a new edge.
//
// Writing: frames are appended to a per-connection buffer and written with a direct
// non-blocking write_some; what the socket does not take is written by one async_write (one in
// flight per connection), frames queued meanwhile go in the next one. Frames queued while a read
// batch is handled (pongs, the bids a reply triggers) are gathered and written at its end.

#include "client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <netinet/ip.h>

#include <mutex>
#include <random>
#include <thread>

#include "ws_frame.hpp"

namespace bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

constexpr size_t kReadBuffer = 64 * 1024;  // per thread
constexpr int kReadsPerWakeup = 4;
constexpr size_t kMaxResponseHead = 16 * 1024;

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
        t_.async_wait([fn = std::move(fn)](error_code ec) {
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
    Worker(int i, uint64_t seed)
        : index(i), ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), guard(net::make_work_guard(ioc)),
          rbuf(new char[kReadBuffer]), prng(seed | 1) {}
    int index;
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> guard;
    std::thread thread;
    std::vector<std::shared_ptr<ConnImpl>> conns;  // registered here; started in order
    std::vector<std::unique_ptr<TimerImpl>> timers;  // destroyed before the io_context
    std::unique_ptr<char[]> rbuf;  // the read buffer of all its connections
    uint64_t prng;                 // masking and handshake keys (xorshift64*: not cryptographic)
    size_t next_to_start = 0;
    int inflight = 0;
    int limit = 1;
    bool connecting = false;
    Counter messages, bytes, malformed, pings, binary, protocol_errors;

    uint64_t random64() {
        prng ^= prng >> 12;
        prng ^= prng << 25;
        prng ^= prng >> 27;
        return prng * 2685821657736338717ull;
    }
};

class EngineImpl final : public Engine {
public:
    EngineImpl(int threads, std::vector<net::ip::address> sources, int rcvbuf)
        : sources_(std::move(sources)), rcvbuf_(rcvbuf) {
        std::random_device rd;
        for (int i = 0; i < threads; ++i)
            workers_.push_back(std::make_unique<Worker>(i, (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                                                               static_cast<uint64_t>(now_ns())));
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
            c.protocol_errors += wk->protocol_errors.get();
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
    int rcvbuf() const { return rcvbuf_; }
    std::atomic<int64_t> closes_pending{0};

private:
    Worker& w(int i) { return *workers_.at(static_cast<size_t>(i)); }

    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<Url> urls_;
    std::vector<net::ip::address> sources_;
    int rcvbuf_ = 0;
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
        : eng_(eng), wk_(wk), url_(url), auction_(auction), handler_(h), source_(source), sock_(wk.ioc) {}

    void send(std::string text) override {
        if (st_.load(std::memory_order_relaxed) != ConnState::open || closing_) return;
        queue_frame(ws::op_text, text);
    }
    size_t queued() const override { return pending_count_ + flight_count_; }
    ConnState state() const override { return st_.load(std::memory_order_acquire); }
    int worker() const override { return wk_.index; }
    int url_index() const override { return url_; }
    int64_t auction() const override { return auction_; }

    void start() {
        st_.store(ConnState::connecting, std::memory_order_release);
        const Url& u = eng_.url_at(url_);
        error_code ec;
        sock_.open(u.endpoint.protocol(), ec);
        if (ec) return fail("socket: " + ec.message());
        if (eng_.rcvbuf() > 0) {
            // Before connect(): the window scale is negotiated in the SYN.
            sock_.set_option(net::socket_base::receive_buffer_size(eng_.rcvbuf()), ec);
            if (ec) return fail("setsockopt SO_RCVBUF: " + ec.message());
        }
        if (source_ != nullptr) {
            int one = 1;
            // Defer the choice of the local port to connect(): each source address then has its own
            // ephemeral port range per destination.
            ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sock_.bind(tcp::endpoint(*source_, 0), ec);
            if (ec) return fail("bind " + source_->to_string() + ": " + ec.message());
        }
        sock_.async_connect(u.endpoint, [self = shared_from_this()](error_code e) { self->on_connect(e); });
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

    // End of run: a close frame (the messages not yet handed to the socket are dropped), then the
    // read loop sees the server's close.
    void close_gracefully() {
        ConnState s = st_.load(std::memory_order_relaxed);
        if (s == ConnState::registered || s == ConnState::connecting) {
            deadline("closed by the end of the run");
            return;
        }
        if (s != ConnState::open || closing_) return;
        closing_ = true;
        eng_.closes_pending.fetch_add(1);
        pending_.clear();
        pending_count_ = 0;
        queue_frame(ws::op_close, ws::close_payload(ws::close_normal));
    }

    // ws::Reader's sink: a complete message.
    bool message(bool text, std::string_view raw) {
        ConnState s = st_.load(std::memory_order_relaxed);
        if (s == ConnState::failed || s == ConnState::closed) return false;
        int64_t now = now_ns();
        wk_.messages.add();
        wk_.bytes.add(raw.size());
        if (!text) {
            wk_.binary.add();
            return true;
        }
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
        s = st_.load(std::memory_order_relaxed);
        return s != ConnState::failed && s != ConnState::closed;
    }

    // ws::Reader's sink: a ping, pong or close frame.
    bool control(uint8_t opcode, std::string_view payload) {
        if (opcode == ws::op_ping) {
            queue_frame(ws::op_pong, payload);
            return true;
        }
        if (opcode == ws::op_close) {
            on_close_frame(payload);
            return false;
        }
        return true;  // pong
    }

private:
    bool finished() const {
        ConnState s = st_.load(std::memory_order_relaxed);
        return s == ConnState::failed || s == ConnState::closed;
    }

    void on_connect(error_code ec) {
        if (st_.load(std::memory_order_relaxed) != ConnState::connecting) return;
        if (ec) return fail("connect: " + ec.message());
        error_code ignored;
        sock_.set_option(tcp::no_delay(true), ignored);
        sock_.non_blocking(true, ec);
        if (ec) return fail("socket: " + ec.message());
        const Url& u = eng_.url_at(url_);
        std::string key = ws::make_key(wk_.random64(), wk_.random64());
        accept_ = ws::accept_key(key);
        handshaking_ = true;
        pending_ = ws::upgrade_request(u.target(auction_), u.host_header, key);
        flush();
        if (!finished()) wait_read();
    }

    // ------------------------------------------------------------------ reading

    void wait_read() {
        sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
            if (self->finished()) return;
            if (ec) return self->read_failed(ec);
            self->read_now();
        });
    }

    void read_now() {
        for (int i = 0; i < kReadsPerWakeup; ++i) {
            error_code ec;
            size_t n = sock_.read_some(net::buffer(wk_.rbuf.get(), kReadBuffer), ec);
            if (ec == net::error::would_block || ec == net::error::try_again) return wait_read();
            if (ec) return read_failed(ec);
            if (!on_bytes(wk_.rbuf.get(), n)) return;  // the connection ended
            if (n < kReadBuffer) return wait_read();
        }
        net::post(wk_.ioc, [self = shared_from_this()] {
            if (!self->finished()) self->read_now();
        });
    }

    // False when the connection ended.
    bool on_bytes(const char* data, size_t n) {
        if (handshaking_) return on_response_bytes(data, n);
        in_batch_ = true;
        ws::Reader::Result r = reader_.feed(data, n, *this);
        in_batch_ = false;
        if (r == ws::Reader::Result::error) {
            protocol_error();
            return false;
        }
        if (r == ws::Reader::Result::stopped || finished()) return false;
        if (flush_due_) {
            flush_due_ = false;
            flush();
        }
        return !finished();
    }

    bool on_response_bytes(const char* data, size_t n) {
        size_t from = hs_.size() >= 3 ? hs_.size() - 3 : 0;
        hs_.append(data, n);
        size_t end = hs_.find("\r\n\r\n", from);
        if (end == std::string::npos) {
            if (hs_.size() <= kMaxResponseHead) return true;
            fail("handshake: response header too large");
            return false;
        }
        end += 4;
        std::string why = ws::check_upgrade_response(std::string_view(hs_).substr(0, end), accept_);
        if (!why.empty()) {
            fail("handshake: " + why);
            return false;
        }
        handshaking_ = false;
        std::string rest = hs_.substr(end);  // the first frames, when they came with the response
        std::string().swap(hs_);
        std::string().swap(accept_);
        return rest.empty() || on_bytes(rest.data(), rest.size());
    }

    void read_failed(error_code ec) {
        if (handshaking_) {
            return fail(ec == net::error::eof ? std::string("handshake: end of stream") : "handshake: " + ec.message());
        }
        CloseInfo info;
        if (ec == net::error::eof) {
            info.kind = "eof";
        } else if (ec == net::error::connection_reset || ec == net::error::broken_pipe) {
            info.kind = "reset";
        } else {
            info.kind = "error";
        }
        info.reason = ec.message();
        finish(info, false);
    }

    void on_close_frame(std::string_view payload) {
        CloseInfo info;
        info.kind = "close_frame";
        info.code = ws::close_no_status;
        if (payload.size() >= 2) {
            info.code = (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
            info.reason = std::string(payload.substr(2));
        }
        if (!close_sent_) {
            // Echo the code (RFC 6455 5.5.1); a close without one is answered without one.
            queue_frame(ws::op_close, payload.size() >= 2 ? ws::close_payload(info.code) : std::string());
            flush();
        }
        finish(info, true);
    }

    void protocol_error() {
        wk_.protocol_errors.add();
        if (!close_sent_) {
            queue_frame(ws::op_close, ws::close_payload(reader_.error_close_code()));
            flush();
        }
        CloseInfo info;
        info.kind = "error";
        info.reason = "protocol error: " + reader_.error();
        finish(info, true);
    }

    // The end of a connection that got past connecting (or failed during it). `linger`: the
    // socket is closed once the frames queued (a close frame) are written.
    void finish(CloseInfo& info, bool linger) {
        int64_t now = now_ns();
        info.was_open = st_.load(std::memory_order_relaxed) == ConnState::open;
        info.by_us = closing_;
        if (!info.was_open) {
            // Ended before its first message: a connect failure (e.g. close 4004 bid not found).
            std::string why = info.kind == "close_frame"
                                  ? "closed before the first message: " + std::to_string(info.code) +
                                        (info.reason.empty() ? "" : " " + info.reason)
                                  : "ended before the first message: " + info.reason;
            return fail(why, linger);
        }
        st_.store(ConnState::closed, std::memory_order_release);
        if (closing_) eng_.closes_pending.fetch_sub(1);
        drop_socket(linger);
        handler_->on_closed(*this, info, now);
    }

    void fail(const std::string& why, bool linger = false) {
        bool counted = st_.load(std::memory_order_relaxed) == ConnState::connecting;
        st_.store(ConnState::failed, std::memory_order_release);
        drop_socket(linger);
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

    // ------------------------------------------------------------------ writing

    void queue_frame(uint8_t opcode, std::string_view payload) {
        if (close_sent_) return;  // nothing may follow a close frame
        ws::append_client_frame(pending_, opcode, payload, static_cast<uint32_t>(wk_.random64() >> 32));
        if (opcode == ws::op_close) close_sent_ = true;
        if (opcode == ws::op_text) ++pending_count_;
        if (in_batch_) flush_due_ = true;  // written at the end of the read batch
        else flush();
    }

    // Writes what is pending: directly when the socket takes it, else with one async_write.
    void flush() {
        if (writing_ || pending_.empty() || !sock_.is_open()) return;
        error_code ec;
        size_t n = sock_.write_some(net::buffer(pending_), ec);
        if (ec == net::error::would_block || ec == net::error::try_again) {
            n = 0;
            ec = {};
        }
        if (ec) return write_failed();
        if (n == pending_.size()) {
            pending_.clear();
            pending_count_ = 0;
            if (close_after_write_) drop_socket(false);
            return;
        }
        flight_.assign(pending_, n);
        flight_count_ = pending_count_;
        pending_.clear();
        pending_count_ = 0;
        writing_ = true;
        net::async_write(sock_, net::buffer(flight_),
                         [self = shared_from_this()](error_code e, std::size_t) { self->on_write(e); });
    }

    void on_write(error_code ec) {
        writing_ = false;
        flight_.clear();
        flight_count_ = 0;
        if (ec) return write_failed();
        if (!pending_.empty()) return flush();
        if (close_after_write_) drop_socket(false);
    }

    // The read side sees the error; what was queued is dropped.
    void write_failed() {
        pending_.clear();
        pending_count_ = 0;
        if (close_after_write_) drop_socket(false);
    }

    void drop_socket(bool after_write) {
        if (after_write && (writing_ || !pending_.empty())) {
            close_after_write_ = true;
            return;
        }
        close_after_write_ = false;
        error_code ignored;
        if (sock_.is_open()) {
            sock_.shutdown(tcp::socket::shutdown_both, ignored);
            sock_.close(ignored);
        }
    }

    EngineImpl& eng_;
    Worker& wk_;
    int url_;
    int64_t auction_;
    Handler* handler_;
    const net::ip::address* source_;
    tcp::socket sock_;
    ws::Reader reader_;
    std::string hs_;        // the handshake response so far
    std::string accept_;    // the Sec-WebSocket-Accept expected
    std::string pending_;   // frames not yet handed to the socket
    std::string flight_;    // the bytes of the async_write in flight
    size_t pending_count_ = 0, flight_count_ = 0;  // text messages in them
    Scan scan_;
    std::atomic<ConnState> st_{ConnState::registered};
    bool handshaking_ = false;
    bool writing_ = false;
    bool closing_ = false;     // we sent (or are sending) the end-of-run close
    bool close_sent_ = false;  // a close frame is queued or written: nothing more is
    bool close_after_write_ = false;
    bool in_batch_ = false, flush_due_ = false;
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
    error_code ec;
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

std::unique_ptr<Engine> Engine::create(int threads, const std::vector<std::string>& sources, int rcvbuf,
                                       std::string& error) {
    std::vector<net::ip::address> addrs;
    for (const auto& s : sources) {
        error_code ec;
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
    return std::make_unique<EngineImpl>(threads, std::move(addrs), rcvbuf);
}

}  // namespace bench
