#include <bidding/bid_service.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace bidding {

namespace {

std::string_view refusal_text(error_code code) {
    switch (code) {
    case error_code::overloaded:
        return "the server is too busy; the bid was not stored; retry later";
    case error_code::unavailable:
        return "the database is unavailable; the bid was not stored";
    default:
        return "the bid was not stored";
    }
}

}  // namespace

bid_service::bid_service(db_pool& db, session_registry& registry, metrics& stats, limits lim, publish_fn publish,
                         commit_resolver* resolver)
    : db_(db), registry_(registry), stats_(stats), limits_(lim), publish_(std::move(publish)), resolver_(resolver) {}

void bid_service::refuse(pending& p, error_code code) {
    stats_.bid_rejected(code);
    p.reply(seq_t{}, make_shared_text(serialize_error(code, refusal_text(code), p.request.ref)));
}

void bid_service::submit(auction_id id, bid_request request, clock::time_point received, reply_fn reply) {
    pending p{std::move(request), std::move(reply), received};
    bool full = false;
    batch b;
    std::vector<pending> late;
    {
        std::lock_guard lock(mutex_);
        if (outstanding_ >= limits_.total) {
            full = true;
        } else {
            auto& l = lanes_[id];
            if (l.queue.size() >= limits_.per_auction) {
                full = true;
            } else {
                ++outstanding_;
                l.queue.push_back(std::move(p));
                if (!l.busy) {
                    l.busy = true;
                    b = take_batch(l, late);
                    if (b.empty()) {
                        lanes_.erase(id);
                    }
                }
            }
        }
    }
    if (full) {
        refuse(p, error_code::overloaded);
        return;
    }
    for (auto& q : late) {
        refuse(q, db_.healthy() ? error_code::overloaded : error_code::unavailable);
    }
    if (!b.empty()) {
        dispatch(id, std::move(b));
    }
}

bid_service::batch bid_service::take_batch(lane& l, std::vector<pending>& late) {
    // A bid with less than this left of its time would only be cut by the deadline.
    const auto min_budget = limits_.db_timeout / 20;
    const auto now = clock::now();
    batch b;
    while (!l.queue.empty() && b.size() < limits_.max_batch) {
        auto& front = l.queue.front();
        if (now + min_budget > front.received + limits_.db_timeout) {
            late.push_back(std::move(front));
            --outstanding_;
        } else {
            b.push_back(std::move(front));
        }
        l.queue.pop_front();
    }
    if (b.empty()) {
        l.busy = false;
        if (outstanding_ == 0) {
            idle_.notify_all();
        }
    }
    return b;
}

void bid_service::dispatch(auction_id id, batch b) {
    // The queue is FIFO, so the first bid is the oldest: its arrival bounds the transaction, a
    // tenth of DB_TIMEOUT early so that the reply itself is out within it.
    const auto deadline = b.front().received + limits_.db_timeout - limits_.db_timeout / 10;
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        ready_.push_back(ready_batch{id, std::move(b), deadline});
        if (rounds_ < limits_.rounds) {
            ++rounds_;
            start = true;
        }
    }
    if (start) {
        post_round();
    }
}

void bid_service::post_round() {
    auto r = std::make_shared<round>();
    const bool queued = db_.post(db_pool::job{
        [this, r](auction_store& store) {
            take_round(*r);
            run_round(store, *r);
        },
        [this, r](db_pool::refusal why) {
            abandon_round(*r, why == db_pool::refusal::unavailable || !db_.healthy() ? error_code::unavailable
                                                                                      : error_code::overloaded);
        },
        // Each batch's own deadline is checked when the round takes it.
        clock::time_point::max(),
        // The lanes' next batches, once the pool knows whether Postgres answered.
        [this, r] { end_round(*r); },
        db_pool::priority::bid});
    if (!queued) {
        // The database queue is full (or the pool is stopping): nothing was sent to Postgres.
        abandon_round(*r, db_.healthy() ? error_code::overloaded : error_code::unavailable);
    }
}

void bid_service::abandon_round(round& r, error_code code) {
    take_round(r);
    refuse_round(r, code);
    end_round(r);
}

void bid_service::take_round(round& r) {
    round late;
    {
        std::lock_guard lock(mutex_);
        const auto now = clock::now();
        std::size_t bids = 0;
        while (!ready_.empty() && r.size() < limits_.round_auctions && bids < limits_.max_batch * 8) {
            auto& next = ready_.front();
            if (now >= next.deadline) {
                late.push_back(std::move(next));  // waited too long for its turn
            } else {
                bids += next.bids.size();
                r.push_back(std::move(next));
            }
            ready_.pop_front();
        }
    }
    if (!late.empty()) {
        refuse_round(late, db_.healthy() ? error_code::overloaded : error_code::unavailable);
        for (auto& b : late) {
            finished(b.id, b.bids.size());
        }
    }
}

void bid_service::refuse_round(round& r, error_code code) {
    for (auto& b : r) {
        for (auto& p : b.bids) {
            refuse(p, code);
        }
    }
}

void bid_service::end_round(round& r) {
    for (auto& b : r) {
        finished(b.id, b.bids.size());
    }
    bool again = false;
    {
        std::lock_guard lock(mutex_);
        --rounds_;
        if (!ready_.empty() && rounds_ < limits_.rounds) {
            ++rounds_;
            again = true;
        }
    }
    if (again) {
        post_round();
    }
}

