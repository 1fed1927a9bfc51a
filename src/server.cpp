#include <bidding/bid_service.hpp>
#include <bidding/bus_codec.hpp>
#include <bidding/commit_resolver.hpp>
#include <bidding/auction_closer.hpp>
#include <bidding/close_listener.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/history_reader.hpp>
#include <bidding/listener.hpp>
#include <bidding/postgres_store.hpp>
#include <bidding/protocol.hpp>
#include <bidding/redis_bus.hpp>
#include <bidding/connection_limits.hpp>
#include <bidding/opening_gate.hpp>
#include <bidding/server.hpp>
#include <bidding/session_registry.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

namespace bidding {

namespace net = boost::asio;

namespace {

// The sessions' threads yield to the accepting thread (new connections, /healthz, /readyz) when
// the pod's CPU is saturated: in a flood the probes and the connects still answer at once. Only
// the calling thread's nice value changes (Linux: per thread), within the pod's own cgroup, and
// raising it needs no privilege.
constexpr int session_thread_nice = 2;

void yield_to_the_accepting_thread() {
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0) {
        ::setpriority(PRIO_PROCESS, tid, std::min(19, current + session_thread_nice));
    }
}

// Tens of thousands of sockets need more than the usual soft limit of 1024 descriptors.
// Raises the open-files limit to its hard limit, as servers holding many sockets do; returns
// the limit in force.
std::size_t raise_open_file_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            spdlog::warn("could not raise the open file limit");
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) {
        return 1'048'576;
    }
    return static_cast<std::size_t>(lim.rlim_cur);
}

// MAX_CONNECTIONS, or by default what the open-files limit leaves after a reserve for the
// database, Redis, probes and plain HTTP requests: past it, accept() would fail for everyone.
std::size_t connection_limit_of(const config& cfg, std::size_t open_files) {
    constexpr std::size_t reserve = 256;
    const std::size_t fit = open_files > reserve + 16 ? open_files - reserve : 16;
    if (cfg.max_connections == 0) {
        return fit;
    }
    if (cfg.max_connections > fit) {
        spdlog::warn("MAX_CONNECTIONS={} is more than the open-files limit ({}) leaves room for: connections beyond "
                     "about {} will fail to be accepted",
                     cfg.max_connections, open_files, fit);
    }
    return cfg.max_connections;
}

// How every database connection of the server is set up.
store_options store_settings_of(const config& cfg, metrics& stats) {
    store_options o;
    o.statement_timeout = cfg.db_timeout;
    o.lock_timeout = cfg.db_lock_timeout;
    // A pod frozen inside a transaction holds its row lock; Postgres ends such a session after
    // this, which releases the lock for the other pods.
    o.idle_in_transaction_timeout = std::max(2 * cfg.db_timeout, std::chrono::milliseconds(1000));
    o.reconnects = &stats.postgres_reconnects();
    return o;
}

// The Redis bus, delivering what the other pods send into this pod's registry; null without Redis.
std::unique_ptr<auction_bus> make_bus(const config& cfg, session_registry& registry, metrics& stats) {
    if (!cfg.redis) {
        return nullptr;
    }
    return make_redis_bus(
        redis_bus_settings{*cfg.redis, cfg.redis_timeout},
        bus_codec(cfg.redis_channel_prefix, derive_bus_key(cfg.secret_key, cfg.database_conninfo)),
        auction_bus::handlers{
            [&registry](auction_id id, std::vector<feed_event> events) { registry.publish(id, std::move(events)); },
            [&registry](auction_id id, shared_text message) { registry.close_auction(id, message); },
            // Subscribed (again): whatever was published before may have been missed.
            [&registry](auction_id id) { registry.resync(id); },
            [&registry](auction_id id, std::chrono::milliseconds pause) {
                registry.hold(id, fanout_load::clock::now() + pause);
            },
        },
        &stats.fanout);
}

// The registry's doors: the bus's subscriptions and pause requests, and reads from the store.
session_registry::hooks registry_hooks(auction_bus* bus, history_reader& reader) {
    session_registry::hooks hooks;
    if (bus != nullptr) {
        hooks.first_joined = [bus](auction_id id) { bus->subscribe(id); };
        hooks.last_left = [bus](auction_id id) { bus->unsubscribe(id); };
        // Pauses the auction's bids on the other pods for a little longer than the signal period.
        hooks.behind = [bus](auction_id id) { bus->publish_hold(id, 3 * session_registry::signal_every); };
    }
    hooks.read_after = [&reader](auction_id id, seq_t after, std::size_t limit) {
        reader.fill_registry(id, after, limit);
    };
    return hooks;
}

