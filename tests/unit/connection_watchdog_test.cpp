#include <bidding/connection_watchdog.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace bidding {
namespace {

using namespace std::chrono_literals;
using clock = connection_watchdog::clock;

struct socket_pair {
    int fd[2]{-1, -1};
    socket_pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0); }
    ~socket_pair() {
        ::close(fd[0]);
        ::close(fd[1]);
    }
};

TEST(ConnectionWatchdog, CutsABlockedReadAtItsDeadline) {
    connection_watchdog dog;
    socket_pair s;
    bool cut = false;
    const auto start = clock::now();
    char byte = 0;
    ssize_t n = 0;
    {
        watchdog_guard guard(&dog, s.fd[0], start + 200ms, &cut);
        n = ::recv(s.fd[0], &byte, 1, 0);  // nothing is ever written: blocks until the cut
    }
    const auto took = clock::now() - start;
    EXPECT_EQ(n, 0) << "the shut-down socket reads as closed";
    EXPECT_TRUE(cut);
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(dog.cuts(), 1u);
}

TEST(ConnectionWatchdog, LeavesACallThatEndsInTimeAlone) {
    connection_watchdog dog;
    socket_pair s;
    bool cut = false;
    {
        watchdog_guard guard(&dog, s.fd[0], clock::now() + 200ms, &cut);
        ASSERT_EQ(::send(s.fd[1], "x", 1, 0), 1);
        char byte = 0;
        EXPECT_EQ(::recv(s.fd[0], &byte, 1, 0), 1);
    }
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(cut);
    EXPECT_EQ(dog.cuts(), 0u);
    ASSERT_EQ(::send(s.fd[1], "y", 1, 0), 1) << "the socket is still usable";
    char byte = 0;
    EXPECT_EQ(::recv(s.fd[0], &byte, 1, 0), 1);
}

TEST(ConnectionWatchdog, EarlierDeadlinesArmedLaterStillFireFirst) {
    connection_watchdog dog;
    socket_pair late;
    socket_pair early;
    const auto a = dog.arm(late.fd[0], clock::now() + 10s);
    const auto b = dog.arm(early.fd[0], clock::now() + 100ms);
    char byte = 0;
    const auto start = clock::now();
    EXPECT_EQ(::recv(early.fd[0], &byte, 1, 0), 0);
    EXPECT_LT(clock::now() - start, 2s);
    EXPECT_TRUE(dog.disarm(b));
    EXPECT_FALSE(dog.disarm(a));
}

}  // namespace
}  // namespace bidding
