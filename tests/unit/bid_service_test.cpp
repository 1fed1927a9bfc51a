// The bid path above the store: lanes, batches, bounds, deadlines and the answers a bidder gets
// when the database freezes, vanishes or loses the outcome of a COMMIT. Real db_pool and
// commit_resolver threads over the in-memory store.
#include "fakes.hpp"

#include <bidding/bid_service.hpp>
#include <bidding/commit_resolver.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/metrics.hpp>
#include <bidding/session_registry.hpp>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>

using namespace bidding;
using namespace bidding::testing;
using namespace std::chrono_literals;

namespace {

bid_request bid(std::string name, std::int64_t price_cents) {
    return bid_request{std::move(name), cents{price_cents}, std::nullopt};
}

// True once `condition` holds, within `timeout`: for state a pool thread updates after a reply.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

// The replies of a test's bids, by the order they were submitted.
class replies {
public:
    bid_service::reply_fn slot(std::size_t index) {
        return [this, index](seq_t accepted, shared_text text) {
            std::lock_guard lock(mutex_);
            got_.push_back(reply{index, accepted, *text, std::chrono::steady_clock::now()});
            changed_.notify_all();
        };
    }
    bool wait(std::size_t n, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
    }
    // The code (or type) of each bid's reply; "" when it has none; "twice" when it has two.
    std::vector<std::string> codes(std::size_t n) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out(n);
        for (const auto& r : got_) {
            out.at(r.index) = out.at(r.index).empty() ? json_type_or_code(r.text) : "twice";
        }
        return out;
    }
    seq_t accepted_seq(std::size_t index) { return find(index).accepted; }
    std::string text(std::size_t index) { return find(index).text; }
    std::chrono::steady_clock::time_point at(std::size_t index) { return find(index).at; }

private:
    struct reply {
        std::size_t index;
        seq_t accepted;
        std::string text;
        std::chrono::steady_clock::time_point at;
    };
    // The first reply of the bid, or one that says there was none (seq -1).
    reply find(std::size_t index) {
        std::lock_guard lock(mutex_);
        for (const auto& r : got_) {
            if (r.index == index) {
                return r;
            }
        }
        return reply{index, seq_t{-1}, {}, {}};
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<reply> got_;
};

// One pod's bid path: the service over a pool of two store threads, the registry with one
// subscriber on the auction, the bus as a recording function, and the resolver of doubts.
struct pod {
    explicit pod(bid_service::limits lim = {8, 64, 128, 300ms, 1000ms}) {
        subscriber = std::make_shared<recording_subscriber>();
        registry.join(lot.id, subscriber);
        registry.baseline(lot.id, seq_t{0});
        resolver = std::make_unique<commit_resolver>(
            std::make_unique<fake_store>(db), commit_resolver::settings{.interval = 10ms, .query_timeout = 200ms},
            [this](auction_id id, std::vector<fanout_message> accepted) { service->fan_out(id, std::move(accepted)); });
        service = std::make_unique<bid_service>(
            pool, registry, stats, lim,
            [this](auction_id id, const std::vector<fanout_message>& accepted, std::int64_t) {
                std::lock_guard lock(bus_mutex);
                for (const auto& m : accepted) {
                    published.emplace_back(id, m.seq);
                }
            },
            resolver.get());
    }
    ~pod() {
        pool.stop();
        resolver->stop();
    }
    void submit(auction_id id, bid_request request, std::size_t index) {
        service->submit(id, std::move(request), std::chrono::steady_clock::now(), answers.slot(index));
    }
    std::vector<std::pair<auction_id, seq_t>> bus() {
        std::lock_guard lock(bus_mutex);
        return published;
    }