// What /readyz and /metrics report from outside the connection path.
std::function<metrics_extra(bool)> observer(session_registry& registry, close_listener& closes, auction_bus* bus,
                                            db_pool& db, const server_context& ctx) {
    return [&registry, &closes, bus, &db, &ctx](bool full) {
        metrics_extra extra;
        extra.draining = ctx.draining;
        // Either view of Postgres failing means a new client would not be served now.
        extra.postgres_up = closes.connected() && db.healthy();
        extra.redis_configured = bus != nullptr;
        extra.redis_connected = bus != nullptr && bus->connected();
        if (!full) {
            return extra;
        }
        extra.connections_per_auction = registry.room_sizes();
        extra.redis_reconnects = bus != nullptr ? bus->reconnects() : 0;
        extra.bus_rejected = bus != nullptr ? bus->rejected() : 0;
        extra.db_queued = db.queued();
        extra.watchdog_cuts = db.watchdog().cuts();
        extra.max_connections = ctx.limits->max_total();
        extra.max_connections_per_ip = ctx.limits->max_per_client();
        extra.opening = ctx.openings->opening();
        extra.waiting_to_open = ctx.openings->waiting();
        extra.max_opening = ctx.openings->slots();
        return extra;
    };
}

// The drain after SIGTERM: new bids are refused from here on (websocket_session); those in
// flight finish, their replies go out before server_shutdown, and what was accepted is
// published. Blocking, so it runs on a thread of its own; whatever blocks (a frozen
// dependency), the process is gone by DRAIN_TIMEOUT.
void drain(const config& cfg, bid_service& bids, session_registry& registry, auction_bus* bus,
           const std::function<void()>& stop_io) {
    std::thread([timeout = cfg.drain_timeout] {
        std::this_thread::sleep_for(timeout);
        spdlog::warn("drain: DRAIN_TIMEOUT passed with work unfinished; exiting now");
        spdlog::shutdown();
        std::_Exit(0);
    }).detach();
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + cfg.drain_timeout;
    const auto remaining = [&] { return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()); };
    if (!bids.wait_idle(remaining() / 2)) {
        spdlog::warn("drain: bids still in flight at the deadline");
    }
    registry.shutdown_all(make_shared_text(serialize_server_shutdown()));
    while (registry.size() > 0 && clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (bus != nullptr) {
        bus->stop(std::max(remaining(), std::chrono::milliseconds(0)));
    }
    stop_io();
}

std::string redis_display(const config& cfg) {
    return cfg.redis ? "Redis " + cfg.redis->host + ":" + std::to_string(cfg.redis->port)
                     : std::string("no Redis (single pod)");
}

}  // namespace

