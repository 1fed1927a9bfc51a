#include <bidding/bid_service.hpp>
#include <bidding/close_listener.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/listener.hpp>
#include <bidding/protocol.hpp>
#include <bidding/server.hpp>
#include <bidding/session_registry.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <thread>

namespace bidding {

namespace net = boost::asio;

namespace {

// Tens of thousands of sockets need more than the usual soft limit of 1024 descriptors.
void raise_open_file_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            spdlog::warn("could not raise the open file limit");
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        spdlog::debug("open file limit: {}", lim.rlim_cur);
    }
}

}  // namespace

int run_server(const config& cfg) {
    raise_open_file_limit();
    const auto threads = cfg.threads != 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

    // Fail fast and clearly when the database is unreachable at start.
    {
        postgres_store probe(cfg.database_conninfo);
        probe.connect();
    }

    // Declared before the io_context so that they outlive the handlers it destroys last.
    session_registry registry;
    db_pool db(cfg.database_conninfo, cfg.db_pool_size);
    bid_service bids(db, registry);
    auto ctx = std::make_shared<server_context>(cfg, registry, bids, db);
    close_listener closes(cfg.database_conninfo, registry);
    net::io_context ioc(static_cast<int>(threads));

    auto acceptor = std::make_shared<listener>(ioc, net::ip::tcp::endpoint(net::ip::address_v6::any(), cfg.port), ctx);
    acceptor->run();
    closes.start();
    spdlog::info("{} {} ({}) listening on port {}, database {}, {} threads", cfg.app_name, cfg.app_version,
                 to_string(cfg.env), acceptor->port(), cfg.database_display, threads);
    if (cfg.redis) {
        spdlog::warn("REDIS_URL is set but this build fans out in-process only (single pod)");
    }

    net::signal_set signals(ioc, SIGINT, SIGTERM);
    std::thread drainer;
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        spdlog::info("signal {} received: draining {} connections", signo, registry.size());
        ctx->draining = true;
        acceptor->stop();
        // The drain blocks (waiting for bids in flight), so it runs off the socket threads.
        drainer = std::thread([&] {
            bids.wait_idle(cfg.drain_timeout);
            registry.shutdown_all(make_shared_text(serialize_server_shutdown()));
            const auto deadline = std::chrono::steady_clock::now() + cfg.drain_timeout;
            while (registry.size() > 0 && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            ioc.stop();
        });
    });

    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) {
        pool.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : pool) {
        t.join();
    }
    if (drainer.joinable()) {
        drainer.join();
    }
    closes.stop();
    db.stop();
    spdlog::info("stopped");
    return 0;
}

}  // namespace bidding
