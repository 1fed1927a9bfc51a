"""Two pods while their Redis or their Postgres goes away and comes back (same port).

Each test has its own Redis and, for the Postgres outage, its own Postgres cluster, so killing them
does not disturb the rest of the suite.

Redis down: the pods keep accepting, storing and delivering bids to their own clients, still accept
new connections, reconnect by themselves, and then deliver what their clients missed, in order.
Postgres down: bids are answered "unavailable" within 2 s and nothing unstored is acknowledged, new
connections close with 1013 "try again later", and the same pods accept bids again once it is back.
"""
from __future__ import annotations

import asyncio
import time

import websockets

import harness
from harness import WsClient, close_clients, open_clients, run_async

POD_ENV = {"DRAIN_TIMEOUT": "5"}


async def wait_all_have(observers: list[WsClient], seq: int, timeout: float, what: str) -> None:
    """Waits until every client knows `seq` (from a new_bid, or from its initial_state)."""
    await asyncio.gather(*(o.wait_until(lambda o=o: o.last_seq >= seq, timeout, what) for o in observers))


MIN_OUTAGE = 4.0  # long enough for the pods' reconnect backoff to reach its cap (~2 s)
RECONNECT_WITHIN = 2.0 + 1.0  # the backoff cap, plus slack for the re-read and delivery


def test_redis_killed_and_restarted_while_two_pods_take_bids(dedicated_redis, seeded_db, start_server):
    redis = dedicated_redis
    pod_a, pod_b = start_server.pods(2, seeded_db, redis=redis, env=POD_ENV)
    lot = harness.create_auction(seeded_db, "Redis Outage Lot")
    channel = harness.auction_channel(seeded_db, lot["id"])
    ticker = harness.PriceTicker()

    async def scenario():
        url = {"a": pod_a.ws_url(lot["id"]), "b": pod_b.ws_url(lot["id"])}
        observers = {p: [WsClient(f"observer-{p}{i}", url[p]) for i in range(2)] for p in "ab"}
        bidders = {p: [WsClient(f"bidder-{p}{i}", url[p]) for i in range(2)] for p in "ab"}
        everyone = [c for group in (observers, bidders) for p in "ab" for c in group[p]]
        late = []
        await open_clients(everyone)
        records: list[harness.BidRecord] = []
        try:
            # Fan-out works before the outage, both ways.
            for p, q in (("a", "b"), ("b", "a")):
                ack = await bidders[p][0].bid_accepted(f"warm-{p}", ticker.next(), f"warm-{p}")
                await wait_all_have(observers[q], ack["seq"], 5, f"pod {p.upper()}'s bid on pod {q.upper()} before the outage")

            await asyncio.to_thread(redis.kill)
            outage_started = time.monotonic()

            # Phase 1 of the outage: both pods keep taking bids.
            stop = asyncio.Event()
            loops = [asyncio.ensure_future(harness.bid_loop(b, ticker, stop, records, pause=0.005))
                     for p in "ab" for b in bidders[p]]
            try:
                await asyncio.gather(*(b.wait_until(
                    lambda b=b: sum(r.accepted for r in records if r.client == b.name and r.sent > outage_started) >= 3,
                    10, "3 bids accepted on its pod while Redis is down") for p in "ab" for b in bidders[p]))
            finally:
                stop.set()
                await asyncio.gather(*loops)
            for p in "ab":
                own = [r.reply["seq"] for r in records
                       if r.accepted and r.sent > outage_started and r.client.startswith(f"bidder-{p}")]
                assert own, f"pod {p.upper()} must keep accepting bids while Redis is down"
                # The clients of the same pod see them during the outage.
                await wait_all_have(observers[p], max(own), 5,
                                    f"pod {p.upper()}'s own bid (seq {max(own)}) delivered to its clients while Redis is down")

            # New connections during the outage get a normal initial_state.
            late = [WsClient(f"late-{p}", url[p]) for p in "ab"]
            await open_clients(late)
            newest = harness.history(seeded_db, lot["id"])[-1]
            for c in late:
                assert c.state["bid"]["last_seq"] == newest[0] and c.state["data"][0]["seq"] == newest[0], (
                    f"{c.name}: a connection made while Redis is down must get the normal initial_state with the "
                    f"newest stored bid {newest}: {c.state['bid']}, first entry {c.state['data'][:1]}")
            observers["a"].append(late[0])
            observers["b"].append(late[1])

            # Phase 2: only pod B bids, so pod A's clients miss these until Redis is back.
            for k in range(3):
                await bidders["b"][0].bid_accepted("only-b", ticker.next(), f"only-b-{k}")
            await wait_all_have(observers["b"], harness.history(seeded_db, lot["id"])[-1][0], 5,
                                "pod B's own bids delivered to its clients while Redis is down")

            # Nobody bids now: what pod A's clients lack can only come from the re-read after reconnecting.
            newest = harness.history(seeded_db, lot["id"])[-1][0]
            await asyncio.sleep(max(0.0, outage_started + MIN_OUTAGE - time.monotonic()))  # a long outage, on purpose
            missing_on_a = [o.name for o in observers["a"] if o.last_seq < newest]
            await asyncio.to_thread(redis.restart)
            restarted = time.monotonic()
            every_observer = observers["a"] + observers["b"]
            await wait_all_have(every_observer, newest, 10,
                                f"every bid stored while Redis was down, up to seq {newest} (re-read from Postgres after "
                                f"reconnecting; missing on pod A before the restart: {missing_on_a})")
            caught_up = time.monotonic() - restarted
            await harness.eventually(lambda: redis.numsub(channel) == 2, 10,
                                     f"both pods subscribed again to {channel} after Redis came back")

            # Fan-out works again both ways; the sentinel ends every stream.
            for p, q in (("a", "b"), ("b", "a")):
                ack = await bidders[p][1].bid_accepted(f"after-{p}", ticker.next(), f"after-{p}")
                await wait_all_have(observers[q], ack["seq"], 5, f"pod {p.upper()}'s bid on pod {q.upper()} after the outage")
            ack = await bidders["a"][0].bid_accepted("sentinel", "999999.00", "end")
            await wait_all_have(every_observer + bidders["a"] + bidders["b"], ack["seq"], 10, "the sentinel's new_bid")
        finally:
            await close_clients(everyone + late)
        return observers, bidders, records, caught_up, missing_on_a

    observers, bidders, records, caught_up, missing_on_a = run_async(scenario(), timeout=120)
    stored = harness.history(seeded_db, lot["id"])
    harness.check_acknowledged_are_stored(records, stored)
    for client in observers["a"] + observers["b"] + bidders["a"] + bidders["b"]:
        harness.check_stream(client, stored)
    assert pod_a.alive() and pod_b.alive(), "no pod may crash because Redis went away"
    assert caught_up <= RECONNECT_WITHIN, (
        f"after a {MIN_OUTAGE} s Redis outage the pods must reconnect (backoff capped at ~2 s) and deliver what their "
        f"clients missed within {RECONNECT_WITHIN} s of Redis coming back; it took {caught_up:.2f} s")
    print(f"observers caught up {caught_up:.2f} s after Redis restarted; pod A's observers missing pod B's "
          f"outage bids right before the restart: {missing_on_a}")


