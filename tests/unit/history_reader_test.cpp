// history_reader over a real db_pool and an in-memory store: clients asking for the same
// snapshot while its read waits share one query; a client arriving once the read has started
// gets a read of its own (it joined the registry after that read began).
#include <bidding/db_pool.hpp>
#include <bidding/history_reader.hpp>

#include "fakes.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

namespace bidding {
namespace {

using namespace std::chrono_literals;
using testing::fake_database;
using testing::fake_store;

class snapshot_reads : public ::testing::Test {
protected:
    void load(std::size_t limit, std::optional<seq_t> since) {
        reader.load_snapshot(lot.id, limit, since, [this](history_reader::snapshot_result r) {
            std::lock_guard lock(mutex);
            results.push_back(std::move(r));
            done.notify_all();
        });
    }
    bool wait_results(std::size_t n) {
        std::unique_lock lock(mutex);
        return done.wait_for(lock, 5s, [&] { return results.size() >= n; });
    }
    void hold_the_thread() { ASSERT_TRUE(testing::hold_pool_thread(pool, release.get_future().share())); }

    std::shared_ptr<fake_database> db = std::make_shared<fake_database>();
    auction lot = db->add_auction("lamp", cents{10'000});
    db_pool pool{fake_store::factory(db), db_pool::settings{1, 64, 50ms}};
    session_registry registry;
    boost::asio::io_context timers;
    history_reader reader{pool, registry, timers, 2000ms};
    std::promise<void> release;
    std::mutex mutex;
    std::condition_variable done;
    std::vector<history_reader::snapshot_result> results;
};

TEST_F(snapshot_reads, ClientsWaitingForTheSameSnapshotShareOneRead) {
    hold_the_thread();
    for (int i = 0; i < 50; ++i) {
        load(100, std::nullopt);
    }
    load(100, seq_t{0});      // another snapshot: since=0
    load(10, std::nullopt);   // another: a smaller limit
    EXPECT_EQ(pool.queued(), 3u) << "three different snapshots, three reads";
    release.set_value();
    ASSERT_TRUE(wait_results(52));
    EXPECT_EQ(db->snapshot_calls(), 3);
    for (const auto& r : results) {
        ASSERT_TRUE(r.snapshot);
        EXPECT_EQ(r.snapshot->info.id, lot.id);
    }
}

TEST_F(snapshot_reads, AReadThatHasStartedIsNotShared) {
    db->set_fault(fake_database::fault::freeze);
    load(100, std::nullopt);
    ASSERT_TRUE(db->wait_blocked(1)) << "the first read is running";
    load(100, std::nullopt);  // after that read began: it may miss what the first one misses
    EXPECT_EQ(pool.queued(), 1u) << "a read of its own";
    db->set_fault(fake_database::fault::none);
    ASSERT_TRUE(wait_results(2));
    EXPECT_EQ(db->snapshot_calls(), 2);
    release.set_value();
}

TEST_F(snapshot_reads, EveryClientOfARefusedReadIsAnsweredUnavailable) {
    db_pool tiny{fake_store::factory(db), db_pool::settings{1, 1, 50ms}};
    history_reader small{tiny, registry, timers, 2000ms};
    std::promise<void> gate;
    ASSERT_TRUE(testing::hold_pool_thread(tiny, gate.get_future().share()));
    ASSERT_TRUE(tiny.post(db_pool::job{[](auction_store&) {}, {}, db_pool::clock::now() + 10s}));  // the queue is full
    std::atomic<int> unavailable{0};
    for (int i = 0; i < 2; ++i) {
        small.load_snapshot(lot.id, 100, std::nullopt, [&](history_reader::snapshot_result r) {
            unavailable += r.unavailable && !r.snapshot ? 1 : 0;
        });
    }
    EXPECT_EQ(unavailable.load(), 2) << "the queue was full: both answered at once, neither left waiting";
    gate.set_value();
    tiny.stop();
    release.set_value();
}

}  // namespace
}  // namespace bidding
