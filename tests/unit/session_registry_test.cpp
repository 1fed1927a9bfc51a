// The registry between the bid path, the bus and the sessions: delivery in seq order, exactly
// once, to every subscriber, and what it does when the bus loses a message (reads the store).
#include "fakes.hpp"
#include "test_values.hpp"

#include <bidding/session_registry.hpp>

#include <gtest/gtest.h>

#include <set>

using namespace bidding;
using namespace bidding::testing;
using namespace std::chrono_literals;

namespace {

feed_event event(seq_t prev, seq_t seq) {
    return feed_event{prev, seq, make_shared_text("{\"seq\":" + to_string(seq) + "}")};
}
feed_event event(std::int64_t prev, std::int64_t seq) { return event(seq_t{prev}, seq_t{seq}); }

// Accepted bids as a pod's bid path makes them: decided by the store, in order.
std::vector<feed_event> place(fake_store& store, auction_id id, std::initializer_list<std::int64_t> prices) {
    std::vector<bid_request> bids;
    for (const auto p : prices) {
        bids.push_back(bid_request{"ann", cents{p}, std::nullopt});
    }
    const auto result = store.place_bids(id, bids);
    std::vector<feed_event> events;
    for (const auto& o : result.bids) {
        if (o.verdict == bid_verdict::accepted) {
            events.push_back(event(o.prev_seq, o.entry.seq));
        }
    }
    return events;
}

// A second pod: its registry learns of bids only through a bus that may lose messages, and
// reads what it missed from the store.
struct remote_pod {
    explicit remote_pod(std::shared_ptr<fake_database> db) : store(std::move(db)) {
        session_registry::hooks h;
        h.read_after = [this](auction_id id, seq_t after, std::size_t limit) {
            ++reads;
            if (fail_reads > 0) {
                --fail_reads;
                registry.fill_failed(id);
                return;
            }
            const auto rows = store.history_after(id, after, limit);
            std::vector<feed_event> events;
            seq_t prev = after;
            for (const auto& r : rows) {
                events.push_back(event(prev, r.seq));
                prev = r.seq;
            }
            registry.fill_done(id, events, rows.size() < limit);
        };
        registry.set_hooks(std::move(h));
    }
    // The bus: delivers each message unless it is one to lose.
    void receive(auction_id id, const std::vector<feed_event>& events) {
        for (const auto& e : events) {
            if (lose.count(e.seq) == 0) {
                registry.publish(id, {e});
            }
        }
    }

    fake_store store;
    session_registry registry;
    std::set<seq_t> lose;
    int reads{0};
    int fail_reads{0};
};

// One auction in a shared store, bid on through `local`; `remote`'s registry, with one
// subscriber whose delivery has started, hears of the bids only through the lossy bus.
struct two_pods {
    std::shared_ptr<fake_database> db = std::make_shared<fake_database>();
    auction lot = db->add_auction("lamp", cents{100});
    fake_store local{db};
    remote_pod remote{db};
    std::shared_ptr<recording_subscriber> sub = subscribed(remote, lot.id);

    static std::shared_ptr<recording_subscriber> subscribed(remote_pod& pod, auction_id id) {
        auto s = std::make_shared<recording_subscriber>();
        pod.registry.join(id, s);
        pod.registry.baseline(id, seq_t{0});
        return s;
    }
};

}  // namespace

TEST(SessionRegistry, DeliversInSeqOrderExactlyOnceToEverySubscriber) {
    session_registry registry;
    auto a = std::make_shared<recording_subscriber>();
    auto b = std::make_shared<recording_subscriber>();
    registry.join(auction_id{7}, a);
    registry.join(auction_id{7}, b);
    registry.baseline(auction_id{7}, seq_t{0});
    registry.publish(auction_id{7}, {event(0, 1)});
    registry.publish(auction_id{7}, {event(2, 3)});  // early: held until 2 arrives
    registry.publish(auction_id{7}, {event(1, 2)});
    registry.publish(auction_id{7}, {event(1, 2), event(0, 1)});  // duplicates (Redis and the local path)
    EXPECT_EQ(a->seqs(), seq_list({1, 2, 3}));
    EXPECT_EQ(b->seqs(), seq_list({1, 2, 3}));
    // Another auction's bids do not reach them.
    registry.publish(auction_id{8}, {event(0, 4)});
    EXPECT_EQ(a->seqs().size(), 3u);
}

TEST(SessionRegistry, AMessageTheBusLostIsReadFromTheStoreAndDeliveredInOrder) {
    two_pods pods;
    auto& [db, lot, local, remote, sub] = pods;

    const int reads_at_start = remote.reads;  // a feed always checks the store when delivery starts
    const auto events = place(local, lot.id, {200, 300, 400});
    ASSERT_EQ(events.size(), 3u);
    remote.lose = {events[1].seq};
    remote.receive(lot.id, events);

    EXPECT_EQ(sub->seqs(), (std::vector<seq_t>{events[0].seq, events[1].seq, events[2].seq}));
    EXPECT_EQ(remote.reads, reads_at_start + 1);
}

