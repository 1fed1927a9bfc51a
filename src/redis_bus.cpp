#include <bidding/redis_bus.hpp>
#include <bidding/backoff.hpp>

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace bidding {

namespace {

constexpr auto initial_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::milliseconds(1000);  // back within about a second of Redis answering
constexpr std::size_t max_dropped_remembered = 10'000;

struct context_deleter {
    void operator()(redisContext* c) const { redisFree(c); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

struct reply_deleter {
    void operator()(void* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

class redis_failure : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string context_error(const redisContext* c) { return c != nullptr && c->err != 0 ? c->errstr : "unknown error"; }

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// Connects and authenticates; throws redis_failure. Never logs the password. Every read and
// write on the connection then fails after `timeout` without progress.
context_ptr connect(const redis_endpoint& ep, std::chrono::milliseconds timeout) {
    const auto tv = to_timeval(timeout);
    context_ptr c(redisConnectWithTimeout(ep.host.c_str(), ep.port, tv));
    if (!c || c->err != 0) {
        throw redis_failure("cannot connect to Redis at " + ep.host + ":" + std::to_string(ep.port) + ": " +
                            context_error(c.get()));
    }
    redisSetTimeout(c.get(), tv);
    redisEnableKeepAlive(c.get());
    // PING (or AUTH) proves that Redis answers, not only that its kernel accepted the connection.
    reply_ptr r(static_cast<redisReply*>(ep.password.empty() ? redisCommand(c.get(), "PING")
                                                             : redisCommand(c.get(), "AUTH %s", ep.password.c_str())));
    if (!r) {
        throw redis_failure("Redis did not answer: " + context_error(c.get()));
    }
    if (r->type == REDIS_REPLY_ERROR) {
        throw redis_failure(ep.password.empty() ? "Redis refused the connection" : "Redis refused the password");
    }
    return c;
}

void flush_writes(redisContext* c) {
    int done = 0;
    while (done == 0) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            throw redis_failure(context_error(c));
        }
    }
}

std::int64_t unix_micros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// The bus over hiredis: private to this file, reached through make_redis_bus.
class redis_bus final : public auction_bus {
public:
    using handlers = auction_bus::handlers;
    using settings = redis_bus_settings;
    static constexpr std::size_t max_queued = redis_bus_max_queued;

    // `fanout_latency`, when given, observes commit -> arrival for every bid received.
    redis_bus(settings s, bus_codec codec, handlers h, histogram* fanout_latency = nullptr);
    ~redis_bus() override;
    redis_bus(const redis_bus&) = delete;
    redis_bus& operator=(const redis_bus&) = delete;

    void start() override;
    void stop(std::chrono::milliseconds flush_timeout) override;
    void publish_bid(auction_id id, const feed_event& event, std::int64_t committed_us) override;
    void publish_close(auction_id id, const std::string& bid_closed_json) override;
    void publish_hold(auction_id id, std::chrono::milliseconds duration) override;
    void subscribe(auction_id id) override;
    void unsubscribe(auction_id id) override;
    bool connected() const override { return publisher_up_ && subscriber_up_; }
    std::uint64_t reconnects() const override { return reconnects_; }
    std::uint64_t rejected() const override { return rejected_; }

private:
    struct outgoing {
        auction_id id;
        std::string payload;
        bool bid;  // the newest dropped bid of an auction is sent again after a reconnect
    };

    void enqueue(outgoing m);
    void run_publisher();
    void run_subscriber();
    void subscriber_session(::redisContext* c);
    void handle_reply(void* reply, std::vector<std::pair<auction_id, std::vector<feed_event>>>& bids, bool& pong);
    void wake_subscriber();
    // Waits out the next backoff step, or less when the bus stops.
    void backoff_wait(backoff& retry, std::mutex& m, std::condition_variable& cv);
    void remember_dropped(std::deque<outgoing>& messages);

    settings settings_;
    bus_codec codec_;
    handlers handlers_;
    histogram* fanout_latency_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> publisher_up_{false};
    std::atomic<bool> subscriber_up_{false};
    std::atomic<std::uint64_t> reconnects_{0};
    std::atomic<std::uint64_t> rejected_{0};

    std::mutex pub_mutex_;
    std::condition_variable pub_ready_;
    std::deque<outgoing> pub_queue_;
    std::map<auction_id, outgoing> dropped_;  // the newest bid per auction that could not be published
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::thread publisher_;

    std::mutex sub_mutex_;
    std::condition_variable sub_cv_;  // only for backoff waits
    std::set<auction_id> wanted_;
    std::deque<std::pair<bool, auction_id>> sub_ops_;  // true: subscribe
    int wake_fd_{-1};
    std::chrono::steady_clock::time_point last_rejection_log_{};
    std::thread subscriber_;
};


std::unique_ptr<auction_bus> make_redis_bus(redis_bus_settings s, bus_codec codec, auction_bus::handlers h,
                                            histogram* fanout_latency) {
    return std::make_unique<redis_bus>(std::move(s), std::move(codec), std::move(h), fanout_latency);
}

redis_bus::redis_bus(settings s, bus_codec codec, handlers h, histogram* fanout_latency)
    : settings_(std::move(s)), codec_(std::move(codec)), handlers_(std::move(h)), fanout_latency_(fanout_latency) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        throw std::runtime_error("eventfd failed");
    }
}

redis_bus::~redis_bus() {
    stop(std::chrono::milliseconds(0));
    ::close(wake_fd_);
}

void redis_bus::start() {
    publisher_ = std::thread([this] { run_publisher(); });
    subscriber_ = std::thread([this] { run_subscriber(); });
}

void redis_bus::stop(std::chrono::milliseconds flush_timeout) {
    {
        std::lock_guard lock(pub_mutex_);
        if (stopping_) {
            return;
        }
        flush_deadline_ = std::chrono::steady_clock::now() + flush_timeout;
        stopping_ = true;
    }
    pub_ready_.notify_all();
    sub_cv_.notify_all();
    wake_subscriber();
    if (publisher_.joinable()) {
        publisher_.join();
    }
    if (subscriber_.joinable()) {
        subscriber_.join();
    }
}

void redis_bus::enqueue(outgoing m) {
    {
        std::lock_guard lock(pub_mutex_);
        if (pub_queue_.size() >= max_queued) {
            std::deque<outgoing> one;
            one.push_back(std::move(m));
            remember_dropped(one);  // Redis is far behind or away: the other pods re-read Postgres
            return;
        }
        pub_queue_.push_back(std::move(m));
    }
    pub_ready_.notify_one();
}

void redis_bus::publish_bid(auction_id id, const feed_event& event, std::int64_t committed_us) {
    enqueue(outgoing{id, codec_.encode_bid(id, event, committed_us), true});
}

void redis_bus::publish_close(auction_id id, const std::string& bid_closed_json) {
    enqueue(outgoing{id, codec_.encode_close(id, bid_closed_json), false});
}

void redis_bus::publish_hold(auction_id id, std::chrono::milliseconds duration) {
    enqueue(outgoing{id, codec_.encode_hold(id, duration), false});
}

// Called with pub_mutex_ held.
void redis_bus::remember_dropped(std::deque<outgoing>& messages) {
    for (auto& m : messages) {
        if (!m.bid) {
            continue;  // closes also travel through Postgres NOTIFY; a hold is stale by now
        }
        if (dropped_.size() >= max_dropped_remembered && !dropped_.contains(m.id)) {
            continue;  // those pods notice at the auction's next bid, or when they resubscribe
        }
        dropped_.insert_or_assign(m.id, std::move(m));
    }
}

void redis_bus::subscribe(auction_id id) {
    {
        std::lock_guard lock(sub_mutex_);
        wanted_.insert(id);
        sub_ops_.emplace_back(true, id);
    }
    wake_subscriber();
}

void redis_bus::unsubscribe(auction_id id) {
    {
        std::lock_guard lock(sub_mutex_);
        wanted_.erase(id);
        sub_ops_.emplace_back(false, id);
    }
    wake_subscriber();
}

void redis_bus::wake_subscriber() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void redis_bus::backoff_wait(backoff& retry, std::mutex& m, std::condition_variable& cv) {
    std::unique_lock lock(m);
    cv.wait_for(lock, retry.next(), [this] { return stopping_.load(); });
}

void redis_bus::run_publisher() {
    context_ptr c;
    backoff retry(initial_backoff, max_backoff);
    bool ever_connected = false;
    const auto drop_queue = [this](const std::string& why) {
        std::size_t dropped = 0;
        {
            std::lock_guard lock(pub_mutex_);
            dropped = pub_queue_.size();
            remember_dropped(pub_queue_);
            pub_queue_.clear();
        }
        if (dropped > 0) {
            spdlog::warn("Redis publisher: {}; {} message(s) dropped, other pods recover them from Postgres", why,
                         dropped);
        }
    };
    while (!stopping_ || std::chrono::steady_clock::now() < flush_deadline_) {
        if (!c) {
            // Connected eagerly, so that readiness reflects Redis before the first bid.
            try {
                c = connect(settings_.endpoint, settings_.timeout);
            } catch (const redis_failure& e) {
                if (retry.fresh()) {  // once per outage, not at every retry
                    spdlog::warn("Redis publisher: {}", e.what());
                }
                drop_queue("Redis unreachable");
                if (stopping_) {
                    break;
                }
                backoff_wait(retry, pub_mutex_, pub_ready_);
                continue;
            }
            publisher_up_ = true;
            if (ever_connected) {
                ++reconnects_;
            }
            ever_connected = true;
            retry.reset();
            spdlog::info("Redis publisher connected to {}:{}", settings_.endpoint.host, settings_.endpoint.port);
            std::lock_guard lock(pub_mutex_);
            // What the other pods missed shows itself by the newest bid of each auction.
            for (auto& [id, m] : dropped_) {
                pub_queue_.push_front(std::move(m));
            }
            dropped_.clear();
        }
        std::deque<outgoing> batch;
        {
            std::unique_lock lock(pub_mutex_);
            pub_ready_.wait(lock, [this] { return stopping_ || !pub_queue_.empty(); });
            if (pub_queue_.empty()) {
                break;  // stopping, and everything was published
            }
            batch.swap(pub_queue_);
        }
        try {
            // Pipelined: every PUBLISH of the batch goes out before the first reply is read.
            for (const auto& m : batch) {
                const auto channel = codec_.channel(m.id);
                redisAppendCommand(c.get(), "PUBLISH %b %b", channel.data(), channel.size(), m.payload.data(),
                                   m.payload.size());
            }
            for (std::size_t i = 0; i < batch.size(); ++i) {
                void* raw = nullptr;
                if (redisGetReply(c.get(), &raw) != REDIS_OK) {
                    throw redis_failure(context_error(c.get()));
                }
                reply_ptr r(static_cast<redisReply*>(raw));
            }
        } catch (const redis_failure& e) {
            spdlog::warn("Redis publisher lost its connection ({}); {} message(s) dropped, other pods recover them "
                         "from Postgres",
                         e.what(), batch.size());
            {
                std::lock_guard lock(pub_mutex_);
                remember_dropped(batch);
            }
            c.reset();
            publisher_up_ = false;
        }
    }
    publisher_up_ = false;
}

void redis_bus::run_subscriber() {
    backoff retry(initial_backoff, max_backoff);
    bool ever_connected = false;
    while (!stopping_) {
        try {
            auto c = connect(settings_.endpoint, settings_.timeout);
            if (ever_connected) {
                ++reconnects_;
            }
            ever_connected = true;
            retry.reset();
            spdlog::info("Redis subscriber connected to {}:{}", settings_.endpoint.host, settings_.endpoint.port);
            subscriber_session(c.get());
        } catch (const redis_failure& e) {
            if (retry.fresh()) {  // once per outage, not at every retry
                spdlog::warn("Redis subscriber: {}; retrying with backoff", e.what());
            }
        }
        subscriber_up_ = false;
        if (!stopping_) {
            backoff_wait(retry, sub_mutex_, sub_cv_);
        }
    }
}

void redis_bus::subscriber_session(redisContext* c) {
    using clock = std::chrono::steady_clock;
    {
        // Every wanted channel, afresh: pending operations are already reflected in wanted_.
        std::lock_guard lock(sub_mutex_);
        sub_ops_.clear();
        for (const auto id : wanted_) {
            const auto channel = codec_.channel(id);
            redisAppendCommand(c, "SUBSCRIBE %b", channel.data(), channel.size());
        }
    }
    flush_writes(c);
    subscriber_up_ = true;

    auto next_ping = clock::now() + settings_.ping_interval;
    std::optional<clock::time_point> ping_sent;
    while (!stopping_) {
        const auto now = clock::now();
        if (ping_sent && now >= *ping_sent + settings_.timeout) {
            throw redis_failure("no answer to PING within REDIS_TIMEOUT");
        }
        if (!ping_sent && now >= next_ping) {
            redisAppendCommand(c, "PING");
            flush_writes(c);
            ping_sent = now;
        }
        const auto wake_at = ping_sent ? *ping_sent + settings_.timeout : next_ping;
        const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now).count();
        pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(std::clamp<std::int64_t>(wait_ms + 1, 1, 1000))) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw redis_failure("poll failed");
        }
        if ((fds[1].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
            std::deque<std::pair<bool, auction_id>> ops;
            {
                std::lock_guard lock(sub_mutex_);
                ops.swap(sub_ops_);
            }
            for (const auto& [sub, id] : ops) {
                const auto channel = codec_.channel(id);
                redisAppendCommand(c, sub ? "SUBSCRIBE %b" : "UNSUBSCRIBE %b", channel.data(), channel.size());
            }
            if (!ops.empty()) {
                flush_writes(c);
            }
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
            continue;
        }
        if (redisBufferRead(c) != REDIS_OK) {
            throw redis_failure(context_error(c));
        }
        // Everything that arrived in this read, bids grouped per auction in arrival order.
        std::vector<std::pair<auction_id, std::vector<feed_event>>> bids;
        bool pong = false;
        for (;;) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(c, &raw) != REDIS_OK) {
                throw redis_failure(context_error(c));
            }
            if (raw == nullptr) {
                break;
            }
            handle_reply(raw, bids, pong);
        }
        for (auto& [aid, events] : bids) {
            handlers_.on_bids(aid, std::move(events));
        }
        if (pong) {
            ping_sent.reset();
            next_ping = clock::now() + settings_.ping_interval;
        }
    }
}

