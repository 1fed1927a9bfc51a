#include <bidding/auction_closer.hpp>
#include <bidding/auction_closing.hpp>

#include <spdlog/spdlog.h>

namespace bidding {

namespace {

// More than this many auctions ending in one interval wait for the next sweep (which follows at once).
constexpr std::size_t sweep_limit = 100;

}  // namespace

auction_closer::auction_closer(const store_factory& make_store, connection_watchdog* watchdog,
                               std::chrono::milliseconds interval, std::chrono::milliseconds deadline,
                               server_clock& clock, closed_fn on_closed)
    : store_(make_store(watchdog)),
      interval_(interval),
      deadline_(deadline),
      clock_(clock),
      on_closed_(std::move(on_closed)) {}

auction_closer::~auction_closer() { stop(); }

void auction_closer::start() {
    thread_ = std::thread([this] { run(); });
}

void auction_closer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void auction_closer::sweep() {
    try {
        for (;;) {
            store_->set_deadline(auction_store::clock::now() + deadline_);
            const auto swept = close_ended_auctions(*store_, sweep_limit);
            clock_.set_offset(swept.clock_offset);
            if (failing_) {
                spdlog::info("auction closer: Postgres answers again");
                failing_ = false;
            }
            for (const auto& ended : swept.closed) {
                if (ended.result.was_open) {
                    spdlog::info("auction {} ended: final price {}, winner {}", ended.id,
                                 format_cents(ended.result.final_price), ended.result.winner.value_or("(none)"));
                    if (on_closed_) {
                        on_closed_(ended.id, ended.announcement);
                    }
                }
            }
            if (swept.closed.size() < sweep_limit) {
                return;
            }
        }
    } catch (const std::exception& e) {
        // Nothing is lost: the next sweep (any pod's) closes what this one could not.
        if (!failing_) {
            spdlog::warn("auction closer: {}; ended auctions are closed when Postgres answers", e.what());
        }
        failing_ = true;
    }
}

void auction_closer::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        sweep();
        lock.lock();
        wake_.wait_for(lock, interval_, [this] { return stopping_; });
    }
}

}  // namespace bidding