    std::shared_ptr<fake_database> db = std::make_shared<fake_database>();
    auction lot = db->add_auction("lamp", cents{10'000});
    metrics stats;
    session_registry registry;
    db_pool pool{fake_store::factory(db), db_pool::settings{2, 64, 50ms}};
    std::shared_ptr<recording_subscriber> subscriber;
    std::unique_ptr<commit_resolver> resolver;
    std::unique_ptr<bid_service> service;
    replies answers;
    std::mutex bus_mutex;
    std::vector<std::pair<auction_id, seq_t>> published;
};

}  // namespace

TEST(BidService, DecidesEachBidAgainstThePriceLeftByTheOneBefore) {
    pod p;
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    p.submit(p.lot.id, bid("bob", 10'050), 1);
    p.submit(p.lot.id, bid("cat", 10'200), 2);
    ASSERT_TRUE(p.answers.wait(3));
    EXPECT_EQ(p.answers.codes(3), (std::vector<std::string>{"bid_accepted", "price_too_low", "bid_accepted"}));
    const auto low = nlohmann::json::parse(p.answers.text(1));
    EXPECT_EQ(low["current_price"], "101.00");

    const auto rows = p.db->history(p.lot.id);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(p.answers.accepted_seq(0), rows[0].seq);
    EXPECT_EQ(p.answers.accepted_seq(2), rows[1].seq);
    EXPECT_EQ(p.answers.accepted_seq(1), seq_t{0});
    // This pod's clients got both, in order, and the other pods were told.
    ASSERT_TRUE(p.subscriber->wait_for_seqs(2));
    EXPECT_EQ(p.subscriber->seqs(), (std::vector<seq_t>{rows[0].seq, rows[1].seq}));
    EXPECT_EQ(p.bus(), (std::vector<std::pair<auction_id, seq_t>>{{p.lot.id, rows[0].seq},
                                                                   {p.lot.id, rows[1].seq}}));
    EXPECT_TRUE(p.service->wait_idle(1s));
}

TEST(BidService, TheSendersNewBidReachesTheFeedBeforeItsAcceptance) {
    pod p;
    std::vector<seq_t> seen_at_reply;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    p.service->submit(p.lot.id, bid("ann", 10'100), std::chrono::steady_clock::now(),
                      [&](seq_t accepted, shared_text) {
                          std::lock_guard lock(m);
                          seen_at_reply = p.subscriber->seqs();
                          seen_at_reply.push_back(accepted);
                          done = true;
                          cv.notify_all();
                      });
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return done; }));
    ASSERT_EQ(seen_at_reply.size(), 2u);
    EXPECT_EQ(seen_at_reply[0], seen_at_reply[1]);
}

TEST(BidService, QueuedBidsAreDecidedTogetherInOneTransaction) {
    pod p;
    p.db->set_fault(fake_database::fault::freeze);
    // The first bid's transaction blocks; the next ones queue in the lane meanwhile.
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    ASSERT_TRUE(p.db->wait_blocked(1));
    for (std::size_t i = 1; i < 5; ++i) {
        p.submit(p.lot.id, bid("ann", 10'100 + static_cast<std::int64_t>(i)), i);
    }
    p.db->set_fault(fake_database::fault::none);
    ASSERT_TRUE(p.answers.wait(5));
    for (const auto& code : p.answers.codes(5)) {
        EXPECT_EQ(code, "bid_accepted");
    }
    EXPECT_EQ(p.db->largest_batch(), 4u);
    EXPECT_EQ(p.db->place_calls(), 2);
}

// While a round is in the store, the batches of other auctions wait for the next one, which
// takes them all (at most round_auctions) into one transaction.
TEST(BidService, WaitingAuctionsShareTheNextRound) {
    pod p(bid_service::limits{8, 64, 128, 300ms, 1000ms, 1, 3});
    std::vector<auction> lots;
    for (int i = 0; i < 5; ++i) {
        lots.push_back(p.db->add_auction("lot " + std::to_string(i), cents{500}));
    }
    p.db->set_fault(fake_database::fault::freeze);
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    ASSERT_TRUE(p.db->wait_blocked(1));
    for (std::size_t i = 0; i < lots.size(); ++i) {
        p.submit(lots[i].id, bid("bob", 600), i + 1);
    }
    // One round slot, and it is taken: nothing else reaches the store meanwhile.
    EXPECT_EQ(p.db->round_calls(), 1);
    p.db->set_fault(fake_database::fault::none);
    ASSERT_TRUE(p.answers.wait(6));
    for (const auto& code : p.answers.codes(6)) {
        EXPECT_EQ(code, "bid_accepted");
    }
    for (const auto& lot : lots) {
        EXPECT_EQ(p.db->history(lot.id).size(), 1u);
    }
    // The first round, then 5 waiting auctions in rounds of at most 3.
    EXPECT_EQ(p.db->round_calls(), 3);
    EXPECT_EQ(p.db->largest_round(), 3u);
    EXPECT_TRUE(p.service->wait_idle(1s));
}

TEST(BidService, AFullLaneAnswersOverloadedAtOnceAndStoresNothingOfIt) {
    pod p(bid_service::limits{2, 64, 128, 300ms, 1000ms});
    p.db->set_fault(fake_database::fault::freeze);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < 5; ++i) {
        p.submit(p.lot.id, bid("ann", 10'100 + static_cast<std::int64_t>(i)), i);
    }
    // One in the store, two waiting in the lane: the fourth and fifth are refused at once.
    ASSERT_TRUE(p.answers.wait(2, 100ms));
    auto codes = p.answers.codes(5);
    EXPECT_EQ(codes[3], "overloaded");
    EXPECT_EQ(codes[4], "overloaded");
    // The frozen store: the rest are answered within the reply deadline, as not stored.
    ASSERT_TRUE(p.answers.wait(5, 2s));
    codes = p.answers.codes(5);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(codes[i], "unavailable") << i;
        EXPECT_LT(p.answers.at(i) - start, 1000ms) << i;
    }
    EXPECT_TRUE(p.db->history(p.lot.id).empty());
    EXPECT_TRUE(p.bus().empty());
}

TEST(BidService, ThePodsTotalBoundCoversEveryAuction) {
    pod p(bid_service::limits{8, 3, 128, 300ms, 1000ms});
    const auto other = p.db->add_auction("chair", cents{500});
    p.db->set_fault(fake_database::fault::freeze);
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    p.submit(p.lot.id, bid("ann", 10'200), 1);
    p.submit(other.id, bid("bob", 600), 2);
    p.submit(other.id, bid("bob", 700), 3);  // the fourth undecided bid of the pod
    ASSERT_TRUE(p.answers.wait(1, 100ms));
    EXPECT_EQ(p.answers.codes(4)[3], "overloaded");
    p.db->set_fault(fake_database::fault::none);
    ASSERT_TRUE(p.answers.wait(4));
    EXPECT_TRUE(p.service->wait_idle(1s));
}

TEST(BidService, AVanishedDatabaseIsRefusedFastUntilAProbeFindsItBack) {
    pod p;
    p.db->set_fault(fake_database::fault::unreachable);
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    ASSERT_TRUE(p.answers.wait(1));
    EXPECT_EQ(p.answers.codes(1)[0], "unavailable");
    EXPECT_TRUE(eventually([&] { return !p.pool.healthy(); }, 1s)) << "counted once the job returned";

    // Known away: refused without waiting for a connection attempt.
    const auto before = p.db->place_calls();
    p.submit(p.lot.id, bid("ann", 10'200), 1);
    ASSERT_TRUE(p.answers.wait(2));
    EXPECT_EQ(p.answers.codes(2)[1], "unavailable");
    EXPECT_EQ(p.db->place_calls(), before);

    // Back: after the probe interval one bid finds out, and is decided.
    p.db->set_fault(fake_database::fault::none);
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    std::size_t n = 2;
    while (p.answers.codes(n).back() != "bid_accepted" && std::chrono::steady_clock::now() < deadline) {
        p.submit(p.lot.id, bid("ann", 10'300 + static_cast<std::int64_t>(n)), n);
        ASSERT_TRUE(p.answers.wait(n + 1));
        ++n;
    }
    EXPECT_EQ(p.answers.codes(n).back(), "bid_accepted");
    // The pool marks the database healthy once the job that found it back has returned.
    EXPECT_TRUE(eventually([&] { return p.pool.healthy(); }, 1s));
}

TEST(BidService, ACommitInDoubtIsAnsweredInDoubtAndPublishedOnceFoundCommitted) {
    pod p;
    p.db->set_fault(fake_database::fault::in_doubt);
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    ASSERT_TRUE(p.answers.wait(1));
    EXPECT_EQ(p.answers.codes(1)[0], "in_doubt");
    EXPECT_EQ(p.answers.accepted_seq(0), seq_t{0});
    // Not announced while its outcome is unknown.
    EXPECT_TRUE(p.subscriber->seqs().empty());
    EXPECT_TRUE(p.bus().empty());

    p.db->set_fault(fake_database::fault::none);
    const auto rows = p.db->history(p.lot.id);
    ASSERT_EQ(rows.size(), 1u);
    p.db->resolve(1000, commit_status::committed);
    ASSERT_TRUE(p.subscriber->wait_for_seqs(1));
    EXPECT_EQ(p.subscriber->seqs(), std::vector<seq_t>{rows[0].seq});
    EXPECT_EQ(p.bus(), (std::vector<std::pair<auction_id, seq_t>>{{p.lot.id, rows[0].seq}}));
}

TEST(BidService, ACommitInDoubtFoundAbortedIsNeverAnnounced) {
    pod p;
    p.db->set_fault(fake_database::fault::lost_commit);
    p.submit(p.lot.id, bid("ann", 10'100), 0);
    ASSERT_TRUE(p.answers.wait(1));
    EXPECT_EQ(p.answers.codes(1)[0], "in_doubt");
    p.db->set_fault(fake_database::fault::none);
    p.db->resolve(1000, commit_status::aborted);
    // A later bid is decided normally and is the only one announced.
    p.submit(p.lot.id, bid("bob", 10'200), 1);
    ASSERT_TRUE(p.answers.wait(2));
    EXPECT_EQ(p.answers.codes(2)[1], "bid_accepted");
    ASSERT_TRUE(p.subscriber->wait_for_seqs(1));
    p.resolver->stop();  // it has asked by now or never will: nothing more may arrive
    EXPECT_EQ(p.subscriber->seqs(), std::vector<seq_t>{p.answers.accepted_seq(1)});
    EXPECT_EQ(p.db->history(p.lot.id).size(), 1u);
}

TEST(BidService, BidsOnClosedOrUnknownAuctionsAreAnsweredBidClosed) {
    pod p;
    const auto closed = p.db->add_auction("sold", cents{100}, auction_status::closed);
    p.submit(closed.id, bid("ann", 200), 0);
    p.submit(auction_id{999}, bid("ann", 200), 1);
    ASSERT_TRUE(p.answers.wait(2));
    EXPECT_EQ(p.answers.codes(2), (std::vector<std::string>{"bid_closed", "bid_closed"}));
}

TEST(BidService, ABidThatWaitedPastItsTimeIsRefusedWithoutReachingTheStore) {
    pod p;
    const auto before = p.db->place_calls();
    // Arrived long ago (as after a stall of this pod): no time is left to decide it.
    p.service->submit(p.lot.id, bid("ann", 10'100), std::chrono::steady_clock::now() - 10s, p.answers.slot(0));
    ASSERT_TRUE(p.answers.wait(1));
    EXPECT_EQ(p.answers.codes(1)[0], "overloaded");
    EXPECT_EQ(p.db->place_calls(), before);
    EXPECT_TRUE(p.db->history(p.lot.id).empty());
}