void redis_bus::handle_reply(void* raw, std::vector<std::pair<auction_id, std::vector<feed_event>>>& bids, bool& pong) {
    reply_ptr r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_STATUS && std::string_view(r->str, r->len) == "PONG") {
        pong = true;  // the answer to PING while no channel is subscribed
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    const std::string_view kind(r->element[0]->str, r->element[0]->len);
    if (kind == "pong") {
        pong = true;
        return;
    }
    if (r->elements < 3 || r->element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const auto id = codec_.auction_of(std::string_view(r->element[1]->str, r->element[1]->len));
    if (!id) {
        return;
    }
    if (kind == "subscribe") {
        handlers_.on_subscribed(*id);
        return;
    }
    if (kind != "message" || r->element[2]->type != REDIS_REPLY_STRING) {
        return;
    }
    auto message = codec_.decode(*id, std::string_view(r->element[2]->str, r->element[2]->len));
    if (!message) {
        ++rejected_;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_rejection_log_ > std::chrono::minutes(1)) {  // at most a line a minute
            last_rejection_log_ = now;
            spdlog::warn("ignoring a message on {} that no pod of this deployment signed ({} so far)",
                         codec_.channel(*id), rejected_.load());
        }
        return;
    }
    if (auto* bid = std::get_if<bus_bid>(&*message)) {
        if (fanout_latency_ != nullptr) {
            fanout_latency_->observe(std::chrono::microseconds(unix_micros() - bid->committed_us));
        }
        if (bids.empty() || bids.back().first != *id) {
            bids.emplace_back(*id, std::vector<feed_event>{});
        }
        bids.back().second.push_back(std::move(bid->event));
        return;
    }
    if (auto* hold = std::get_if<bus_hold>(&*message)) {
        if (handlers_.on_hold) {
            handlers_.on_hold(*id, hold->duration);
        }
        return;
    }
    for (auto& [aid, events] : bids) {  // keep closes after the bids before them
        handlers_.on_bids(aid, std::move(events));
    }
    bids.clear();
    handlers_.on_close(*id, std::get<bus_close>(*message).text);
}

bool publish_once(const redis_endpoint& endpoint, const std::string& channel, const std::string& payload) {
    try {
        auto c = connect(endpoint, std::chrono::milliseconds(2000));
        reply_ptr r(static_cast<redisReply*>(
            redisCommand(c.get(), "PUBLISH %b %b", channel.data(), channel.size(), payload.data(), payload.size())));
        if (!r || r->type == REDIS_REPLY_ERROR) {
            throw redis_failure(context_error(c.get()));
        }
        return true;
    } catch (const redis_failure& e) {
        spdlog::warn("could not publish to Redis: {}", e.what());
        return false;
    }
}

}  // namespace bidding
