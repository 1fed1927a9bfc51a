#include "scenarios.hpp"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "client.hpp"
#include "histogram.hpp"
#include "proc_stats.hpp"
#include "report.hpp"
#include "scanner.hpp"

#ifndef BIDDING_BENCH_VERSION
#define BIDDING_BENCH_VERSION "dev"
#endif

namespace bench {

std::atomic<bool> g_interrupted{false};

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

// A counter written by one thread only and read approximately by the main thread.
struct Counter {
    std::atomic<uint64_t> v{0};
    void add(uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

void atomic_max(std::atomic<int64_t>& a, int64_t v) {
    int64_t prev = a.load(std::memory_order_relaxed);
    while (prev < v && !a.compare_exchange_weak(prev, v, std::memory_order_relaxed)) {
    }
}

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv1a(uint64_t h, std::string_view s) {
    for (unsigned char c : s) {
        h ^= c;
        h *= kFnvPrime;
    }
    return h;
}

uint64_t fnv1a_seq(uint64_t h, int64_t seq) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf - 1, seq);
    *r.ptr++ = ',';
    return fnv1a(h, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

std::string hex16(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
    return buf;
}

double seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// The send time of each bid, by price (cents), so that observers on any thread find the send time
// of the new_bid they read. A seqlock per slot; a slot holds the latest price that maps to it.
class SendRing {
public:
    explicit SendRing(int bits) : mask_((size_t{1} << bits) - 1), slots_(new Slot[mask_ + 1]) {}

    void put(int64_t cents, int64_t t) {
        Slot& s = slots_[static_cast<size_t>(cents) & mask_];
        if (s.cents.load(std::memory_order_relaxed) == cents) return;  // first send of a price wins
        s.cents.store(-1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        s.t.store(t, std::memory_order_relaxed);
        s.cents.store(cents, std::memory_order_release);
    }

    bool get(int64_t cents, int64_t& t) const {
        const Slot& s = slots_[static_cast<size_t>(cents) & mask_];
        if (s.cents.load(std::memory_order_acquire) != cents) return false;
        t = s.t.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        return s.cents.load(std::memory_order_relaxed) == cents;
    }

private:
    struct Slot {
        std::atomic<int64_t> cents{-1};
        std::atomic<int64_t> t{0};
    };
    size_t mask_;
    std::unique_ptr<Slot[]> slots_;
};

struct AuctionState {
    AuctionState(int64_t i, int ring_bits) : id(i), ring(ring_bits) {}
    int64_t id;
    SendRing ring;
    std::atomic<int64_t> max_accepted_seq{-1};  // bidding-server: highest seq of a bid_accepted
    std::atomic<int64_t> max_echo_cents{-1};    // relay: highest price a bidder saw come back
    std::atomic<int64_t> current_cents{-1};     // highest current_price seen in an initial_state
    std::atomic<int64_t> with_bid{0}, without_bid{0};  // initial_states with/without the "bid" object
    // Tally (main thread, after the run)
    uint64_t decided = 0;
};

struct alignas(64) WorkerStats {
    Counter deliveries, deliveries_in_load, anomalies, bids_sent, replies, decided_in_load;
    Counter other_types[4];  // server_shutdown, bid_closed, error (unsolicited, at observers), other
    Histogram fanout_us, reply_us;
};

struct Shared {
    explicit Shared(const Options& opt) : o(opt) {}
    const Options& o;
    std::atomic<bool> sending{false};
    std::atomic<int64_t> load_start_ns{INT64_MAX}, load_end_ns{INT64_MAX};
    std::atomic<int64_t> next_price{0};  // overload: one counter for all bidders
    std::vector<std::unique_ptr<WorkerStats>> stats;

    bool in_load(int64_t now) const {
        return now >= load_start_ns.load(std::memory_order_relaxed) && now < load_end_ns.load(std::memory_order_relaxed);
    }
};

void note_initial_state(AuctionState& a, const Scan& m, int64_t& last_seq, int64_t& current) {
    last_seq = -1;
    current = -1;
    if (m.bid.empty()) {
        a.without_bid.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    a.with_bid.fetch_add(1, std::memory_order_relaxed);
    std::string_view cur;
    if (scan_bid_object(m.bid, last_seq, cur)) {
        int64_t c = 0;
        if (parse_cents(cur, c)) {
            current = c;
            atomic_max(a.current_cents, c);
        }
    }
}

// ------------------------------------------------------------------------------------ observer

class Observer final : public Handler {
public:
    Observer(Shared& sh, AuctionState& a, WorkerStats& st) : sh_(sh), auc_(a), st_(st) {}

    void on_message(Conn&, const Scan& m, std::string_view, int64_t now) override {
        opened = true;
        if (m.type == "new_bid") return on_new_bid(m, now);
        if (m.type == "initial_state") {
            int64_t current = -1;
            note_initial_state(auc_, m, initial_last_seq, current);
            got_initial = true;
            seen_key.store(initial_last_seq, std::memory_order_relaxed);
            return;
        }
        if (m.type == "ping" || m.type.empty()) return;
        if (m.type == "server_shutdown") st_.other_types[0].add();
        else if (m.type == "bid_closed") st_.other_types[1].add();
        else if (m.type == "error") st_.other_types[2].add();
        else st_.other_types[3].add();
    }

    void on_closed(Conn&, const CloseInfo& info, int64_t) override {
        if (!info.was_open) return;
        if (!info.by_us) {
            closed_by_server = true;
            close_code = info.code;
            close_kind = info.kind;
        }
        ended.store(true, std::memory_order_release);
    }

    AuctionState& auction() const { return auc_; }

    Conn* conn = nullptr;
    bool opened = false;         // got its first message
    int64_t initial_last_seq = -1;
    bool got_initial = false;
    bool by_price = false;       // the server sends no seq (the yardstick): bids are told apart by price
    uint64_t count = 0;
    int64_t first_seq = -1, last_seq = -1, last_cents = -1;
    uint64_t digest = kFnvOffset;
    uint64_t anomalies = 0;
    bool closed_by_server = false;
    int close_code = -1;
    std::string close_kind;
    std::atomic<int64_t> seen_key{-1};  // last seq (or price in cents, by_price) seen: for the settle phase
    std::atomic<bool> ended{false};

private:
    void on_new_bid(const Scan& m, int64_t now) {
        ++count;
        st_.deliveries.add();
        if (sh_.in_load(now)) st_.deliveries_in_load.add();
        int64_t cents = -1;
        bool have_price = parse_cents(m.price, cents);
        if (m.seq >= 0) {
            int64_t previous = last_seq >= 0 ? last_seq : initial_last_seq;
            if (m.seq <= previous) {
                ++anomalies;
                st_.anomalies.add();
            }
            if (first_seq < 0) first_seq = m.seq;
            last_seq = m.seq;
            digest = fnv1a_seq(digest, m.seq);
            seen_key.store(m.seq, std::memory_order_relaxed);
        } else {
            by_price = true;
            if (have_price) {
                if (cents <= last_cents) {
                    ++anomalies;
                    st_.anomalies.add();
                }
                last_cents = cents;
                seen_key.store(cents, std::memory_order_relaxed);
            }
            digest = fnv1a(fnv1a(digest, m.price), ",");
        }
        int64_t sent = 0;
        if (have_price && auc_.ring.get(cents, sent) && now >= sent)
            st_.fanout_us.record(static_cast<uint64_t>((now - sent) / 1000));
    }

    Shared& sh_;
    AuctionState& auc_;
    WorkerStats& st_;
};

// ------------------------------------------------------------------------------------ bidder

// Reply codes as small ids (per bidder table; the names are merged at the end).
class CodeTable {
public:
    CodeTable() {
        for (const char* n : {"", "bid_accepted", "echo", "price_too_low", "overloaded", "unavailable", "in_doubt",
                              "rate_limited", "bid_closed"})
            names_.emplace_back(n);
    }
    static constexpr uint8_t none = 0, accepted = 1, echo = 2, too_low = 3;
    uint8_t id(std::string_view name) {
        for (size_t i = 1; i < names_.size(); ++i)
            if (names_[i] == name) return static_cast<uint8_t>(i);
        if (names_.size() >= 250) return static_cast<uint8_t>(names_.size() - 1);
        names_.emplace_back(name.empty() ? std::string_view("(none)") : name);
        return static_cast<uint8_t>(names_.size() - 1);
    }
    const std::string& name(uint8_t id) const { return names_[id]; }

private:
    std::vector<std::string> names_;
};

struct BidRec {
    int64_t cents = 0;
    int64_t sent = 0;
    int64_t replied = 0;
    int64_t seq = -1;
    uint8_t code = CodeTable::none;
};

enum class Mode { pipelined, rate, closed_loop };
enum class PriceSource { own_counter, shared_counter, highest_seen };

class Bidder final : public Handler {
public:
    Bidder(Shared& sh, AuctionState& a, WorkerStats& st, int index, Mode mode, PriceSource ps, std::string name)
        : sh_(sh), auc_(a), st_(st), index_(index), mode_(mode), price_source_(ps), name_(std::move(name)) {
        append_json_string(name_json_, name_);
        ref_prefix_ = "b" + std::to_string(index_) + "-";
        reply_timeout_ns_ = static_cast<int64_t>(sh.o.reply_timeout * 1e9);
        step_ = sh.o.step_cents;
    }

    // Configuration set by the scenario before start().
    Conn* conn = nullptr;
    Timer* timer = nullptr;  // rate mode
    double rate = 0;         // bids per second (rate mode)
    double phase = 0;        // 0..1: offset of this bidder's pacing, as a fraction of the interval
    int window = 1;          // pipelined
    int64_t first_cents = 100;  // own_counter: the first price

    const std::string& name() const { return name_; }
    const std::string& ref_prefix() const { return ref_prefix_; }  // refs are PREFIX + index in bids
    AuctionState& auction() const { return auc_; }
    bool relay() const { return relay_; }
    bool connected() const { return conn != nullptr && conn->state() == ConnState::open; }

    void start(int64_t now) {
        start_ns_ = now;
        next_cents_ = first_cents;
        if (!connected()) return;
        switch (mode_) {
            case Mode::closed_loop: send_next(now); break;
            case Mode::pipelined:
                while (outstanding_local_ < window && sh_.sending.load(std::memory_order_relaxed)) send_next(now);
                break;
            case Mode::rate: tick(); break;
        }
    }

    // Settle phase (main thread): nothing more to wait for from this bidder.
    bool done(int64_t now) const {
        if (ended_.load(std::memory_order_acquire)) return true;
        if (outstanding_.load(std::memory_order_relaxed) == 0) return true;
        return now - last_send_.load(std::memory_order_relaxed) > reply_timeout_ns_;
    }

    void on_message(Conn&, const Scan& m, std::string_view, int64_t now) override {
        if (m.type == "bid_accepted" || m.type == "error") return on_reply(m, now);
        if (m.type == "new_bid") {
            int64_t cents = 0;
            if (!parse_cents(m.price, cents)) return;
            highest_ = std::max(highest_, cents);
            if (relay_ && m.bidder == name_) on_echo(cents, now);
            return;
        }
        if (m.type == "initial_state") {
            int64_t last_seq = -1, current = -1;
            note_initial_state(auc_, m, last_seq, current);
            relay_ = m.bid.empty();
            highest_ = std::max(highest_, current);
        }
    }

    void on_closed(Conn&, const CloseInfo& info, int64_t) override {
        if (info.was_open && !info.by_us) {
            closed_by_server = true;
            close_code = info.code;
            close_kind = info.kind;
        }
        ended_.store(true, std::memory_order_release);
    }

    // Tally (after the threads stopped)
    std::vector<BidRec> bids;
    CodeTable codes;
    uint64_t duplicate_replies = 0;
    bool closed_by_server = false;
    int close_code = -1;
    std::string close_kind;

private:
    int64_t next_price() {
        switch (price_source_) {
            case PriceSource::own_counter: {
                int64_t c = next_cents_;
                next_cents_ += step_;
                return c;
            }
            case PriceSource::shared_counter: return sh_.next_price.fetch_add(step_, std::memory_order_relaxed);
            case PriceSource::highest_seen: return highest_ + 1;  // + 0.01
        }
        return 0;
    }

    void send_next(int64_t now) {
        if (!connected()) return;
        int64_t cents = next_price();
        size_t n = bids.size();
        BidRec rec;
        rec.cents = cents;
        rec.sent = now;
        bids.push_back(rec);
        char price[32];
        int plen = format_cents(cents, price);
        std::string msg;
        msg.reserve(48 + name_json_.size() + static_cast<size_t>(plen));
        msg += "{\"name\":";
        msg += name_json_;
        msg += ",\"price\":\"";
        msg.append(price, static_cast<size_t>(plen));
        msg += "\",\"ref\":\"";
        msg += ref_prefix_;
        msg += std::to_string(n);
        msg += "\"}";
        auc_.ring.put(cents, now);
        ++outstanding_local_;
        outstanding_.store(outstanding_local_, std::memory_order_relaxed);
        last_send_.store(now, std::memory_order_relaxed);
        st_.bids_sent.add();
        conn->send(std::move(msg));
    }

    void tick() {
        if (!sh_.sending.load(std::memory_order_relaxed) || !connected()) return;
        int64_t now = now_ns();
        double elapsed = seconds(now - start_ns_);
        double due_f = std::floor(elapsed * rate - phase) + 1;
        uint64_t due = due_f > 0 ? static_cast<uint64_t>(due_f) : 0;
        int burst = 0;
        while (rate_sent_ < due && burst < 10000) {
            send_next(now);
            ++rate_sent_;
            ++burst;
        }
        int64_t next = start_ns_ + static_cast<int64_t>((static_cast<double>(rate_sent_) + phase) / rate * 1e9);
        timer->at(std::max(next, now + 50'000), [this] { tick(); });
    }

    void after_reply(int64_t now) {
        if (!sh_.sending.load(std::memory_order_relaxed)) return;
        if (mode_ == Mode::closed_loop) {
            if (outstanding_local_ == 0) send_next(now);
        } else if (mode_ == Mode::pipelined) {
            while (outstanding_local_ < window && sh_.sending.load(std::memory_order_relaxed) && connected())
                send_next(now);
        }
    }

    BidRec* record_reply(size_t n, int64_t now) {
        if (n >= bids.size() || bids[n].code != CodeTable::none) {
            ++duplicate_replies;
            return nullptr;
        }
        BidRec& r = bids[n];
        r.replied = now;
        --outstanding_local_;
        outstanding_.store(outstanding_local_, std::memory_order_relaxed);
        st_.replies.add();
        st_.reply_us.record(static_cast<uint64_t>(std::max<int64_t>(0, now - r.sent) / 1000));
        return &r;
    }

    void on_reply(const Scan& m, int64_t now) {
        int64_t cents = 0;
        if (m.type == "error" && parse_cents(m.current_price, cents)) highest_ = std::max(highest_, cents);
        if (m.type == "bid_accepted" && parse_cents(m.price, cents)) highest_ = std::max(highest_, cents);
        // Our refs are PREFIX + index; anything else is a reply to a bid we did not send.
        std::string_view ref = m.ref;
        size_t n = SIZE_MAX;
        if (m.has_ref && ref.size() > ref_prefix_.size() && ref.substr(0, ref_prefix_.size()) == ref_prefix_) {
            std::string_view digits = ref.substr(ref_prefix_.size());
            if (digits.size() <= 12 && digits.find_first_not_of("0123456789") == std::string_view::npos) {
                n = 0;
                for (char ch : digits) n = n * 10 + static_cast<size_t>(ch - '0');
            }
        }
        BidRec* r = record_reply(n, now);
        if (r == nullptr) return;
        if (m.type == "bid_accepted") {
            r->code = CodeTable::accepted;
            r->seq = m.seq;
            if (m.seq >= 0) atomic_max(auc_.max_accepted_seq, m.seq);
        } else {
            r->code = codes.id(m.code);
        }
        if ((r->code == CodeTable::accepted || r->code == CodeTable::too_low) && sh_.in_load(now))
            st_.decided_in_load.add();
        after_reply(now);
    }

    // The yardstick sends no replies: the bidder's own new_bid answers its bid.
    void on_echo(int64_t cents, int64_t now) {
        if (price_source_ != PriceSource::own_counter || cents < first_cents || (cents - first_cents) % step_ != 0) {
            ++duplicate_replies;
            return;
        }
        BidRec* r = record_reply(static_cast<size_t>((cents - first_cents) / step_), now);
        if (r == nullptr) return;
        r->code = CodeTable::echo;
        atomic_max(auc_.max_echo_cents, cents);
        if (sh_.in_load(now)) st_.decided_in_load.add();
        after_reply(now);
    }

    Shared& sh_;
    AuctionState& auc_;
    WorkerStats& st_;
    int index_;
    Mode mode_;
    PriceSource price_source_;
    std::string name_, name_json_, ref_prefix_;
    int64_t reply_timeout_ns_ = 0;
    int64_t step_ = 1;
    bool relay_ = false;
    int64_t highest_ = -1;
    int64_t next_cents_ = 0;
    int64_t start_ns_ = 0;
    uint64_t rate_sent_ = 0;
    int64_t outstanding_local_ = 0;
    std::atomic<int64_t> outstanding_{0};
    std::atomic<int64_t> last_send_{0};
    std::atomic<bool> ended_{false};
};

// ------------------------------------------------------------------------------------ the run

Json latency_json(const Histogram& h) {
    Json j = Json::object();
    j["count"] = h.count();
    j["p50"] = h.percentile(50);
    j["p90"] = h.percentile(90);
    j["p99"] = h.percentile(99);
    j["p999"] = h.percentile(99.9);
    j["max"] = h.max();
    j["mean"] = std::round(h.mean() * 10) / 10;
    return j;
}

double rate_of(double n, double secs) { return secs > 0 ? std::round(n / secs * 10) / 10 : 0.0; }

struct ProcWatch {
    int pid;
    ProcSample start, load_start, load_end, end;
};

class Run {
public:
    explicit Run(const Options& o) : o_(o), sh_(o) {}

    int execute();

private:
    int setup();
    void add_observer(AuctionState& a);
    Bidder& add_bidder(AuctionState& a, Mode mode, PriceSource ps);
    int next_worker() { return static_cast<int>(slot_++ % static_cast<size_t>(o_.threads)); }
    int next_url() { return static_cast<int>(url_slot_++ % static_cast<size_t>(urls_)); }
    void connect_phase();
    void load_phase();
    void settle_phase();
    void hold_phase();
    void finish_and_report();
    void progress_line(const char* phase, double elapsed, double total);
    std::string server_kind() const;
    int fail(const std::string& why);
    void write_observer_report();
    void write_bid_report();
    void sleep_until(int64_t deadline, const char* phase, double total);

    const Options& o_;
    Shared sh_;
    std::unique_ptr<Engine> engine_;
    size_t urls_ = 0;
    size_t slot_ = 0, url_slot_ = 0;
    std::vector<std::unique_ptr<AuctionState>> auctions_;
    std::vector<std::unique_ptr<Observer>> observers_;
    std::vector<std::unique_ptr<Bidder>> bidders_;
    std::vector<ProcWatch> procs_;
    ProcWatch self_{0, {}, {}, {}, {}};
    Json report_ = Json::object();

    int64_t connect_start_ = 0, connect_end_ = 0;
    int64_t load_start_ = 0, load_end_ = 0;
    int64_t settle_start_ = 0, settle_end_ = 0;
    bool settled_ = false;
    bool connect_timed_out_ = false;
    int64_t observers_open_at_end_ = 0, bidders_open_at_end_ = 0;
    int64_t last_progress_ = 0;
    uint64_t last_sent_ = 0, last_deliveries_ = 0, last_replies_ = 0;
};

int Run::fail(const std::string& why) {
    std::fprintf(stderr, "bidding-bench: %s\n", why.c_str());
    Json j = Json::object();
    j["tool"] = "bidding-bench";
    j["version"] = BIDDING_BENCH_VERSION;
    j["scenario"] = scenario_name(o_.scenario);
    for (const auto& [k, v] : report_.members()) j[k] = v;
    j["ok"] = false;
    j["error"] = why;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return 1;
}

void Run::add_observer(AuctionState& a) {
    int w = next_worker();
    auto obs = std::make_unique<Observer>(sh_, a, *sh_.stats[static_cast<size_t>(w)]);
    obs->conn = &engine_->add(next_url(), a.id, w, obs.get());
    observers_.push_back(std::move(obs));
}

Bidder& Run::add_bidder(AuctionState& a, Mode mode, PriceSource ps) {
    int w = next_worker();
    int index = static_cast<int>(bidders_.size());
    auto b = std::make_unique<Bidder>(sh_, a, *sh_.stats[static_cast<size_t>(w)], index, mode, ps,
                                      o_.name + "-b" + std::to_string(index));
    b->conn = &engine_->add(next_url(), a.id, w, b.get());
    if (mode == Mode::rate) b->timer = &engine_->timer(w);
    bidders_.push_back(std::move(b));
    return *bidders_.back();
}

int Run::setup() {
    std::string error;
    engine_ = Engine::create(o_.threads, o_.sources, static_cast<int>(o_.rcvbuf), error);
    if (!engine_) return fail(error);
    for (const auto& u : o_.urls)
        if (engine_->add_url(u, error) < 0) return fail(error);
    urls_ = o_.urls.size();
    for (int i = 0; i < o_.threads; ++i) sh_.stats.push_back(std::make_unique<WorkerStats>());

    int64_t total = 0;
    switch (o_.scenario) {
        case Scenario::idle: total = o_.connections; break;
        case Scenario::fanout: total = o_.observers + 1; break;
        case Scenario::hot:
        case Scenario::overload: total = o_.observers + o_.bidders; break;
        case Scenario::many:
            total = (o_.last_auction - o_.first_auction + 1) * (o_.bidders_per_auction + o_.observers_per_auction);
            break;
    }
    uint64_t limit = raise_fd_limit(static_cast<uint64_t>(total) + 256);
    if (limit < static_cast<uint64_t>(total) + 32)
        std::fprintf(stderr, "bidding-bench: warning: the open-file limit is %llu, below the %lld connections\n",
                     static_cast<unsigned long long>(limit), static_cast<long long>(total));

    switch (o_.scenario) {
        case Scenario::idle: {
            auctions_.push_back(std::make_unique<AuctionState>(o_.auction, 4));
            for (int64_t i = 0; i < o_.connections; ++i) add_observer(*auctions_[0]);
            break;
        }
        case Scenario::fanout: {
            auctions_.push_back(std::make_unique<AuctionState>(o_.auction, 20));
            Bidder& b = add_bidder(*auctions_[0], o_.pipelined ? Mode::pipelined : Mode::rate, PriceSource::own_counter);
            b.rate = o_.rate;
            b.window = o_.window;
            for (int64_t i = 0; i < o_.observers; ++i) add_observer(*auctions_[0]);
            break;
        }
        case Scenario::hot:
        case Scenario::overload: {
            auctions_.push_back(std::make_unique<AuctionState>(o_.auction, 20));
            bool overload = o_.scenario == Scenario::overload;
            for (int64_t i = 0; i < o_.bidders; ++i) {
                Bidder& b = add_bidder(*auctions_[0], overload ? Mode::rate : Mode::closed_loop,
                                       overload ? PriceSource::shared_counter : PriceSource::highest_seen);
                b.rate = o_.rate;
                b.phase = static_cast<double>(i) / static_cast<double>(o_.bidders);
            }
            for (int64_t i = 0; i < o_.observers; ++i) add_observer(*auctions_[0]);
            break;
        }
        case Scenario::many: {
            for (int64_t id = o_.first_auction; id <= o_.last_auction; ++id)
                auctions_.push_back(std::make_unique<AuctionState>(id, 12));
            for (auto& a : auctions_)
                for (int64_t i = 0; i < o_.bidders_per_auction; ++i)
                    add_bidder(*a, Mode::closed_loop, PriceSource::highest_seen);
            for (auto& a : auctions_)
                for (int64_t i = 0; i < o_.observers_per_auction; ++i) add_observer(*a);
            break;
        }
    }
    for (int pid : o_.pids) procs_.push_back(ProcWatch{pid, sample_process(pid), {}, {}, {}});
    self_.start = sample_process(0);
    return 0;
}

void Run::progress_line(const char* phase, double elapsed, double total) {
    if (o_.quiet) return;
    int64_t now = now_ns();
    double dt = seconds(now - last_progress_);
    uint64_t sent = 0, deliveries = 0, replies = 0;
    for (const auto& s : sh_.stats) {
        sent += s->bids_sent.get();
        deliveries += s->deliveries.get();
        replies += s->replies.get();
    }
    ConnectProgress p = engine_->progress();
    if (o_.scenario == Scenario::idle || std::strcmp(phase, "connect") == 0) {
        std::fprintf(stderr, "[%s %5.1f/%.0f s] open %lld  failed %lld  of %lld\n", phase, elapsed, total,
                     static_cast<long long>(p.opened), static_cast<long long>(p.failed),
                     static_cast<long long>(p.registered));
    } else {
        std::fprintf(stderr, "[%s %5.1f/%.0f s] bids sent %llu (%.0f/s)  replies %llu (%.0f/s)  deliveries %llu (%.0f/s)\n",
                     phase, elapsed, total, static_cast<unsigned long long>(sent),
                     dt > 0 ? static_cast<double>(sent - last_sent_) / dt : 0.0, static_cast<unsigned long long>(replies),
                     dt > 0 ? static_cast<double>(replies - last_replies_) / dt : 0.0,
                     static_cast<unsigned long long>(deliveries),
                     dt > 0 ? static_cast<double>(deliveries - last_deliveries_) / dt : 0.0);
    }
    last_progress_ = now;
    last_sent_ = sent;
    last_deliveries_ = deliveries;
    last_replies_ = replies;
}

void Run::sleep_until(int64_t deadline, const char* phase, double total) {
    int64_t begin = now_ns();
    last_progress_ = begin;
    int64_t next_print = begin + kNsPerSec;
    for (;;) {
        int64_t now = now_ns();
        if (now >= deadline || g_interrupted.load()) break;
        if (now >= next_print) {
            progress_line(phase, seconds(now - begin), total);
            next_print += kNsPerSec;
        }
        std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(deadline - now, 20'000'000)));
    }
}

void Run::connect_phase() {
    connect_start_ = now_ns();
    engine_->connect_all(o_.concurrency);
    int64_t deadline = connect_start_ + static_cast<int64_t>(o_.connect_timeout * 1e9);
    int64_t next_print = connect_start_ + kNsPerSec;
    last_progress_ = connect_start_;
    for (;;) {
        ConnectProgress p = engine_->progress();
        if (p.opened + p.failed >= p.registered) break;
        int64_t now = now_ns();
        if (now >= deadline || g_interrupted.load()) {
            connect_timed_out_ = now >= deadline;
            engine_->fail_pending(g_interrupted.load() ? "interrupted" : "timeout");
            break;
        }
        if (now >= next_print) {
            progress_line("connect", seconds(now - connect_start_), o_.connect_timeout);
            next_print += kNsPerSec;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ConnectProgress p = engine_->progress();
    connect_end_ = p.opened > 0 ? p.last_open_ns : now_ns();
    double secs = seconds(connect_end_ - connect_start_);
    Json c = Json::object();
    c["requested"] = p.registered;
    c["connected"] = p.opened;
    c["failed"] = p.failed;
    Json f = Json::object();
    for (const auto& [reason, n] : engine_->failures()) f[reason] = n;
    c["failures"] = f;
    c["seconds"] = std::round(secs * 1000) / 1000;
    c["per_second"] = rate_of(static_cast<double>(p.opened), secs);
    c["concurrency"] = o_.concurrency;
    report_["connect"] = c;
}

std::string Run::server_kind() const {
    int64_t with = 0, without = 0;
    for (const auto& a : auctions_) {
        with += a->with_bid.load();
        without += a->without_bid.load();
    }
    if (with > 0 && without == 0) return "bidding-server";
    if (without > 0 && with == 0) return "relay";
    if (with > 0) return "mixed";
    return "unknown";
}

void Run::load_phase() {
    int64_t step = o_.step_cents;
    int64_t current = -1;
    for (const auto& a : auctions_) current = std::max(current, a->current_cents.load());
    int64_t start_price = o_.start_price_cents ? *o_.start_price_cents : (current >= 0 ? current + step : 100);
    sh_.next_price.store(start_price);
    for (auto& b : bidders_) b->first_cents = start_price;
    if (o_.scenario == Scenario::fanout || o_.scenario == Scenario::overload)
        report_["start_price"] = format_cents(start_price);

    for (auto& p : procs_) p.load_start = sample_process(p.pid);
    self_.load_start = sample_process(0);
    load_start_ = now_ns();
    sh_.load_start_ns.store(load_start_);
    sh_.sending.store(true);
    for (auto& b : bidders_) {
        Bidder* bp = b.get();
        int64_t t = load_start_;
        engine_->post(bp->conn->worker(), [bp, t] { bp->start(t); });
    }
    sleep_until(load_start_ + static_cast<int64_t>(o_.duration * 1e9), "load", o_.duration);
    load_end_ = now_ns();
    sh_.load_end_ns.store(load_end_);
    sh_.sending.store(false);
    for (auto& p : procs_) p.load_end = sample_process(p.pid);
    self_.load_end = sample_process(0);
}

void Run::settle_phase() {
    settle_start_ = now_ns();
    int64_t deadline = settle_start_ + static_cast<int64_t>(o_.settle * 1e9);
    bool relay = server_kind() == "relay";
    for (;;) {
        int64_t now = now_ns();
        bool all = true;
        for (const auto& b : bidders_)
            if (!b->done(now)) {
                all = false;
                break;
            }
        if (all) {
            for (const auto& obs : observers_) {
                if (obs->ended.load(std::memory_order_acquire) || obs->conn->state() != ConnState::open) continue;
                AuctionState* a = &obs->auction();
                int64_t target = relay ? a->max_echo_cents.load() : a->max_accepted_seq.load();
                if (target >= 0 && obs->seen_key.load(std::memory_order_relaxed) < target) {
                    all = false;
                    break;
                }
            }
        }
        if (all) {
            settled_ = true;
            break;
        }
        if (now >= deadline || g_interrupted.load()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    settle_end_ = now_ns();
}

void Run::hold_phase() {
    int64_t start = now_ns();
    sleep_until(start + static_cast<int64_t>(o_.hold * 1e9), "hold", o_.hold);
    for (auto& p : procs_) p.end = sample_process(p.pid);  // "held"
    self_.end = sample_process(0);
    report_["hold"]["seconds"] = std::round(seconds(now_ns() - start) * 1000) / 1000;
}

int Run::execute() {
    if (int rc = setup()) return rc;
    report_["tool"] = "bidding-bench";
    report_["version"] = BIDDING_BENCH_VERSION;
    report_["scenario"] = scenario_name(o_.scenario);
    report_["ok"] = true;
    {
        Json c = Json::object();
        Json urls = Json::array();
        for (const auto& u : o_.urls) urls.push(u);
        c["urls"] = urls;
        if (o_.scenario == Scenario::many) {
            c["auctions"] = std::to_string(o_.first_auction) + "-" + std::to_string(o_.last_auction);
            c["bidders_per_auction"] = o_.bidders_per_auction;
            c["observers_per_auction"] = o_.observers_per_auction;
        } else {
            c["auction"] = o_.auction;
        }
        c["threads"] = o_.threads;
        if (!o_.sources.empty()) {
            Json s = Json::array();
            for (const auto& x : o_.sources) s.push(x);
            c["sources"] = s;
        }
        if (o_.rcvbuf > 0) c["rcvbuf"] = o_.rcvbuf;
        switch (o_.scenario) {
            case Scenario::idle:
                c["connections"] = o_.connections;
                c["hold_s"] = o_.hold;
                break;
            case Scenario::fanout:
                c["observers"] = o_.observers;
                c["mode"] = o_.pipelined ? "pipelined" : "rate";
                if (o_.pipelined) c["window"] = o_.window;
                else c["rate"] = o_.rate;
                break;
            case Scenario::hot:
                c["bidders"] = o_.bidders;
                c["observers"] = o_.observers;
                break;
            case Scenario::overload:
                c["bidders"] = o_.bidders;
                c["rate_per_bidder"] = o_.rate;
                c["observers"] = o_.observers;
                break;
            case Scenario::many: break;
        }
        if (o_.scenario != Scenario::idle) {
            c["duration_s"] = o_.duration;
            c["settle_s"] = o_.settle;
            c["reply_timeout_s"] = o_.reply_timeout;
        }
        c["connect_timeout_s"] = o_.connect_timeout;
        report_["config"] = c;
    }
    engine_->run();
    connect_phase();
    report_["server_kind"] = server_kind();
    ConnectProgress p = engine_->progress();
    if (p.opened == 0) {
        engine_->stop();
        return fail("nobody could connect");
    }
    if (o_.scenario == Scenario::idle) {
        hold_phase();
    } else {
        int64_t bidders_open = 0;
        for (const auto& b : bidders_) bidders_open += b->connected() ? 1 : 0;
        if (bidders_open == 0) {
            engine_->close_all(1.0);
            engine_->stop();
            return fail("no bidder could connect");
        }
        std::string kind = server_kind();
        if (kind != "bidding-server" && o_.scenario != Scenario::fanout) {
            engine_->close_all(1.0);
            engine_->stop();
            return fail(std::string(scenario_name(o_.scenario)) +
                        " needs bidding-server (its bid replies); this server's initial_state has no \"bid\" (" + kind + ")");
        }
        load_phase();
        settle_phase();
        for (auto& pw : procs_) pw.end = sample_process(pw.pid);
        self_.end = sample_process(0);
    }
    for (const auto& obs : observers_)
        if (obs->conn->state() == ConnState::open) ++observers_open_at_end_;
    for (const auto& b : bidders_)
        if (b->connected()) ++bidders_open_at_end_;
    engine_->close_all(2.0);
    engine_->stop();
    finish_and_report();
    return 0;
}

void Run::finish_and_report() {
    Histogram fanout_us, reply_us;
    uint64_t deliveries = 0, deliveries_in_load = 0, decided_in_load = 0, other[4] = {0, 0, 0, 0};
    for (const auto& s : sh_.stats) {
        fanout_us.merge(s->fanout_us);
        reply_us.merge(s->reply_us);
        deliveries += s->deliveries.get();
        deliveries_in_load += s->deliveries_in_load.get();
        decided_in_load += s->decided_in_load.get();
        for (int i = 0; i < 4; ++i) other[i] += s->other_types[i].get();
    }
    double load_s = seconds(load_end_ - load_start_);
    bool idle = o_.scenario == Scenario::idle;

    if (!idle) {
        Json l = Json::object();
        l["seconds"] = std::round(load_s * 1000) / 1000;
        l["settle_seconds"] = std::round(seconds(settle_end_ - settle_start_) * 1000) / 1000;
        l["settled"] = settled_;
        report_["load"] = l;

        // Bids
        int64_t timeout_ns = static_cast<int64_t>(o_.reply_timeout * 1e9);
        uint64_t sent = 0, replied = 0, unanswered = 0, late = 0, dup = 0, decided = 0, sent_in_load = 0;
        std::map<std::string, uint64_t> by_code;
        int64_t bidders_closed = 0;
        for (const auto& b : bidders_) {
            if (b->closed_by_server) ++bidders_closed;
            dup += b->duplicate_replies;
            AuctionState* a = &b->auction();
            for (const auto& r : b->bids) {
                ++sent;
                if (r.sent >= load_start_ && r.sent < load_end_) ++sent_in_load;
                if (r.code == CodeTable::none) {
                    ++unanswered;
                    continue;
                }
                ++replied;
                if (r.replied - r.sent > timeout_ns) {
                    ++late;
                    ++unanswered;
                }
                ++by_code[b->codes.name(r.code)];
                if (r.code == CodeTable::accepted || r.code == CodeTable::too_low || r.code == CodeTable::echo) {
                    ++decided;
                    if (a) ++a->decided;
                }
            }
        }
        Json bj = Json::object();
        bj["bidders"] = static_cast<int64_t>(bidders_.size());
        bj["bidders_connected_at_end"] = bidders_open_at_end_;
        bj["bidders_closed_by_server"] = bidders_closed;
        bj["sent"] = sent;
        bj["sent_per_second"] = rate_of(static_cast<double>(sent_in_load), load_s);
        bj["replied"] = replied;
        bj["decided"] = decided;
        bj["decided_in_load"] = decided_in_load;
        bj["decided_per_second"] = rate_of(static_cast<double>(decided_in_load), load_s);
        Json codes = Json::object();
        for (const auto& [k, v] : by_code) codes[k] = v;
        bj["replies"] = codes;
        bj["unanswered"] = unanswered;
        bj["late_replies"] = late;
        bj["duplicate_reply"] = dup;
        report_["bids"] = bj;
        report_["reply_latency_us"] = latency_json(reply_us);

        if (o_.scenario == Scenario::many) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (const auto& a : auctions_) {
                lo = std::min(lo, a->decided);
                hi = std::max(hi, a->decided);
            }
            Json aj = Json::object();
            aj["count"] = static_cast<int64_t>(auctions_.size());
            aj["first"] = o_.first_auction;
            aj["last"] = o_.last_auction;
            aj["decided_min"] = auctions_.empty() ? 0 : lo;
            aj["decided_max"] = hi;
            report_["auctions"] = aj;
        }
    }

    // Observers (idle: every connection is one)
    {
        int64_t connected = 0, closed = 0, caught_up = 0;
        uint64_t anomalies = 0;
        std::map<std::string, int64_t> codes;
        bool relay = server_kind() == "relay";
        for (const auto& obs : observers_) {
            if (!obs->opened) continue;
            ++connected;
            anomalies += obs->anomalies;
            if (obs->closed_by_server) {
                ++closed;
                ++codes[obs->close_code >= 0 ? std::to_string(obs->close_code) : obs->close_kind];
            } else {
                AuctionState* a = &obs->auction();
                int64_t target = relay ? a->max_echo_cents.load() : a->max_accepted_seq.load();
                if (target < 0 || obs->seen_key.load() >= target) ++caught_up;
            }
        }
        Json oj = Json::object();
        oj["count"] = static_cast<int64_t>(observers_.size());
        oj["connected"] = connected;
        oj["connected_at_end"] = observers_open_at_end_;
        oj["closed_by_server"] = closed;
        Json cj = Json::object();
        for (const auto& [k, v] : codes) cj[k] = v;
        oj["close_codes"] = cj;
        if (!idle) {
            oj["caught_up"] = caught_up;
            oj["deliveries"] = deliveries;
            oj["deliveries_in_load"] = deliveries_in_load;
            oj["deliveries_per_second"] = rate_of(static_cast<double>(deliveries_in_load), load_s);
        }
        oj["anomalies"] = anomalies;
        oj["server_shutdown"] = other[0];
        oj["bid_closed"] = other[1];
        report_[idle ? "connections" : "observers"] = oj;
        if (!idle) report_["fanout_latency_us"] = latency_json(fanout_us);
        if (!idle) {
            int64_t target = -1;
            for (const auto& a : auctions_) target = std::max(target, relay ? a->max_echo_cents.load() : a->max_accepted_seq.load());
            report_["observers"]["settle_target"] = relay ? Json(target >= 0 ? format_cents(target) : std::string("-"))
                                                          : Json(static_cast<long long>(target));
        }
    }

    // Processes
    {
        Json arr = Json::array();
        int64_t opened = engine_->progress().opened;
        auto proc_json = [&](const ProcWatch& p) {
            Json j = Json::object();
            j["pid"] = p.pid == 0 ? static_cast<int>(::getpid()) : p.pid;
            if (idle) {
                j["rss_kib_before"] = p.start.rss_kib;
                j["rss_kib_held"] = p.end.rss_kib;
                if (p.start.ok && p.end.ok && opened > 0)
                    j["rss_kib_per_connection"] =
                        std::round(static_cast<double>(p.end.rss_kib - p.start.rss_kib) / static_cast<double>(opened) * 100) / 100;
                else
                    j["rss_kib_per_connection"] = nullptr;
            } else {
                j["rss_kib_start"] = p.start.rss_kib;
                j["rss_kib_end"] = p.end.rss_kib;
                double cpu = cpu_percent(p.load_start, p.load_end, load_s);
                double user = user_cpu_percent(p.load_start, p.load_end, load_s);
                j["cpu_percent"] = cpu >= 0 ? Json(std::round(cpu * 10) / 10) : Json(nullptr);
                j["cpu_user_percent"] = user >= 0 ? Json(std::round(user * 10) / 10) : Json(nullptr);
            }
            j["threads"] = p.end.threads;
            j["alive"] = p.end.ok;
            return j;
        };
        for (const auto& p : procs_) arr.push(proc_json(p));
        report_["processes"] = arr;
        report_["self"] = proc_json(self_);
    }
    {
        EngineCounters ec = engine_->counters();
        Json m = Json::object();
        m["received"] = ec.messages;
        m["bytes"] = ec.bytes;
        m["malformed"] = ec.malformed;
        m["pings"] = ec.pings;
        m["binary"] = ec.binary;
        m["protocol_errors"] = ec.protocol_errors;
        report_["messages"] = m;
    }
    report_["interrupted"] = g_interrupted.load();

    if (!o_.observer_report.empty()) write_observer_report();
    if (!o_.bid_report.empty()) write_bid_report();

    std::string title = std::string("bidding-bench ") + scenario_name(o_.scenario) + " (" + server_kind() + ")";
    print_table(report_, title);
    std::printf("%s\n", report_.dump().c_str());
    std::fflush(stdout);
}

void Run::write_observer_report() {
    std::ofstream f(o_.observer_report, std::ios::trunc);
    if (!f) {
        std::fprintf(stderr, "bidding-bench: cannot write %s\n", o_.observer_report.c_str());
        report_["observer_report_error"] = "cannot write " + o_.observer_report;
        return;
    }
    std::string line;
    for (const auto& obs : observers_) {
        line.clear();
        bool connected = obs->opened;
        line += "{\"url\":";
        append_json_string(line, engine_->url(obs->conn->url_index()));
        line += ",\"auction\":" + std::to_string(obs->conn->auction());
        line += ",\"connected\":";
        line += connected ? "true" : "false";
        line += ",\"initial_last_seq\":" + (obs->initial_last_seq >= 0 ? std::to_string(obs->initial_last_seq) : "null");
        line += ",\"count\":" + std::to_string(obs->count);
        line += ",\"first_seq\":" + (obs->first_seq >= 0 ? std::to_string(obs->first_seq) : "null");
        line += ",\"last_seq\":" + (obs->last_seq >= 0 ? std::to_string(obs->last_seq) : "null");
        line += ",\"key\":";
        line += obs->by_price ? "\"price\"" : "\"seq\"";
        line += ",\"digest\":\"" + hex16(obs->digest) + "\"";
        line += ",\"anomalies\":" + std::to_string(obs->anomalies);
        line += ",\"closed\":";
        line += obs->closed_by_server ? "true" : "false";
        line += ",\"close_code\":" + (obs->close_code >= 0 ? std::to_string(obs->close_code) : "null");
        line += "}\n";
        f << line;
    }
}

void Run::write_bid_report() {
    std::ofstream f(o_.bid_report, std::ios::trunc);
    if (!f) {
        std::fprintf(stderr, "bidding-bench: cannot write %s\n", o_.bid_report.c_str());
        report_["bid_report_error"] = "cannot write " + o_.bid_report;
        return;
    }
    std::string line;
    std::string buffer;
    for (const auto& b : bidders_) {
        std::string bidder_json;
        append_json_string(bidder_json, b->name());
        std::string auction = std::to_string(b->conn->auction());
        for (size_t i = 0; i < b->bids.size(); ++i) {
            const BidRec& r = b->bids[i];
            line.clear();
            // The ref as sent: see Bidder::send_next.
            line += "{\"ref\":\"" + b->ref_prefix() + std::to_string(i) + "\"";
            char price[32];
            int plen = format_cents(r.cents, price);
            line += ",\"price\":\"";
            line.append(price, static_cast<size_t>(plen));
            line += "\",\"bidder\":" + bidder_json;
            line += ",\"auction\":" + auction;
            line += ",\"reply\":";
            if (r.code == CodeTable::none) line += "null";
            else append_json_string(line, b->codes.name(r.code));
            line += ",\"seq\":" + (r.seq >= 0 ? std::to_string(r.seq) : std::string("null"));
            line += ",\"latency_ms\":";
            line += r.code == CodeTable::none ? "null" : format_number(static_cast<double>(r.replied - r.sent) / 1e6, 3);
            line += "}\n";
            buffer += line;
            if (buffer.size() > (1 << 20)) {
                f << buffer;
                buffer.clear();
            }
        }
    }
    f << buffer;
}

}  // namespace

int run_scenario(const Options& o) {
    Run run(o);
    return run.execute();
}

int scenarios_self_test() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %s\n", what);
        }
    };
    // FNV-1a 64 of "" and of "a" (published test vectors), and of "43,44," built seq by seq.
    check(fnv1a(kFnvOffset, "") == 0xcbf29ce484222325ull, "fnv1a empty");
    check(fnv1a(kFnvOffset, "a") == 0xaf63dc4c8601ec8cull, "fnv1a a");
    check(fnv1a_seq(fnv1a_seq(kFnvOffset, 43), 44) == fnv1a(kFnvOffset, "43,44,"), "digest of seqs");
    check(hex16(0xabcull) == "0000000000000abc", "hex16");
    SendRing ring(4);
    int64_t t = 0;
    ring.put(105, 7);
    check(ring.get(105, t) && t == 7, "ring get");
    check(!ring.get(121, t), "ring: another price on the same slot is not found");
    ring.put(121, 9);
    check(!ring.get(105, t) && ring.get(121, t) && t == 9, "ring: a newer price replaces the slot");
    ring.put(121, 11);
    check(ring.get(121, t) && t == 9, "ring: the first send of a price wins");
    return failures;
}

}  // namespace bench
