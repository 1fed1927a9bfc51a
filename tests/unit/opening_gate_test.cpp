#include <bidding/opening_gate.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace bidding {
namespace {

// Each entered connection's ticket, kept where a session would keep it.
struct connections {
    std::vector<opening_gate::ticket> held;
    std::vector<int> started;  // in the order they got a place
    std::vector<opening_gate::clock::duration> waited;

    // Every place given back, each freed place going to the next waiter, as sessions would.
    ~connections() {
        while (!held.empty()) {
            auto t = std::move(held.back());
            held.pop_back();
            t.release();
        }
    }

    opening_gate::start_fn start(int id) {
        return [this, id](opening_gate::ticket t, opening_gate::clock::duration w) {
            started.push_back(id);
            waited.push_back(w);
            held.push_back(std::move(t));
        };
    }
};

TEST(OpeningGate, LetsInAsManyAsItHasPlacesAtOnce) {
    const auto gate = std::make_shared<opening_gate>(2);
    connections c;
    gate->enter(c.start(1));
    gate->enter(c.start(2));
    gate->enter(c.start(3));
    EXPECT_EQ(c.started, (std::vector<int>{1, 2})) << "the third waits";
    EXPECT_EQ(gate->opening(), 2u);
    EXPECT_EQ(gate->waiting(), 1u);
    EXPECT_EQ(c.waited[0], opening_gate::clock::duration::zero());
}

TEST(OpeningGate, AFreedPlaceGoesToTheOldestWaiterWithHowLongItWaited) {
    const auto gate = std::make_shared<opening_gate>(1);
    connections c;
    gate->enter(c.start(1));
    gate->enter(c.start(2));
    gate->enter(c.start(3));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    c.held[0].release();
    EXPECT_EQ(c.started, (std::vector<int>{1, 2}));
    EXPECT_GE(c.waited[1], std::chrono::milliseconds(5));
    EXPECT_EQ(gate->opening(), 1u) << "the place passed on, not freed";
    EXPECT_EQ(gate->waiting(), 1u);
    c.held[1] = opening_gate::ticket();  // destroyed: released too
    EXPECT_EQ(c.started, (std::vector<int>{1, 2, 3}));
    c.held[2].release();
    EXPECT_EQ(gate->opening(), 0u);
    EXPECT_EQ(gate->waiting(), 0u);
}

TEST(OpeningGate, ANewcomerQueuesBehindTheWaitersEvenWhenAPlaceIsFree) {
    // Arrival order: a place freed while others wait is theirs, never a later arrival's.
    const auto gate = std::make_shared<opening_gate>(1);
    connections c;
    gate->enter(c.start(1));
    gate->enter(c.start(2));
    c.held[0].release();  // 2 gets it
    gate->enter(c.start(3));
    EXPECT_EQ(c.started, (std::vector<int>{1, 2}));
    EXPECT_EQ(gate->waiting(), 1u);
}

TEST(OpeningGate, ReleasingTwiceOrMovingATicketFreesItsPlaceOnce) {
    const auto gate = std::make_shared<opening_gate>(2);
    connections c;
    gate->enter(c.start(1));
    gate->enter(c.start(2));
    auto moved = std::move(c.held[0]);
    EXPECT_FALSE(c.held[0]);
    c.held[0].release();  // empty: nothing
    EXPECT_EQ(gate->opening(), 2u);
    moved.release();
    moved.release();
    EXPECT_EQ(gate->opening(), 1u);
}

TEST(OpeningGate, ZeroPlacesMeansOne) {
    const auto gate = std::make_shared<opening_gate>(0);
    EXPECT_EQ(gate->slots(), 1u);
}

TEST(OpeningGate, ManyThreadsNeverHoldMoreThanItsPlaces) {
    constexpr std::size_t places = 3;
    const auto gate = std::make_shared<opening_gate>(places);
    std::atomic<int> inside{0};
    std::atomic<int> most{0};
    std::atomic<int> done{0};
    std::mutex handed_mutex;
    std::vector<opening_gate::ticket> handed;  // tickets given to "sessions" (the threads below)
    const auto start = [&](opening_gate::ticket t, opening_gate::clock::duration) {
        const int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::lock_guard lock(handed_mutex);
        handed.push_back(std::move(t));
    };
    // A "session" finishes one handed-out set-up, if any: its release may start a waiter on this thread.
    const auto finish_one = [&] {
        opening_gate::ticket mine;
        {
            std::lock_guard lock(handed_mutex);
            if (handed.empty()) {
                return false;
            }
            mine = std::move(handed.back());
            handed.pop_back();
        }
        --inside;
        ++done;
        mine.release();
        return true;
    };
    constexpr int per_thread = 500;
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
        threads.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                gate->enter(start);
                finish_one();
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    // What is still handed out or waiting: finish it.
    while (finish_one()) {
    }
    EXPECT_EQ(done.load(), 4 * per_thread) << "every connection got a place, once";
    EXPECT_LE(most.load(), static_cast<int>(places));
    EXPECT_EQ(gate->opening(), 0u);
    EXPECT_EQ(gate->waiting(), 0u);
}

}  // namespace
}  // namespace bidding