void bid_service::run_round(auction_store& store, round& r) {
    if (r.empty()) {
        return;  // an earlier round took what was waiting
    }
    auto deadline = clock::time_point::max();
    auto resolve_until = clock::time_point::max();
    std::vector<std::vector<bid_request>> requests(r.size());
    std::vector<auction_bids> groups;
    groups.reserve(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
        deadline = std::min(deadline, r[i].deadline);
        // Keeps a little of the reply deadline for the reply itself.
        resolve_until =
            std::min(resolve_until, r[i].bids.front().received + limits_.reply_timeout - limits_.reply_timeout / 20);
        requests[i].reserve(r[i].bids.size());
        for (const auto& p : r[i].bids) {
            requests[i].push_back(p.request);
        }
        groups.push_back(auction_bids{r[i].id, requests[i]});
    }
    store.set_deadline(deadline);
    std::vector<placement> results;
    try {
        results = store.place_bids_many(groups, resolve_until);
    } catch (const store_unavailable& e) {
        results.assign(r.size(), placement::unavailable_because(e.what()));
    }
    std::size_t unavailable = 0;
    std::size_t not_stored = 0;
    std::string why;
    for (std::size_t i = 0; i < r.size(); ++i) {
        if (results[i].outcome == placement::result::unavailable) {
            ++unavailable;
            not_stored += r[i].bids.size();
            why = results[i].failure;
        }
    }
    if (unavailable != 0) {
        // Known not to be stored: the transaction failed before COMMIT, or the server said it
        // did not commit. One line for the round.
        spdlog::warn("{} bid(s) on {} auction(s) not stored: {}", not_stored, unavailable, why);
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
        answer(r[i].id, r[i].bids, std::move(results[i]));
    }
}

void bid_service::finished(auction_id id, std::size_t done) {
    batch next;
    std::vector<pending> late;
    {
        std::lock_guard lock(mutex_);
        outstanding_ -= done;
        auto it = lanes_.find(id);
        next = take_batch(it->second, late);
        if (next.empty()) {
            lanes_.erase(it);
        }
        if (outstanding_ == 0) {
            idle_.notify_all();
        }
    }
    for (auto& q : late) {
        refuse(q, db_.healthy() ? error_code::overloaded : error_code::unavailable);
    }
    if (!next.empty()) {
        dispatch(id, std::move(next));
    }
}

void bid_service::answer(auction_id id, batch& b, placement result) {
    if (result.outcome == placement::result::unavailable) {
        for (auto& p : b) {
            refuse(p, error_code::unavailable);
        }
        return;
    }
    const auto decided = clock::now();
    const bool in_doubt = result.outcome == placement::result::in_doubt;
    if (result.outcome != placement::result::not_found) {
        std::vector<fanout_message> accepted;
        for (const auto& o : result.bids) {
            if (o.verdict == bid_verdict::accepted) {
                accepted.push_back(
                    fanout_message{o.prev_seq, o.entry.seq, make_shared_text(serialize_new_bid(id, o.entry))});
            }
        }
        if (in_doubt) {
            spdlog::warn("{} bid(s) on auction {} in doubt (transaction {}): answered in_doubt", accepted.size(), id,
                         result.txid);
            if (resolver_ != nullptr) {
                resolver_->add(id, result.txid, std::move(accepted));
            }
        } else if (!accepted.empty()) {
            fan_out(id, std::move(accepted));
        }
    }

    // Fanned out first, in seq order, so that every sender's new_bid precedes its bid_accepted.
    for (std::size_t i = 0; i < b.size(); ++i) {
        const auto& req = b[i].request;
        std::string reply;
        seq_t accepted_seq{0};
        if (result.outcome == placement::result::not_found) {
            stats_.bid_rejected(error_code::bid_closed);
            reply = serialize_error(error_code::bid_closed, "this auction no longer exists", req.ref);
        } else {
            const auto& o = result.bids[i];
            switch (o.verdict) {
            case bid_verdict::accepted:
                if (in_doubt) {
                    stats_.bid_rejected(error_code::in_doubt);
                    reply = serialize_error(error_code::in_doubt,
                                            "the outcome is not known yet; the bid may have been stored; it will "
                                            "appear in the feed if it was",
                                            req.ref);
                } else {
                    reply = serialize_bid_accepted(o.entry, req.ref);
                    accepted_seq = o.entry.seq;
                    stats_.bid_accepted();
                }
                break;
            case bid_verdict::price_too_low:
                stats_.bid_rejected(error_code::price_too_low);
                reply = serialize_error(error_code::price_too_low, price_too_low_message(o.current_price, o.min_price), req.ref,
                                        o.current_price, o.min_price);
                break;
            case bid_verdict::closed:
                stats_.bid_rejected(error_code::bid_closed);
                reply = serialize_error(error_code::bid_closed, "this auction is closed", req.ref);
                break;
            }
        }
        stats_.bid_decision.observe(decided - b[i].received);
        b[i].reply(accepted_seq, make_shared_text(std::move(reply)));
    }
}

void bid_service::fan_out(auction_id id, std::vector<fanout_message> accepted) {
    if (accepted.empty()) {
        return;
    }
    const auto handing = clock::now();
    const auto count = accepted.size();
    if (publish_) {
        const auto now_us =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        publish_(id, accepted, now_us);
    }
    registry_.publish(id, std::move(accepted));
    const auto handed_over = clock::now() - handing;
    for (std::size_t i = 0; i < count; ++i) {
        stats_.fanout.observe(handed_over);
    }
}

bool bid_service::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return outstanding_ == 0; });
}

}  // namespace bidding
