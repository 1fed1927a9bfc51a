"""Redis that stops answering, a network to it that drops messages, programs that publish on the
pods' channels, and two deployments sharing one Redis.

The promises: a frozen Redis is noticed within 3 s (the subscriber pings) and both connections
come back when it answers again; /readyz stays 200 (every pod loses Redis at once) and says
"redis":"unavailable"; a bid accepted meanwhile reaches every client on every pod within 2 s of
Redis answering again, even when no later bid reveals the gap; only the pods of one deployment
speak on its channels (messages are signed, channels prefixed by the database name).
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import faults
import harness
from faults import FaultProxy
from harness import WsClient, close_clients, open_clients, run_async

SLACK = 0.5
DETECTED_WITHIN = 3.0
DELIVERED_WITHIN = 2.0


def readyz(server: harness.Server) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def wait_redis_state(pods: list[harness.Server], state: str, timeout: float, what: str,
                           starting: bool = False) -> float:
    """Seconds until every pod's /readyz says "redis": state (each staying 200). `starting`: the
    pods were just started, so a 503 is allowed until they are first ready (a pod's LISTEN
    connection to Postgres may come up after /healthz does)."""
    started = time.monotonic()
    for pod in pods:
        while True:
            status, body = await asyncio.to_thread(readyz, pod)
            if starting and status == 503:
                assert time.monotonic() - started < harness.timing_bound(timeout), \
                    f"{what}: {pod.name} still not ready after {timeout} s: {body}"
                await asyncio.sleep(0.05)
                continue
            assert status == 200, f"{pod.name}: a Redis outage must not make the pod unready: {status} {body}"
            if body.get("redis") == state:
                break
            assert time.monotonic() - started < timeout, f"{what}: {pod.name} still says {body} after {timeout} s"
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def all_have(clients: list[WsClient], seq: int, timeout: float, what: str) -> None:
    await asyncio.gather(*(c.wait_until(lambda c=c: c.last_seq >= seq, timeout, what) for c in clients))


def rejected(server: harness.Server) -> float:
    return harness.metric_value(harness.metrics_text(server), "bidding_bus_rejected_total")


def test_a_frozen_redis_is_noticed_and_what_was_missed_arrives_without_a_later_bid(
        dedicated_redis, seeded_db, start_server):
    redis = dedicated_redis
    pod_a, pod_b = start_server.pods(2, seeded_db, redis=redis)
    lot = harness.create_auction(seeded_db, "Frozen Redis Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        a = [WsClient(f"a{i}", pod_a.ws_url(lot["id"])) for i in range(2)]
        b = [WsClient(f"b{i}", pod_b.ws_url(lot["id"])) for i in range(2)]
        await open_clients(a + b)
        await wait_redis_state([pod_a, pod_b], "ok", 10, "both pods connected to Redis", starting=True)
        ack = await a[0].bid_accepted("warm", ticker.next(), "warm")
        await all_have(b, ack["seq"], 5, "the warm-up bid across pods")
        with faults.frozen(redis):
            detected = await wait_redis_state([pod_a, pod_b], "unavailable", DETECTED_WITHIN + SLACK,
                                              "a frozen Redis noticed")
            # Still accepted and delivered on the pod that took it.
            during = await a[1].bid_accepted("during", ticker.next(), "during")
            await all_have(a, during["seq"], 5, "the bid on its own pod while Redis is frozen")
            frozen_for = 1.0  # long enough for a publish to have been tried and dropped
            await asyncio.sleep(frozen_for)
            assert all(c.last_seq < during["seq"] for c in b), "pod B cannot have it yet: Redis is frozen"
        thawed = time.monotonic()
        # No other bid is placed: only the pods' own recovery can bring it.
        await all_have(b, during["seq"], DELIVERED_WITHIN + SLACK, "the bid accepted while Redis was frozen")
        delivered = time.monotonic() - thawed
        reconnected = await wait_redis_state([pod_a, pod_b], "ok", 5, "both connections back")
        ack = await b[0].bid_accepted("after", ticker.next(), "after")
        await all_have(a + b, ack["seq"], 5, "fan-out after the thaw")
        await close_clients(a + b)
        return a + b, detected, delivered, reconnected

    clients, detected, delivered, reconnected = run_async(scenario(), timeout=90)
    stored = harness.history(seeded_db, lot["id"])
    for c in clients:
        harness.check_stream(c, stored)
    print(f"frozen Redis noticed after {detected:.2f} s; missed bid delivered {delivered:.2f} s after the thaw")


def test_a_network_that_drops_redis_messages(dedicated_redis, seeded_db, start_server):
    redis = dedicated_redis
    lot = harness.create_auction(seeded_db, "Dropped Messages Lot")
    ticker = harness.PriceTicker()
    with FaultProxy("127.0.0.1", redis.port) as proxy:
        url = faults.redis_via_proxy(redis.url, proxy.port)
        pod_a = start_server(seeded_db, name="pod-a", env={"REDIS_URL": url})
        pod_b = start_server(seeded_db, name="pod-b", env={"REDIS_URL": url})

        async def scenario():
            a = WsClient("a", pod_a.ws_url(lot["id"]))
            b = WsClient("b", pod_b.ws_url(lot["id"]))
            await open_clients([a, b])
            await wait_redis_state([pod_a, pod_b], "ok", 10, "both pods connected", starting=True)
            ack = await a.bid_accepted("warm", ticker.next(), "warm")
            await b.wait_until(lambda: b.last_seq >= ack["seq"], 5, "warm-up across pods")
            proxy.blackhole()
            during = await a.bid_accepted("during", ticker.next(), "during")
            await wait_redis_state([pod_a, pod_b], "unavailable", DETECTED_WITHIN + SLACK, "dropped messages noticed")
            assert b.last_seq < during["seq"], "the message was dropped on the way"
            proxy.passthrough()
            healed = time.monotonic()
            await b.wait_until(lambda: b.last_seq >= during["seq"], 2 * DELIVERED_WITHIN,
                               "the dropped bid, once the network delivers again")
            delivered = time.monotonic() - healed
            await wait_redis_state([pod_a, pod_b], "ok", 5, "both connections back")
            ack = await b.bid_accepted("after", ticker.next(), "after")
            await a.wait_until(lambda: a.last_seq >= ack["seq"], 5, "fan-out after healing")
            await close_clients([a, b])
            return [a, b], delivered

        clients, delivered = run_async(scenario(), timeout=90)
    stored = harness.history(seeded_db, lot["id"])
    for c in clients:
        harness.check_stream(c, stored)
    print(f"dropped bid delivered {delivered:.2f} s after the network healed")


def test_messages_no_pod_signed_are_ignored_and_counted(redis, seeded_db, start_server):
    pod_a, pod_b = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Forged Lot")
    channel = harness.auction_channel(seeded_db, lot["id"])
    ticker = harness.PriceTicker()

    async def scenario():
        clients = [WsClient("a", pod_a.ws_url(lot["id"])), WsClient("b", pod_b.ws_url(lot["id"]))]
        await open_clients(clients)
        await harness.eventually(lambda: redis.numsub(channel) == 2, 10, "both pods subscribed")
        before = [rejected(p) for p in (pod_a, pod_b)]
        forged_bid = json.dumps({"type": "new_bid", "bid_id": lot["id"], "seq": 999999999, "bidder": "mallory",
                                 "price": "99999999.00", "added_at": "2026-01-01T00:00:00.000Z"})
        forged_close = json.dumps({"type": "bid_closed", "bid_id": lot["id"], "final_price": "1.00", "winner": "mallory"})
        for payload in (f"bid 0 999999999 0\n{forged_bid}",                      # the old, unsigned form
                        f"bid 0 999999999 0 {'0' * 32}\n{forged_bid}",           # a made-up signature
                        f"close {'f' * 32}\n{forged_close}",
                        f"hold 60000 {'a' * 32}\n"):
            assert redis.command("PUBLISH", channel, payload) == 2
        await harness.eventually(lambda: all(rejected(p) >= b + 4 for p, b in zip((pod_a, pod_b), before)), 5,
                                 "every forged message counted as rejected on both pods")
        # The feeds did not move: a real bid (a far lower seq) still reaches everybody, nothing
        # was closed, and the forged "hold" paused nothing.
        ack = await clients[0].bid_accepted("real", ticker.next(), "real")
        await all_have(clients, ack["seq"], 5, "a real bid after the forgeries")
        ack = await clients[1].bid_accepted("real-b", ticker.next(), "real-b")
        await all_have(clients, ack["seq"], 5, "a real bid from the other pod")
        assert not any(c.closed.is_set() for c in clients), "a forged close must close nothing"
        await close_clients(clients)
        return clients

    clients = run_async(scenario(), timeout=60)
    stored = harness.history(seeded_db, lot["id"])
    for c in clients:
        assert not any(m.get("bidder") == "mallory" for m in c.messages), f"{c.name} received a forged message"
        harness.check_stream(c, stored)
    assert "no pod of this deployment signed" in pod_a.log_text()


def test_two_deployments_sharing_one_redis_never_hear_each_other(redis, postgres, start_server):
    db_x = harness.migrate_and_seed(postgres.create_database())
    db_y = harness.migrate_and_seed(postgres.create_database())
    lot_x = harness.create_auction(db_x, "Lot X")
    lot_y = harness.create_auction(db_y, "Lot Y")
    assert lot_x["id"] == lot_y["id"], "the same auction id in both databases: only the channel tells them apart"
    auction = lot_x["id"]
    x = start_server(db_x, use_redis=True, name="deployment-x")
    y = start_server(db_y, use_redis=True, name="deployment-y")
    # A third deployment forced onto X's channels but with another key: its messages are refused.
    intruder = start_server(db_y, use_redis=True, name="intruder",
                            env={"REDIS_CHANNEL_PREFIX": f"bidding:{db_x.name}:",
                                 "SECRET_KEY": "another-deployment-secret-key-0123456789"})
    ticker = harness.PriceTicker()

    async def scenario():
        cx = WsClient("x", x.ws_url(auction))
        cy = WsClient("y", y.ws_url(auction))
        ci = WsClient("intruder", intruder.ws_url(auction))
        await open_clients([cx, cy, ci])
        await harness.eventually(lambda: redis.numsub(harness.auction_channel(db_x, auction)) == 2, 10,
                                 "x and the intruder on x's channel")
        before = rejected(x)
        ack_x = await cx.bid_accepted("from-x", ticker.next(), "from-x")
        ack_y = await cy.bid_accepted("from-y", ticker.next(), "from-y")
        ack_i = await ci.bid_accepted("from-intruder", ticker.next(), "from-intruder")
        await harness.eventually(lambda: rejected(x) > before, 5, "x refusing the intruder's message")
        ack_x2 = await cx.bid_accepted("from-x-2", ticker.next(), "from-x-2")
        await cx.wait_until(lambda: cx.last_seq >= ack_x2["seq"], 5, "x's own bids")
        await close_clients([cx, cy, ci])
        return cx, cy, ci, (ack_x, ack_y, ack_i)

    cx, cy, ci, acks = run_async(scenario(), timeout=60)
    bidders = lambda c: {m.get("bidder") for m in c.new_bids()}  # noqa: E731
    assert bidders(cx) == {"from-x", "from-x-2"}, f"deployment x must see only its own bids: {bidders(cx)}"
    assert "from-x" not in bidders(cy) and "from-x" not in bidders(ci), "x's bids must not reach another deployment"
    harness.check_stream(cx, harness.history(db_x, auction))
