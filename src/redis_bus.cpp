#include <bidding/integer_text.hpp>
#include <bidding/redis_bus.hpp>

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <limits>
#include <memory>
#include <stdexcept>

namespace bidding {

namespace {

constexpr std::string_view channel_prefix = "bidding:auction:";
constexpr auto initial_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::milliseconds(2000);
constexpr timeval io_timeout{2, 0};

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

// Connects and authenticates; throws redis_failure. Never logs the password.
context_ptr connect(const redis_endpoint& ep) {
    context_ptr c(redisConnectWithTimeout(ep.host.c_str(), ep.port, io_timeout));
    if (!c || c->err != 0) {
        throw redis_failure("cannot connect to Redis at " + ep.host + ":" + std::to_string(ep.port) + ": " +
                            context_error(c.get()));
    }
    redisSetTimeout(c.get(), io_timeout);
    redisEnableKeepAlive(c.get());
    if (!ep.password.empty()) {
        reply_ptr r(static_cast<redisReply*>(redisCommand(c.get(), "AUTH %s", ep.password.c_str())));
        if (!r || r->type == REDIS_REPLY_ERROR) {
            throw redis_failure("Redis refused the password");
        }
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

std::optional<seq_t> parse_seq(std::string_view text) {
    return parse_integer<seq_t>(text, 0, std::numeric_limits<seq_t>::max());
}

}  // namespace

std::string auction_channel(auction_id id) { return std::string(channel_prefix) + std::to_string(id); }

std::optional<auction_id> parse_auction_channel(std::string_view channel) {
    if (!channel.starts_with(channel_prefix)) {
        return std::nullopt;
    }
    const auto id = parse_seq(channel.substr(channel_prefix.size()));
    if (!id || *id <= 0) {
        return std::nullopt;
    }
    return *id;
}

std::string encode_bid(const feed_event& event, std::int64_t committed_us) {
    return "bid " + std::to_string(event.prev) + " " + std::to_string(event.seq) + " " + std::to_string(committed_us) +
           "\n" + *event.text;
}

std::string encode_close(std::string_view bid_closed_json) { return "close\n" + std::string(bid_closed_json); }

std::optional<bus_message> decode_bus_message(std::string_view payload) {
    const auto nl = payload.find('\n');
    if (nl == std::string_view::npos) {
        return std::nullopt;
    }
    const auto header = payload.substr(0, nl);
    const auto body = payload.substr(nl + 1);
    if (header == "close") {
        return bus_close{make_shared_text(std::string(body))};
    }
    if (!header.starts_with("bid ")) {
        return std::nullopt;
    }
    auto fields = header.substr(4);
    std::optional<seq_t> numbers[3];
    for (auto& n : numbers) {
        const auto space = fields.find(' ');
        n = parse_seq(fields.substr(0, space));
        fields = space == std::string_view::npos ? std::string_view{} : fields.substr(space + 1);
    }
    const auto& [prev, seq, committed] = numbers;
    if (!prev || !seq || !committed || *seq <= *prev) {
        return std::nullopt;
    }
    return bus_bid{feed_event{*prev, *seq, make_shared_text(std::string(body))}, *committed};
}

redis_bus::redis_bus(redis_endpoint endpoint, handlers h, histogram* fanout_latency)
    : endpoint_(std::move(endpoint)), handlers_(std::move(h)), fanout_latency_(fanout_latency) {
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

void redis_bus::publish(auction_id id, std::string payload) {
    {
        std::lock_guard lock(pub_mutex_);
        if (pub_queue_.size() >= max_queued) {
            return;  // Redis is far behind or away: the other pods re-read Postgres
        }
        pub_queue_.emplace_back(auction_channel(id), std::move(payload));
    }
    pub_ready_.notify_one();
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

void redis_bus::backoff_wait(std::chrono::milliseconds& delay, std::mutex& m, std::condition_variable& cv) {
    std::unique_lock lock(m);
    cv.wait_for(lock, delay, [this] { return stopping_.load(); });
    delay = std::min(delay * 2, max_backoff);
}

void redis_bus::run_publisher() {
    context_ptr c;
    auto delay = initial_backoff;
    bool ever_connected = false;
    const auto drop_queue = [this](const std::string& why) {
        std::size_t dropped = 0;
        {
            std::lock_guard lock(pub_mutex_);
            dropped = pub_queue_.size();
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
                c = connect(endpoint_);
            } catch (const redis_failure& e) {
                if (delay == initial_backoff) {  // once per outage, not at every retry
                    spdlog::warn("Redis publisher: {}", e.what());
                }
                drop_queue("Redis unreachable");
                if (stopping_) {
                    break;
                }
                backoff_wait(delay, pub_mutex_, pub_ready_);
                continue;
            }
            publisher_up_ = true;
            if (ever_connected) {
                ++reconnects_;
            }
            ever_connected = true;
            delay = initial_backoff;
            spdlog::info("Redis publisher connected to {}:{}", endpoint_.host, endpoint_.port);
        }
        std::deque<std::pair<std::string, std::string>> batch;
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
            for (const auto& [channel, payload] : batch) {
                redisAppendCommand(c.get(), "PUBLISH %b %b", channel.data(), channel.size(), payload.data(),
                                   payload.size());
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
            c.reset();
            publisher_up_ = false;
        }
    }
    publisher_up_ = false;
}

void redis_bus::run_subscriber() {
    auto delay = initial_backoff;
    bool ever_connected = false;
    while (!stopping_) {
        try {
            auto c = connect(endpoint_);
            if (ever_connected) {
                ++reconnects_;
            }
            ever_connected = true;
            delay = initial_backoff;
            spdlog::info("Redis subscriber connected to {}:{}", endpoint_.host, endpoint_.port);
            subscriber_session(c.get());
        } catch (const redis_failure& e) {
            if (delay == initial_backoff) {  // once per outage, not at every retry
                spdlog::warn("Redis subscriber: {}; retrying with backoff", e.what());
            }
        }
        subscriber_up_ = false;
        if (!stopping_) {
            backoff_wait(delay, sub_mutex_, sub_cv_);
        }
    }
}

void redis_bus::subscriber_session(redisContext* c) {
    {
        // Every wanted channel, afresh: pending operations are already reflected in wanted_.
        std::lock_guard lock(sub_mutex_);
        sub_ops_.clear();
        for (const auto id : wanted_) {
            const auto channel = auction_channel(id);
            redisAppendCommand(c, "SUBSCRIBE %b", channel.data(), channel.size());
        }
    }
    flush_writes(c);
    subscriber_up_ = true;

    while (!stopping_) {
        pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (::poll(fds, 2, 1000) < 0) {
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
                const auto channel = auction_channel(id);
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
        for (;;) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(c, &raw) != REDIS_OK) {
                throw redis_failure(context_error(c));
            }
            if (raw == nullptr) {
                break;
            }
            reply_ptr r(static_cast<redisReply*>(raw));
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_STRING) {
                continue;
            }
            const std::string_view kind(r->element[0]->str, r->element[0]->len);
            const auto id = parse_auction_channel(std::string_view(r->element[1]->str, r->element[1]->len));
            if (!id) {
                continue;
            }
            if (kind == "subscribe") {
                handlers_.on_subscribed(*id);
                continue;
            }
            if (kind != "message" || r->element[2]->type != REDIS_REPLY_STRING) {
                continue;
            }
            auto message = decode_bus_message(std::string_view(r->element[2]->str, r->element[2]->len));
            if (!message) {
                spdlog::warn("ignoring a malformed message on {}", auction_channel(*id));
                continue;
            }
            if (auto* bid = std::get_if<bus_bid>(&*message)) {
                if (fanout_latency_ != nullptr) {
                    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count();
                    fanout_latency_->observe(std::chrono::microseconds(now_us - bid->committed_us));
                }
                if (bids.empty() || bids.back().first != *id) {
                    bids.emplace_back(*id, std::vector<feed_event>{});
                }
                bids.back().second.push_back(std::move(bid->event));
            } else {
                for (auto& [aid, events] : bids) {  // keep closes after the bids before them
                    handlers_.on_bids(aid, std::move(events));
                }
                bids.clear();
                handlers_.on_close(*id, std::get<bus_close>(*message).text);
            }
        }
        for (auto& [aid, events] : bids) {
            handlers_.on_bids(aid, std::move(events));
        }
    }
}

bool publish_once(const redis_endpoint& endpoint, const std::string& channel, const std::string& payload) {
    try {
        auto c = connect(endpoint);
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
