// db_pool's order of work: bid jobs before waiting reads (a burst of new connections' snapshot
// reads must not delay every bid on the pod), without starving the reads.
#include <bidding/db_pool.hpp>

#include "fakes.hpp"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace bidding {
namespace {

using namespace std::chrono_literals;
using testing::fake_database;
using testing::fake_store;

class one_thread_pool : public ::testing::Test {
protected:
    void hold_the_thread() { ASSERT_TRUE(testing::hold_pool_thread(pool, release.get_future().share())); }

    void post(db_pool::priority kind, std::string name) {
        ASSERT_TRUE(pool.post(db_pool::job{[this, name](auction_store&) {
                                               std::lock_guard lock(mutex);
                                               order.push_back(name);
                                           },
                                           {}, db_pool::clock::now() + 10s, {}, kind}));
    }

    std::vector<std::string> run_all() {
        release.set_value();
        pool.stop();
        return order;
    }

    std::shared_ptr<fake_database> db = std::make_shared<fake_database>();
    db_pool pool{fake_store::factory(db), db_pool::settings{1, 64, 50ms}};
    std::promise<void> release;
    std::mutex mutex;
    std::vector<std::string> order;
};

TEST_F(one_thread_pool, BidJobsStartBeforeWaitingReads) {
    hold_the_thread();
    post(db_pool::priority::read, "snapshot 1");
    post(db_pool::priority::read, "snapshot 2");
    post(db_pool::priority::bid, "bids of auction 1");
    post(db_pool::priority::read, "snapshot 3");
    post(db_pool::priority::bid, "bids of auction 2");
    EXPECT_EQ(pool.queued(), 5u);
    EXPECT_EQ(run_all(), (std::vector<std::string>{"bids of auction 1", "bids of auction 2", "snapshot 1",
                                                   "snapshot 2", "snapshot 3"}));
}

TEST_F(one_thread_pool, AReadStartsAfterEveryEighthBidJob) {
    hold_the_thread();
    post(db_pool::priority::read, "read");
    for (int i = 0; i < 10; ++i) {
        post(db_pool::priority::bid, "bid " + std::to_string(i));
    }
    const auto got = run_all();
    ASSERT_EQ(got.size(), 11u);
    EXPECT_EQ(got[db_pool::bids_per_read], "read") << "after " << db_pool::bids_per_read << " bid jobs";
    EXPECT_EQ(got.front(), "bid 0");
    EXPECT_EQ(got.back(), "bid 9");
}

TEST_F(one_thread_pool, EachPriorityHasItsOwnQueueLimit) {
    db_pool small{fake_store::factory(db), db_pool::settings{1, 2, 50ms}};
    std::promise<void> gate;
    ASSERT_TRUE(testing::hold_pool_thread(small, gate.get_future().share()));
    const auto job_of = [](db_pool::priority kind) {
        return db_pool::job{[](auction_store&) {}, {}, db_pool::clock::now() + 10s, {}, kind};
    };
    EXPECT_TRUE(small.post(job_of(db_pool::priority::read)));
    EXPECT_TRUE(small.post(job_of(db_pool::priority::read)));
    EXPECT_FALSE(small.post(job_of(db_pool::priority::read))) << "reads are full";
    EXPECT_TRUE(small.post(job_of(db_pool::priority::bid))) << "a burst of reads leaves room for bids";
    EXPECT_TRUE(small.post(job_of(db_pool::priority::bid)));
    EXPECT_FALSE(small.post(job_of(db_pool::priority::bid)));
    gate.set_value();
    small.stop();
    release.set_value();
}

}  // namespace
}  // namespace bidding