TEST(SessionRegistry, ALostLastMessageIsFoundWhenTheBusReconnects) {
    two_pods pods;
    auto& [db, lot, local, remote, sub] = pods;

    const auto events = place(local, lot.id, {200, 300});
    remote.lose = {events[1].seq};
    remote.receive(lot.id, events);
    // Nothing after it reveals the gap...
    EXPECT_EQ(sub->seqs(), std::vector<seq_t>{events[0].seq});
    // ...until the subscription is back in effect and the registry re-reads every auction.
    remote.registry.resync_all();
    EXPECT_EQ(sub->seqs(), (std::vector<seq_t>{events[0].seq, events[1].seq}));
}

TEST(SessionRegistry, AFailedReadIsAskedForAgainAndNothingIsDeliveredTwice) {
    two_pods pods;
    auto& [db, lot, local, remote, sub] = pods;

    const int reads_at_start = remote.reads;
    const auto first = place(local, lot.id, {200, 300, 400});
    remote.fail_reads = 1;  // the store is away for the first read
    remote.receive(lot.id, {first[1]});  // the bus lost the first
    EXPECT_TRUE(sub->seqs().empty());  // held behind the gap, not delivered out of order
    remote.registry.resync(lot.id);    // the pod's retry
    EXPECT_EQ(remote.reads, reads_at_start + 2);
    EXPECT_EQ(sub->seqs(), (std::vector<seq_t>{first[0].seq, first[1].seq, first[2].seq}));

    // Later messages, and late copies of the ones read back, are delivered once.
    const auto second = place(local, lot.id, {500});
    remote.lose.clear();
    remote.receive(lot.id, first);
    remote.receive(lot.id, second);
    EXPECT_EQ(sub->seqs(), (std::vector<seq_t>{first[0].seq, first[1].seq, first[2].seq, second[0].seq}));
}

TEST(SessionRegistry, SubscribesWithTheFirstSessionAndUnsubscribesAfterTheLast) {
    session_registry registry;
    std::vector<std::string> calls;
    session_registry::hooks h;
    h.first_joined = [&](auction_id id) { calls.push_back("subscribe " + to_string(id)); };
    h.last_left = [&](auction_id id) { calls.push_back("unsubscribe " + to_string(id)); };
    registry.set_hooks(std::move(h));
    auto a = std::make_shared<recording_subscriber>();
    auto b = std::make_shared<recording_subscriber>();
    registry.join(auction_id{3}, a);
    registry.join(auction_id{3}, b);
    EXPECT_EQ(registry.size(), 2u);
    registry.leave(auction_id{3}, a.get());
    EXPECT_EQ(calls, std::vector<std::string>{"subscribe 3"});
    registry.leave(auction_id{3}, b.get());
    registry.leave(auction_id{3}, b.get());  // twice is harmless
    EXPECT_EQ(calls, (std::vector<std::string>{"subscribe 3", "unsubscribe 3"}));
    EXPECT_EQ(registry.size(), 0u);
    EXPECT_TRUE(registry.auctions().empty());
}

TEST(SessionRegistry, CloseReachesTheAuctionsSubscribersAndShutdownReachesAll) {
    session_registry registry;
    auto a = std::make_shared<recording_subscriber>();
    auto b = std::make_shared<recording_subscriber>();
    registry.join(auction_id{1}, a);
    registry.join(auction_id{2}, b);
    registry.close_auction(auction_id{1}, make_shared_text("closed 1"));
    EXPECT_EQ(a->last_words(), std::vector<std::string>{"closed 1"});
    EXPECT_TRUE(b->last_words().empty());
    registry.shutdown_all(make_shared_text("bye"));
    EXPECT_EQ(a->last_words(), (std::vector<std::string>{"closed 1", "bye"}));
    EXPECT_EQ(b->last_words(), std::vector<std::string>{"bye"});
}

TEST(SessionRegistry, ASubscriberAlreadyGoneIsSkipped) {
    session_registry registry;
    auto a = std::make_shared<recording_subscriber>();
    auto gone = std::make_shared<recording_subscriber>();
    registry.join(auction_id{1}, a);
    registry.join(auction_id{1}, gone);
    registry.baseline(auction_id{1}, seq_t{0});
    gone.reset();  // destroyed before it could leave
    registry.publish(auction_id{1}, {event(0, 1)});
    registry.close_auction(auction_id{1}, make_shared_text("closed"));
    EXPECT_EQ(a->seqs(), seq_list({1}));
}

TEST(SessionRegistry, AHoldFromAnotherPodRefusesBidsUntilItEnds) {
    session_registry registry;
    auto a = std::make_shared<recording_subscriber>();
    const auto load = registry.join(auction_id{1}, a);
    const auto now = fanout_load::clock::now();
    EXPECT_FALSE(load->refuse_bids(now));
    registry.hold(auction_id{1}, now + 300ms);
    EXPECT_TRUE(load->refuse_bids(now + 100ms));
    EXPECT_FALSE(load->refuse_bids(now + 400ms));
}