UNAVAILABLE_WITHIN = 2.0
TIMING_SLACK = 0.3  # the test's own scheduling on a 2-core machine


def test_postgres_stopped_and_restarted_while_two_pods_take_bids(dedicated_postgres, dedicated_redis, start_server):
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    pod_a, pod_b = start_server.pods(2, db, redis=dedicated_redis, env=POD_ENV)
    pids = (pod_a.proc.pid, pod_b.proc.pid)
    lot = harness.create_auction(db, "Postgres Outage Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        url = {"a": pod_a.ws_url(lot["id"]), "b": pod_b.ws_url(lot["id"])}
        observers = {p: WsClient(f"observer-{p}", url[p]) for p in "ab"}
        bidders = {p: WsClient(f"bidder-{p}", url[p]) for p in "ab"}
        everyone = list(observers.values()) + list(bidders.values())
        await open_clients(everyone)
        records: list[harness.BidRecord] = []
        stop = asyncio.Event()
        loops = []
        try:
            for p in "ab":
                await bidders[p].bid_accepted(f"warm-{p}", ticker.next(), f"warm-{p}")
            loops = [asyncio.ensure_future(harness.bid_loop(b, ticker, stop, records, reply_timeout=10, pause=0.02))
                     for b in bidders.values()]
            await bidders["a"].wait_until(lambda: sum(r.accepted for r in records) >= 4, 10, "bids accepted before the outage")

            await asyncio.to_thread(pg.halt, "immediate")
            down_at = time.monotonic()
            # Let each bidder get replies to bids sent entirely during the outage.
            await asyncio.gather(*(b.wait_until(
                lambda b=b: sum(1 for r in records if r.client == b.name and r.sent > down_at and r.reply) >= 2,
                15, "replies to 2 bids sent while Postgres is down") for b in bidders.values()))

            # New connections are refused with 1013 while the database is away; existing ones stay open.
            refused = {}
            for p in "ab":
                try:
                    async with harness.ws_connect(url[p]) as ws:
                        refused[p] = await harness.recv_until_closed(ws, timeout=10)
                except websockets.exceptions.InvalidStatusCode as error:
                    refused[p] = ([], f"HTTP {error.status_code} instead of the upgrade", None)
            assert not any(c.closed.is_set() for c in everyone), (
                f"existing connections must stay open during a Postgres outage: "
                f"{[(c.name, c.close_code) for c in everyone if c.closed.is_set()]}")

            resuming_at = time.monotonic()  # Postgres answers before pg_ctl/pg_isready return
            await asyncio.to_thread(pg.resume)
            up_at = time.monotonic()
            # The same pods accept bids again by themselves.
            await asyncio.gather(*(b.wait_until(
                lambda b=b: any(r.accepted and r.sent > up_at for r in records if r.client == b.name),
                20, "a bid accepted again after Postgres came back (same pod, no restart)") for b in bidders.values()))
            stop.set()
            await asyncio.gather(*loops)
            ack = await bidders["b"].bid_accepted("sentinel", "999999.00", "end")
            await wait_all_have(everyone, ack["seq"], 10, "the sentinel's new_bid")
        finally:
            stop.set()
            if loops:
                await asyncio.wait(loops, timeout=15)
            await close_clients(everyone)
        return observers, bidders, records, refused, down_at, resuming_at

    observers, bidders, records, refused, down_at, resuming_at = run_async(scenario(), timeout=150)
    stored = harness.history(db, lot["id"])
    stored_bids = {(bidder, price) for _, bidder, price in stored}

    during = [r for r in records if down_at < r.sent and r.replied is not None and r.replied < resuming_at]
    assert during, "the test must have sent bids while Postgres was down"
    for r in during:
        assert r.error_code == "unavailable" and r.reply.get("ref") == r.ref, (
            f"{r.client}: a bid sent while Postgres is down must be answered error 'unavailable' (echoing its ref): {r.reply}")
        took = r.replied - r.sent
        assert took <= UNAVAILABLE_WITHIN + TIMING_SLACK, (
            f"{r.client}: 'unavailable' must come within {UNAVAILABLE_WITHIN} s; bid {r.ref} waited {took:.2f} s")
        assert (r.bidder, r.price) not in stored_bids, (
            f"{r.client}: bid {r.ref} ({r.price}) was answered 'unavailable' but is stored: 'unavailable' must mean nothing was stored")
    for p, (messages, code, reason) in refused.items():
        assert (code, reason) == (1013, "try again later"), (
            f"pod {p.upper()}: a new connection while Postgres is down must be closed with 1013 'try again later', "
            f"got {code} {reason!r}")
        assert not any(m.get("type") == "initial_state" for m in messages), (
            f"pod {p.upper()}: no initial_state without the database: {messages}")

    assert harness.check_acknowledged_are_stored(records, stored) >= 4
    for client in list(observers.values()) + list(bidders.values()):
        harness.check_stream(client, stored)
    assert (pod_a.proc.pid, pod_b.proc.pid) == pids and pod_a.alive() and pod_b.alive(), (
        "the pods must survive the Postgres outage and recover without a restart")
    slowest = max((r.replied - r.sent for r in during), default=0)
    print(f"{len(during)} bids answered during the outage, slowest reply {slowest:.2f} s")


def test_sql_errors_do_not_leak_database_connections(start_server, postgres):
    """A query that fails (here: the table is renamed away under a running pod) answers
    `unavailable`; the pod must close the broken connection, not pile up new ones until Postgres
    refuses everybody, and must accept bids again once the table is back."""
    db = harness.migrate_and_seed(postgres.create_database())
    pod = start_server(db)
    lot = harness.create_auction(db, "Leak Lot")

    def app_connections() -> int:
        return db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")[0][0]

    async def scenario():
        async with harness.ws_connect(pod.ws_url(lot["id"])) as ws:
            await harness.initial_state(ws)
            before = app_connections()
            db.execute("ALTER TABLE bids_bid RENAME TO bids_bid_away")
            try:
                for i in range(40):
                    await ws.send(harness.bid_frame("leaky", f"{200 + i}.00", f"r{i}"))
                    reply = await harness.recv_json(ws, 5, what=f"the reply to bid r{i}")
                    assert reply["type"] == "error" and reply["code"] == "unavailable", (
                        f"a bid the database could not take must be answered unavailable, got {reply}")
                during = app_connections()
            finally:
                db.execute("ALTER TABLE bids_bid_away RENAME TO bids_bid")
            assert during <= before + 2, (
                f"failed queries must not leave database connections behind: {before} before, {during} after 40 failures")
            _, reply = await harness.place_bid(ws, "leaky", "500.00", ref="after")
            assert reply["type"] == "bid_accepted", f"the pod must take bids again once the table is back, got {reply}"

    run_async(scenario(), timeout=60)
