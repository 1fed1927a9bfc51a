"""Postgres that stops answering, a network to it that drops packets, a pod frozen while it holds a
row lock, a restart under idle pods, and a connection cut during COMMIT.

Every fault is injected into real processes: the whole Postgres cluster frozen with SIGSTOP (its
kernel still accepts and acknowledges, so nothing looks closed), a TCP proxy (fault_proxy.py)
between a pod and Postgres that blackholes, holds or cuts. The limits asserted are the documented
ones (docs/architecture.md, "What each failure does"), plus a little slack for the test's own
scheduling on a 2-core machine.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request

import websockets

import faults
import harness
from faults import FaultProxy
from harness import WsClient, close_clients, open_clients, run_async

SLACK = 0.5
UNAVAILABLE_WITHIN = 2.0  # DB_TIMEOUT's default
REFUSED_WITHIN = 2.0
NOT_READY_WITHIN = 5.0


def readyz(server: harness.Server) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def connect_outcome(url: str, timeout: float = 10.0) -> tuple[str, float]:
    """What a new client gets: ('initial_state', s) or ('close CODE REASON', s)."""
    started = time.monotonic()
    try:
        async with harness.ws_connect(url, open_timeout=timeout) as ws:
            try:
                first = await harness.recv_json(ws, timeout, what="the first message")
                return first.get("type", "?"), time.monotonic() - started
            except AssertionError:
                return f"close {ws.close_code} {ws.close_reason}", time.monotonic() - started
    except websockets.exceptions.InvalidStatusCode as error:
        return f"HTTP {error.status_code}", time.monotonic() - started


async def bids_while(client: WsClient, ticker: harness.PriceTicker, count: int, prefix: str,
                     timeout: float = 10.0) -> list[harness.BidRecord]:
    """`count` bids one after the other, each with its reply and timing."""
    records = []
    for k in range(count):
        price = ticker.next()
        record = harness.BidRecord(client.name, client.name, price, f"{prefix}-{k}", time.monotonic())
        reply, took = await client.bid(client.name, price, record.ref, timeout)
        record.reply, record.replied = reply, record.sent + took
        records.append(record)
    return records


def assert_unavailable_in_time(records: list[harness.BidRecord], stored: list, within: float, what: str) -> None:
    stored_bids = {(bidder, price) for _, bidder, price in stored}
    for r in records:
        took = r.replied - r.sent
        assert r.error_code == "unavailable", f"{what}: bid {r.ref} must be answered 'unavailable', got {r.reply}"
        assert took <= within + SLACK, f"{what}: 'unavailable' must come within {within} s; bid {r.ref} took {took:.2f} s"
        assert (r.bidder, r.price) not in stored_bids, f"{what}: bid {r.ref} was answered 'unavailable' but is stored"


def test_a_frozen_postgres_is_handled_like_one_that_is_down(dedicated_postgres, start_server):
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    pod = start_server(db, env={"DRAIN_TIMEOUT": "4"})
    draining_pod = start_server(db, env={"DRAIN_TIMEOUT": "4"}, name="drained")
    lot = harness.create_auction(db, "Frozen Postgres Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        bidder = WsClient("bidder", pod.ws_url(lot["id"]))
        observer = WsClient("observer", pod.ws_url(lot["id"]))
        watcher = WsClient("watcher", draining_pod.ws_url(lot["id"]))
        await open_clients([bidder, observer, watcher])
        warm = await bids_while(bidder, ticker, 3, "warm")
        assert all(r.accepted for r in warm)
        with faults.frozen(pg):
            frozen_at = time.monotonic()
            during = await bids_while(bidder, ticker, 3, "frozen")
            outcome, took = await connect_outcome(pod.ws_url(lot["id"]))
            not_ready_after = None
            while time.monotonic() < frozen_at + NOT_READY_WITHIN + SLACK:
                status, body = await asyncio.to_thread(readyz, pod)
                if status == 503:
                    not_ready_after = time.monotonic() - frozen_at
                    assert body["postgres"] == "unavailable" and "postgres unreachable" in body["reasons"], body
                    break
                await asyncio.sleep(0.1)
            # SIGTERM still drains within DRAIN_TIMEOUT, whatever Postgres does.
            draining_pod.send_signal(signal.SIGTERM)
            term_at = time.monotonic()
            code = await asyncio.to_thread(draining_pod.proc.wait, 15)
            drained_in = time.monotonic() - term_at
            assert not bidder.closed.is_set() and not observer.closed.is_set(), (
                "existing connections stay open while Postgres is frozen")
        thawed_at = time.monotonic()
        # The same pod takes bids again by itself.
        after = None
        while time.monotonic() < thawed_at + 15:
            after = (await bids_while(bidder, ticker, 1, f"after-{int(time.monotonic() * 1000)}"))[0]
            if after.accepted:
                break
            await asyncio.sleep(0.2)
        await observer.wait_until(lambda: observer.last_seq >= after.reply["seq"], 5, "the bid after the thaw")
        await close_clients([bidder, observer, watcher])
        return during, outcome, took, not_ready_after, code, drained_in, after

    during, outcome, took, not_ready_after, code, drained_in, after = run_async(scenario(), timeout=120)
    assert_unavailable_in_time(during, harness.history(db, lot["id"]), UNAVAILABLE_WITHIN, "Postgres frozen")
    assert outcome == "close 1013 try again later" and took <= REFUSED_WITHIN + SLACK, (
        f"a new connection while Postgres is frozen must be closed 1013 within {REFUSED_WITHIN} s: {outcome} after {took:.2f} s")
    assert not_ready_after is not None, f"/readyz must turn 503 within {NOT_READY_WITHIN} s of Postgres freezing"
    assert code == 0 and drained_in <= 4 + SLACK, (
        f"SIGTERM must still exit 0 within DRAIN_TIMEOUT (4 s) with Postgres frozen: exit {code} after {drained_in:.2f} s")
    assert after is not None and after.accepted, "the pod must accept bids again once Postgres answers"
    assert pod.alive()
    print(f"frozen: slowest unavailable {max(r.replied - r.sent for r in during):.2f} s, 1013 after {took:.2f} s, "
          f"/readyz 503 after {not_ready_after:.2f} s, drained in {drained_in:.2f} s")


def test_a_network_that_drops_packets_to_postgres(dedicated_postgres, start_server):
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    lot = harness.create_auction(db, "Blackhole Lot")
    ticker = harness.PriceTicker()
    with FaultProxy("127.0.0.1", pg.port) as proxy:
        pod = start_server(db, env={"DATABASE_URL": faults.via_proxy(db.url, proxy.port)})

        async def scenario():
            bidder = WsClient("bidder", pod.ws_url(lot["id"]))
            await open_clients([bidder])
            assert all(r.accepted for r in await bids_while(bidder, ticker, 2, "warm"))
            proxy.blackhole()
            dropped_at = time.monotonic()
            during = await bids_while(bidder, ticker, 3, "blackholed")
            outcome, took = await connect_outcome(pod.ws_url(lot["id"]))
            ready = None
            while time.monotonic() < dropped_at + NOT_READY_WITHIN + SLACK:
                status, _ = await asyncio.to_thread(readyz, pod)
                if status == 503:
                    ready = time.monotonic() - dropped_at
                    break
                await asyncio.sleep(0.1)
            proxy.passthrough()
            healed_at = time.monotonic()
            after = None
            while time.monotonic() < healed_at + 15:
                after = (await bids_while(bidder, ticker, 1, f"healed-{int(time.monotonic() * 1000)}"))[0]
                if after.accepted:
                    break
                await asyncio.sleep(0.2)
            await close_clients([bidder])
            return during, outcome, took, ready, after, time.monotonic() - healed_at

        during, outcome, took, ready, after, recovered = run_async(scenario(), timeout=120)
    assert_unavailable_in_time(during, harness.history(db, lot["id"]), UNAVAILABLE_WITHIN, "packets dropped")
    assert outcome == "close 1013 try again later" and took <= REFUSED_WITHIN + SLACK, (
        f"a new connection while packets to Postgres are dropped must be closed 1013 within {REFUSED_WITHIN} s: "
        f"{outcome} after {took:.2f} s")
    assert ready is not None, f"/readyz must turn 503 within {NOT_READY_WITHIN} s"
    assert after is not None and after.accepted, f"bids must be accepted again once the network heals ({after})"
    print(f"blackhole: 1013 after {took:.2f} s, not ready after {ready:.2f} s, recovered in {recovered:.2f} s")


def test_a_pod_frozen_while_holding_the_row_lock_blocks_the_others_no_longer_than_the_lock_timeout(
        dedicated_postgres, dedicated_redis, start_server):
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    lot = harness.create_auction(db, "Row Lock Lot")
    ticker = harness.PriceTicker()
    # DB_TIMEOUT 1.5 s: Postgres ends a session idle inside a transaction after 2 x DB_TIMEOUT (3 s).
    env = {"DB_TIMEOUT": "1.5", "DB_LOCK_TIMEOUT": "0.5", "DB_POOL_SIZE": "1"}
    with FaultProxy("127.0.0.1", pg.port) as proxy:
        pod_a = start_server(db, redis=dedicated_redis, name="pod-a",
                             env={**env, "DATABASE_URL": faults.via_proxy(db.url, proxy.port)})
        pod_b = start_server(db, redis=dedicated_redis, name="pod-b", env=env)

        async def scenario():
            a = WsClient("bidder-a", pod_a.ws_url(lot["id"]))
            b = WsClient("bidder-b", pod_b.ws_url(lot["id"]))
            await open_clients([a, b])
            assert (await bids_while(a, ticker, 1, "warm-a"))[0].accepted
            # Pod A's next transaction takes the row lock and then its COMMIT is held on the wire;
            # pod A itself is frozen right after: a pod frozen while it holds the lock. Only a
            # writing transaction's COMMIT is held (a read's of the pod's own never is).
            proxy.arm("hold_commit", writes_only=True)
            held = harness.BidRecord("bidder-a", "bidder-a", ticker.next(), "held", time.monotonic())
            await a.send_bid("bidder-a", held.price, held.ref)
            await asyncio.to_thread(proxy.wait_stats, lambda s: s["faults_fired"].get("hold_commit", 0) >= 1, 5,
                                    "the held COMMIT")
            faults.freeze(pod_a.proc.pid)
            frozen_at = time.monotonic()
            try:
                blocked = await bids_while(b, ticker, 2, "blocked")
                # Postgres ends pod A's idle transaction (idle_in_transaction_session_timeout):
                # the lock is released and pod B goes on.
                accepted = None
                while time.monotonic() < frozen_at + 15:
                    r = (await bids_while(b, ticker, 1, f"after-{int(time.monotonic() * 1000)}"))[0]
                    if r.accepted:
                        accepted = r
                        break
                released_after = time.monotonic() - frozen_at
            finally:
                faults.thaw(pod_a.proc.pid)
            proxy.release()
            reply = await a.wait_for(harness.is_reply(held.ref), 10, "the reply to the held bid")
            await close_clients([a, b])
            return blocked, accepted, released_after, held, reply

        blocked, accepted, released_after, held, reply = run_async(scenario(), timeout=120)
    stored = harness.history(db, lot["id"])
    stored_bids = {(bidder, price) for _, bidder, price in stored}
    for r in blocked:
        took = r.replied - r.sent
        assert r.error_code == "unavailable" and took <= 0.5 + SLACK, (
            f"pod B's bid behind the frozen pod's lock must be answered 'unavailable' within the lock timeout "
            f"(0.5 s): {r.reply} after {took:.2f} s")
        assert (r.bidder, r.price) not in stored_bids
    assert accepted is not None and released_after <= 3 + 1.5 + 2, (
        f"pod B must go on once Postgres ends the frozen pod's transaction (~3 s): {released_after:.2f} s")
    # The frozen pod's bid: its transaction never committed, and it must say so, never "accepted".
    assert reply.get("code") in ("unavailable", "in_doubt") or reply["type"] == "bid_accepted", reply
    in_db = ("bidder-a", held.price) in stored_bids
    assert not in_db, "the held transaction was ended by Postgres: its bid cannot be stored"
    assert reply["type"] != "bid_accepted", f"a bid that is not stored must never be acknowledged: {reply}"
    assert pod_a.alive() and pod_b.alive()


def test_after_a_postgres_restart_an_idle_pod_serves_at_once(dedicated_postgres, start_server):
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    pod = start_server(db)
    lot = harness.create_auction(db, "Restart Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        # Every pool connection in use once (four clients connecting at once), then idle.
        clients = [WsClient(f"warm-{i}", pod.ws_url(lot["id"])) for i in range(8)]
        await open_clients(clients)
        warm = await asyncio.gather(*(bids_while(c, ticker, 1, c.name) for c in clients[:4]))
        # Idle means idle: every client holds every accepted bid (the pod may read the history to
        # deliver them; under a sanitizer that read could otherwise still run during the outage).
        last = max((r.reply["seq"] for records in warm for r in records if r.accepted), default=0)
        await asyncio.gather(*(c.wait_until(lambda c=c: c.last_seq >= last, 10, "every bid before the outage")
                               for c in clients))
        await close_clients(clients)
        await asyncio.to_thread(pg.halt, "fast")
        await asyncio.to_thread(pg.resume)
        # No traffic reached the pod during the outage: its pooled connections are all stale.
        outcome, took = await connect_outcome(pod.ws_url(lot["id"]))
        fresh = WsClient("fresh", pod.ws_url(lot["id"]))
        await fresh.open()
        after = await bids_while(fresh, ticker, 4, "after")
        await close_clients([fresh])
        return outcome, took, after

    outcome, took, after = run_async(scenario(), timeout=60)
    assert outcome == "initial_state", (
        f"a pod that saw no traffic during a Postgres restart must serve a new client at once, got {outcome}")
    assert all(r.accepted for r in after), f"and take bids at once: {[r.reply for r in after if not r.accepted]}"


def test_a_connection_cut_right_after_commit_is_learned_from_the_server(dedicated_postgres, start_server):
    """COMMIT reached Postgres, its answer did not reach the pod: the pod asks txid_status and
    acknowledges; with COMMIT lost instead, the pod learns it aborted and says 'unavailable'."""
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    lot = harness.create_auction(db, "Commit Cut Lot")
    ticker = harness.PriceTicker()
    with FaultProxy("127.0.0.1", pg.port) as proxy:
        pod = start_server(db, env={"DATABASE_URL": faults.via_proxy(db.url, proxy.port)})

        async def scenario():
            bidder = WsClient("bidder", pod.ws_url(lot["id"]))
            observer = WsClient("observer", pod.ws_url(lot["id"]))
            await open_clients([bidder, observer])
            assert (await bids_while(bidder, ticker, 1, "warm"))[0].accepted
            proxy.arm("cut_after_commit", writes_only=True)
            committed = (await bids_while(bidder, ticker, 1, "cut-after"))[0]
            assert proxy.stats()["faults_fired"].get("cut_after_commit") == 1, "the fault must have fired"
            proxy.arm("drop_commit", writes_only=True)
            dropped = (await bids_while(bidder, ticker, 1, "dropped"))[0]
            assert proxy.stats()["faults_fired"].get("drop_commit") == 1
            last = (await bids_while(bidder, ticker, 1, "last"))[0]
            await observer.wait_until(lambda: observer.last_seq >= last.reply["seq"], 5, "the last bid")
            await close_clients([bidder, observer])
            return committed, dropped, bidder, observer

        committed, dropped, bidder, observer = run_async(scenario(), timeout=60)
    stored = harness.history(db, lot["id"])
    stored_bids = {(bidder_name, price) for _, bidder_name, price in stored}
    assert committed.accepted, f"COMMIT reached the server: the bid is stored and must be acknowledged: {committed.reply}"
    assert ("bidder", committed.price) in stored_bids
    assert dropped.error_code == "unavailable", f"COMMIT never reached the server: not stored, 'unavailable': {dropped.reply}"
    assert ("bidder", dropped.price) not in stored_bids
    harness.check_acknowledged_are_stored([committed], stored)
    harness.check_stream(observer, stored)
    harness.check_stream(bidder, stored)
    assert "commit outcome unknown" in pod.log_text()


def test_an_outcome_still_unknown_is_in_doubt_and_published_once_known(dedicated_postgres, start_server):
    """COMMIT reached Postgres, and then no new connection can be opened to ask about it: the
    bidder gets 'in_doubt' within BID_TIMEOUT, never 'unavailable'; once Postgres can be asked again
    the pod learns that it committed and every client gets the new_bid."""
    pg = dedicated_postgres
    db = harness.migrate_and_seed(pg.create_database())
    lot = harness.create_auction(db, "In Doubt Lot")
    ticker = harness.PriceTicker()
    with FaultProxy("127.0.0.1", pg.port) as proxy:
        # One pool connection, so the bid surely runs on the connection opened while warming up.
        pod = start_server(db, env={"DATABASE_URL": faults.via_proxy(db.url, proxy.port), "DB_POOL_SIZE": "1",
                                    "BID_TIMEOUT": "3"})

        async def scenario():
            bidder = WsClient("bidder", pod.ws_url(lot["id"]))
            observer = WsClient("observer", pod.ws_url(lot["id"]))
            await open_clients([bidder, observer])
            assert (await bids_while(bidder, ticker, 1, "warm"))[0].accepted
            proxy.refuse()  # existing connections keep working, new ones are reset
            proxy.arm("cut_after_commit", writes_only=True)
            doubtful = (await bids_while(bidder, ticker, 1, "doubtful", timeout=10))[0]
            proxy.passthrough()
            healed = time.monotonic()
            seq = harness.history(db, lot["id"])[-1][0]
            await asyncio.gather(*(c.wait_until(lambda c=c: c.last_seq >= seq, 5, "the committed bid's new_bid")
                                   for c in (bidder, observer)))
            published_after = time.monotonic() - healed
            await close_clients([bidder, observer])
            return doubtful, published_after, bidder, observer

        doubtful, published_after, bidder, observer = run_async(scenario(), timeout=60)
    stored = harness.history(db, lot["id"])
    took = doubtful.replied - doubtful.sent
    assert doubtful.error_code == "in_doubt" and took <= 3 + SLACK, (
        f"an outcome unknown at BID_TIMEOUT (3 s) must be answered 'in_doubt' in time: {doubtful.reply} after {took:.2f} s")
    assert ("bidder", doubtful.price) == stored[-1][1:], "COMMIT reached the server: the bid is stored"
    harness.check_stream(observer, stored)
    harness.check_stream(bidder, stored)
    print(f"in_doubt after {took:.2f} s; published {published_after:.2f} s after Postgres could be asked again")
