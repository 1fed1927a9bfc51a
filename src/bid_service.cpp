#include <bidding/bid_service.hpp>

#include <spdlog/spdlog.h>

namespace bidding {

bid_service::bid_service(db_pool& db, session_registry& registry, metrics& stats, publish_fn publish,
                         std::size_t max_batch)
    : db_(db), registry_(registry), stats_(stats), publish_(std::move(publish)), max_batch_(max_batch) {}

void bid_service::submit(auction_id id, bid_request request, reply_fn reply) {
    std::vector<pending> batch;
    {
        std::lock_guard lock(mutex_);
        ++outstanding_;
        auto& l = lanes_[id];
        l.queue.push_back(pending{std::move(request), std::move(reply), std::chrono::steady_clock::now()});
        if (l.busy) {
            return;  // the transaction in flight picks it up when it finishes
        }
        l.busy = true;
        batch = take_batch(l);
    }
    dispatch(id, std::move(batch));
}

std::vector<bid_service::pending> bid_service::take_batch(lane& l) {
    std::vector<pending> batch;
    const auto n = std::min(max_batch_, l.queue.size());
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(l.queue.front()));
        l.queue.pop_front();
    }
    return batch;
}

void bid_service::dispatch(auction_id id, std::vector<pending> batch) {
    db_.post([this, id, batch = std::move(batch)](postgres_store& store) mutable {
        decide(store, id, batch);
        const auto done = batch.size();
        std::vector<pending> next;
        {
            std::lock_guard lock(mutex_);
            outstanding_ -= done;
            auto it = lanes_.find(id);
            if (it->second.queue.empty()) {
                lanes_.erase(it);
            } else {
                next = take_batch(it->second);
            }
            if (outstanding_ == 0) {
                idle_.notify_all();
            }
        }
        if (!next.empty()) {
            dispatch(id, std::move(next));
        }
    });
}

void bid_service::decide(postgres_store& store, auction_id id, std::vector<pending>& batch) {
    std::vector<bid_request> requests;
    requests.reserve(batch.size());
    for (const auto& p : batch) {
        requests.push_back(p.request);
    }
    std::optional<std::vector<bid_outcome>> outcomes;
    try {
        outcomes = store.place_bids(id, requests);
    } catch (const std::exception& e) {
        // store_unavailable, or a commit that could not be read back: nothing is acknowledged.
        spdlog::error("bids on auction {} not stored: {}", id, e.what());
        for (auto& p : batch) {
            stats_.bid_rejected(error_code::unavailable);
            p.reply(0, make_shared_text(serialize_error(
                           error_code::unavailable, "the database is unavailable; the bid was not stored", p.request.ref)));
        }
        return;
    }

    // Fan out first, in seq order, so that every sender's new_bid precedes its bid_accepted.
    const auto committed = std::chrono::steady_clock::now();
    if (outcomes) {
        std::vector<fanout_message> accepted;
        for (const auto& o : *outcomes) {
            if (o.verdict == bid_verdict::accepted) {
                accepted.push_back(
                    fanout_message{o.prev_seq, o.entry.seq, make_shared_text(serialize_new_bid(id, o.entry))});
                spdlog::info("bid accepted: auction {} seq {} price {}", id, o.entry.seq, format_cents(o.entry.price));
            }
        }
        if (!accepted.empty()) {
            const auto count = accepted.size();
            if (publish_) {
                const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
                publish_(id, accepted, now_us);
            }
            registry_.publish(id, std::move(accepted));
            const auto handed_over = std::chrono::steady_clock::now() - committed;
            for (std::size_t i = 0; i < count; ++i) {
                stats_.fanout.observe(handed_over);
            }
        }
    }

    for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& req = batch[i].request;
        std::string reply;
        seq_t accepted_seq = 0;
        if (!outcomes) {
            stats_.bid_rejected(error_code::bid_closed);
            reply = serialize_error(error_code::bid_closed, "this auction no longer exists", req.ref);
        } else {
            const auto& o = (*outcomes)[i];
            switch (o.verdict) {
            case bid_verdict::accepted:
                reply = serialize_bid_accepted(o.entry, req.ref);
                accepted_seq = o.entry.seq;
                stats_.bid_accepted();
                break;
            case bid_verdict::price_too_low:
                stats_.bid_rejected(error_code::price_too_low);
                reply = serialize_error(error_code::price_too_low, price_too_low_message(o.current_price), req.ref,
                                        o.current_price);
                spdlog::debug("bid rejected: auction {} price_too_low ({} <= {})", id, format_cents(req.price),
                              format_cents(o.current_price));
                break;
            case bid_verdict::closed:
                stats_.bid_rejected(error_code::bid_closed);
                reply = serialize_error(error_code::bid_closed, "this auction is closed", req.ref);
                spdlog::debug("bid rejected: auction {} bid_closed", id);
                break;
            }
        }
        stats_.bid_decision.observe(committed - batch[i].received);
        batch[i].reply(accepted_seq, make_shared_text(std::move(reply)));
    }
}

bool bid_service::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return outstanding_ == 0; });
}

}  // namespace bidding