int run_server(const config& cfg) {
    const auto open_files = raise_open_file_limit();
    const auto threads = cfg.threads != 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

    // Fail fast and clearly when the database is unreachable at start.
    postgres_store(cfg.database_conninfo).connect();

    // The parts, from the truth outwards; declared before the io_contexts so that they outlive
    // the handlers those destroy last.
    metrics stats;
    // An auction's fan-out is behind when most of its clients here are late by FANOUT_MAX_LAG, or
    // when what waits to be handed to them exceeds an eighth of their byte bound each.
    session_registry registry(static_cast<std::int64_t>(cfg.max_send_queue_bytes / 8), cfg.fanout_max_lag);
    const auto make_store = postgres_store::factory(cfg.database_conninfo, store_settings_of(cfg, stats));
    db_pool db(make_store, db_pool::settings{cfg.db_pool_size, cfg.db_queue_limit});
    const auto bus = make_bus(cfg, registry, stats);
    std::unique_ptr<bid_service> bids;
    commit_resolver resolver(make_store(&db.watchdog()), commit_resolver::settings{},
                             [&bids](auction_id id, std::vector<fanout_message> accepted) {
                                 bids->fan_out(id, std::move(accepted));
                             });
    bid_service::publish_fn publish;
    if (bus) {
        publish = [bus = bus.get()](auction_id id, const std::vector<fanout_message>& accepted, std::int64_t committed_us) {
            for (const auto& m : accepted) {
                bus->publish_bid(id, m, committed_us);
            }
        };
    }
    bids = std::make_unique<bid_service>(db, registry, stats,
                                         bid_service::limits{cfg.max_pending_bids_per_auction, cfg.max_pending_bids,
                                                             128, cfg.db_timeout, cfg.bid_timeout,
                                                             cfg.db_pool_size, 64},
                                         std::move(publish), &resolver);
    close_listener closes(cfg.database_conninfo, registry, &db.watchdog(), cfg.db_timeout);

    // The sockets: sessions on `ioc`'s threads; accepting and plain HTTP on a thread of their
    // own (see listener).
    net::io_context ioc(static_cast<int>(threads));
    net::io_context front(1);
    history_reader history(db, registry, ioc, cfg.db_timeout);
    registry.set_hooks(registry_hooks(bus.get(), history));
    auto ctx = std::make_shared<server_context>(cfg, registry, *bids, db, history, stats);
    if (bus) {
        ctx->publish_close = [bus = bus.get()](auction_id id, const std::string& bid_closed) {
            bus->publish_close(id, bid_closed);
        };
    }
    ctx->limits = std::make_shared<connection_limits>(connection_limit_of(cfg, open_files), cfg.max_connections_per_ip);
    ctx->openings = std::make_shared<opening_gate>(cfg.max_opening_connections);
    ctx->observe = observer(registry, closes, bus.get(), db, *ctx);
    // Timed auctions end here (or on any other pod: one close each); the NOTIFY committed with the
    // close reaches every pod's close listener, and Redis carries it too, as for the API's closes.
    auction_closer closer(make_store, &db.watchdog(), cfg.close_check_interval, cfg.db_timeout, ctx->clock,
                          [ctx](auction_id id, const std::string& bid_closed) {
                              if (ctx->publish_close) {
                                  ctx->publish_close(id, bid_closed);
                              }
                          });

    auto acceptor =
        std::make_shared<listener>(front, ioc, net::ip::tcp::endpoint(net::ip::address_v6::any(), cfg.port), ctx);

    acceptor->run();
    closes.start();
    closer.start();
    if (bus) {
        bus->start();
    }
    spdlog::info("{} {} ({}) listening on port {}, database {}, {}, {} threads, at most {} connections ({} per client "
                 "address)",
                 cfg.app_name, cfg.app_version, to_string(cfg.env), acceptor->port(), cfg.database_display,
                 redis_display(cfg), threads, ctx->limits->max_total(),
                 cfg.max_connections_per_ip == 0 ? std::string("no limit") : std::to_string(cfg.max_connections_per_ip));

    // The sessions' io_context runs until the drain stops it. Without this its run() returns as
    // soon as no socket or timer operation is pending, which happens during a drain while a
    // session still waits for the database (its snapshot, a reply): what the database then
    // posts is never run, the session never leaves the registry, and the drain waits for it
    // until DRAIN_TIMEOUT.
    auto keep_running = net::make_work_guard(ioc);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    std::thread drainer;
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        spdlog::info("signal {} received: draining {} connections", signo, registry.size());
        ctx->draining = true;
        acceptor->stop();
        drainer = std::thread([&] {
            drain(cfg, *bids, registry, bus.get(), [&] {
                front.stop();
                ioc.stop();
            });
        });
    });

    std::thread front_thread([&front] { front.run(); });
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) {
        pool.emplace_back([&ioc] {
            yield_to_the_accepting_thread();
            ioc.run();
        });
    }
    // The main thread runs sessions too; the drain has a thread of its own.
    yield_to_the_accepting_thread();
    ioc.run();

    // Stopped in the reverse order.
    for (auto& t : pool) {
        t.join();
    }
    front.stop();
    front_thread.join();
    if (drainer.joinable()) {
        drainer.join();
    }
    closer.stop();
    closes.stop();
    if (bus) {
        bus->stop(std::chrono::milliseconds(0));
    }
    resolver.stop();
    db.stop();
    spdlog::info("stopped");
    return 0;
}

}  // namespace bidding
