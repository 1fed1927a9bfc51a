"""Timed auctions end to end (docs/timed-auctions.md): end times, soft close, minimum increments,
the closer on every pod, server_time, the API's and the CLI's new fields, migration 2.

Every test has a database of its own (migrated), pods started on free ports sharing it and, where
it says so, one Redis. Times are compared with the DATABASE's clock (clock_timestamp(), read on a
connection the test keeps), never with the test machine's alone: the database's clock is the one
that decides. Waits are for events (messages, rows); where a test is about time passing it waits
for the database's clock to reach a moment, with bounded margins (harness.timing_bound: scaled
under the sanitizers).

- a bid a moment before the end is accepted and extends it, seen on both pods;
- a bid a moment after the end is refused with bid_closed, even while the closer has not run;
- the end passes on two pods: one close row ('ended', within 1 s), one bid_closed then 4003 per client;
- a pod down at the end: the other pod closes it, or the pod closes it when it starts again; a
  new client of the closed auction is closed with 4003 at once (no initial_state, as protocol.md
  says of closed auctions);
- minimum increments at the boundary (price_too_low carries min_price);
- rows written before migration 2 (or by the Django app) have no end and increment 0.01;
- POST /api/bids validation of ends_at, duration, extend_window/extend_by, min_increment;
- server_time in initial_state and ping is the database's clock (also with a pod's clock skewed
  by libfaketime, when it is installed);
- `bid create --ends-in/--ends-at/--extend/--min-increment` and the seeded auction 4.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import harness
from harness import (TEST_SECRET_KEY, WsClient, close_clients, http_request, open_clients, run_async, run_cli,
                     run_cli_ok, timing_bound, ws_connect)

CHECK_INTERVAL = 0.25
POD_ENV = {"SECRET_KEY": TEST_SECRET_KEY, "CLOSE_CHECK_INTERVAL": str(CHECK_INTERVAL)}
# A closer that will not run during the test: the auction stays 'open' in the table past its end.
FROZEN_CLOSER_ENV = {"SECRET_KEY": TEST_SECRET_KEY, "CLOSE_CHECK_INTERVAL": "30"}
NEW_AUCTION_KEYS = {"ends_at", "extend_window", "extend_by", "min_increment", "min_price"}
MS = timedelta(milliseconds=1)
ISO_MS_Z = harness.ISO_MILLIS_Z


# --------------------------------------------------------------------------- time helpers

def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 UTC time with milliseconds and Z, as the server writes every time."""
    assert isinstance(text, str) and ISO_MS_Z.match(text), (
        f"{what}: a time must be ISO 8601 UTC with milliseconds and Z (e.g. 2026-12-02T17:00:00.000Z), got {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_z(moment: datetime) -> str:
    """moment as the server writes times: UTC, milliseconds (truncated), Z."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_offset(moment: datetime, hours: int, minutes: int = 0) -> str:
    """moment written with a ±HH:MM offset instead of Z (milliseconds kept)."""
    sign = 1 if hours >= 0 else -1
    zone = timezone(sign * timedelta(hours=abs(hours), minutes=minutes))
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


class DbClock:
    """The database's clock, read on one connection kept for the test."""

    def __init__(self, db: harness.Database):
        self.conn = db.connect()

    def now(self) -> datetime:
        with self.conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()")
            return cur.fetchone()[0]

    async def until(self, moment: datetime) -> datetime:
        """Waits (without blocking the event loop long) until the database's clock reads `moment`
        or later; returns that reading. Only for tests about time passing."""
        while True:
            now = self.now()
            if now >= moment:
                return now
            await asyncio.sleep(min(0.02, max(seconds(moment - now), 0.001)))

    def wait_until(self, moment: datetime) -> datetime:
        while True:
            now = self.now()
            if now >= moment:
                return now
            time.sleep(min(0.02, max(seconds(moment - now), 0.001)))

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def db(postgres):
    """A migrated database of this test alone (so no other test's expired auction is in it)."""
    database = postgres.create_database()
    run_cli_ok("migrate", database_url=database.url)
    return database


@pytest.fixture
def clock(request):
    """The database clock of the test's database (`db`, else `fresh_db`)."""
    database = request.getfixturevalue("db") if "db" in request.fixturenames else request.getfixturevalue("fresh_db")
    c = DbClock(database)
    yield c
    c.close()


def admin() -> str:
    return harness.admin_jwt()


def api_create(server: harness.Server, body: dict) -> harness.HttpReply:
    return http_request(server, "POST", "/api/bids", body, token=admin())


def create_ok(server: harness.Server, body: dict) -> dict:
    reply = api_create(server, body)
    assert reply.status == 201, f"POST /api/bids {body} must create the auction (201), got {reply}"
    auction = reply.json()
    check_timed_fields(auction, f"the auction created by POST /api/bids {body}")
    return auction


def api_get(server: harness.Server, bid_id: int) -> dict:
    reply = http_request(server, "GET", f"/api/bids/{bid_id}")
    assert reply.status == 200, f"GET /api/bids/{bid_id}: {reply}"
    auction = reply.json()
    check_timed_fields(auction, f"GET /api/bids/{bid_id}")
    return auction


def check_timed_fields(auction: dict, what: str) -> None:
    """The fields every auction object (API, initial_state.bid, CLI) has since timed auctions."""
    missing = NEW_AUCTION_KEYS - set(auction)
    assert not missing, f"{what}: the auction object must carry {sorted(NEW_AUCTION_KEYS)}; missing {sorted(missing)}: {auction}"
    if auction["ends_at"] is not None:
        parse_time(auction["ends_at"], f"{what}: ends_at")
    for key in ("extend_window", "extend_by"):
        assert auction[key] is None or (isinstance(auction[key], int) and not isinstance(auction[key], bool)), (
            f"{what}: {key} must be an integer or null: {auction}")
    for key in ("min_increment", "min_price"):
        assert isinstance(auction[key], str) and harness.MONEY.match(auction[key]), (
            f"{what}: {key} must be a price string with two decimals: {auction}")
    assert Decimal(auction["min_price"]) == Decimal(auction["current_price"]) + Decimal(auction["min_increment"]), (
        f"{what}: min_price must be current_price + min_increment: {auction}")


def auction_row(db: harness.Database, bid_id: int) -> tuple:
    """(status, ends_at, extend_window, extend_by, min_increment as text) from bids_bid."""
    rows = db.query("SELECT status, ends_at, extend_window, extend_by, min_increment::text FROM bids_bid WHERE id = %s",
                    (bid_id,))
    assert rows, f"auction {bid_id} must be in bids_bid"
    return rows[0]


def close_rows(db: harness.Database, bid_id: int) -> list[tuple]:
    """The rows of bidding_auction_closes for the auction: (closed_at, final_price, winner, reason)."""
    return db.query("SELECT closed_at, final_price::text, winner, reason FROM bidding_auction_closes WHERE bid_id = %s",
                    (bid_id,))


def payload(client: WsClient) -> list[dict]:
    """What the client received after initial_state, heartbeats left out."""
    return [m for m in client.messages if m.get("type") != "ping"]


def closed_messages(client: WsClient) -> list[dict]:
    return [m for m in client.messages if m.get("type") == "bid_closed"]


async def new_bid_of(client: WsClient, seq: int, what: str, timeout: float = 5.0) -> dict:
    return await client.wait_for(lambda m: m.get("type") == "new_bid" and m.get("seq") == seq, timeout,
                                 f"the new_bid of seq {seq} ({what})")


def check_closed_stream(client: WsClient, expected: dict) -> None:
    """Exactly one bid_closed, as expected, as the last message, then close 4003 'bid closed'."""
    got = closed_messages(client)
    assert got == [expected], f"{client.name} must receive bid_closed exactly once, as {expected}: got {got}"
    assert payload(client)[-1] == expected, (
        f"{client.name}: bid_closed must be the last message before the close, got {payload(client)[-3:]}")
    assert (client.close_code, client.close_reason) == (4003, "bid closed"), (
        f"{client.name}: after bid_closed the server must close with 4003 'bid closed', got {client.close_code} "
        f"{client.close_reason!r}")


def check_one_close(db: harness.Database, bid_id: int, ends_at: datetime, final_price: str, winner: str | None,
                    bound: float = 1.0) -> datetime:
    """Exactly one close row, reason 'ended', closed_at in [ends_at, ends_at + bound]. Returns closed_at."""
    rows = close_rows(db, bid_id)
    assert len(rows) == 1, f"auction {bid_id} must be closed exactly once (one row in bidding_auction_closes), got {rows}"
    closed_at, price, who, reason = rows[0]
    assert (price, who, reason) == (final_price, winner, "ended"), (
        f"auction {bid_id}: the close row must say final_price {final_price}, winner {winner!r}, reason 'ended': {rows[0]}")
    assert closed_at >= ends_at, (
        f"auction {bid_id} was closed EARLY: closed_at {closed_at} is before ends_at {ends_at} (database clock)")
    late = seconds(closed_at - ends_at)
    assert late <= timing_bound(bound), (
        f"auction {bid_id} must be closed within {timing_bound(bound)} s of its end: closed_at {closed_at} is {late:.3f} s "
        f"after ends_at {ends_at}")
    assert auction_row(db, bid_id)[0] == "closed", f"auction {bid_id}: bids_bid.status must be 'closed' after the close"
    return closed_at


def check_open_and_unclosed(db: harness.Database, bid_id: int, what: str) -> None:
    status = auction_row(db, bid_id)[0]
    rows = close_rows(db, bid_id)
    assert status == "open" and rows == [], f"{what}: auction {bid_id} must still be open with no close row: status {status!r}, closes {rows}"


# --------------------------------------------------------------------------- 1. soft close across pods

def test_a_bid_a_moment_before_the_end_is_accepted_and_extends_it_on_every_pod(start_server, db, redis, clock):
    margin = timing_bound(0.3)   # how long before the end the late bid is sent
    settle = timing_bound(0.6)   # > CHECK_INTERVAL + one transaction: a wrong close would have happened
    extend_by = math.ceil(margin + settle + 1.5)
    window = extend_by           # so every bid after an extension is inside the window
    duration = window + 2        # so a bid right after creation is outside it
    pod_a, pod_b = start_server.pods(2, db, env=POD_ENV)
    lot = create_ok(pod_a, {"name": "Soft Close Lot", "initial_price": "100.00", "duration": duration,
                            "extend_window": window, "extend_by": extend_by})
    bid_id = lot["id"]
    end0 = parse_time(lot["ends_at"], "the created auction's ends_at")
    assert (lot["status"], lot["extend_window"], lot["extend_by"], lot["min_increment"], lot["min_price"]) == (
        "open", window, extend_by, "0.01", "100.01"), f"the created auction: {lot}"

    async def scenario():
        on_a, on_b = WsClient("client-a", pod_a.ws_url(bid_id)), WsClient("client-b", pod_b.ws_url(bid_id))
        await open_clients([on_a, on_b])
        try:
            for c in (on_a, on_b):
                bid = c.state["bid"]
                check_timed_fields(bid, f"{c.name}: initial_state.bid")
                assert (bid["ends_at"], bid["extend_window"], bid["extend_by"], bid["min_price"]) == (
                    lot["ends_at"], window, extend_by, "100.01"), f"{c.name}: initial_state.bid must show the end and the soft close: {bid}"

            # Outside the window: no extension.
            ack0 = await on_a.bid_accepted("early", "100.01", "early")
            early = await new_bid_of(on_b, ack0["seq"], "the early bid, on pod B")
            t0 = parse_time(early["added_at"], "the early bid's added_at")
            assert seconds(end0 - t0) > window, f"setup: the early bid must come before the window opens ({t0} vs end {end0})"
            assert early["ends_at"] == lot["ends_at"], (
                f"a bid {seconds(end0 - t0):.3f} s before the end, outside the {window} s window, must not move the end: {early}")

            # One moment before the end: accepted, and the end moves to added_at + extend_by.
            await clock.until(end0 - timedelta(seconds=margin))
            ack1 = await on_a.bid_accepted("alice", "100.50", "late")
            late_a = await new_bid_of(on_a, ack1["seq"], "the late bid, on pod A")
            late_b = await new_bid_of(on_b, ack1["seq"], "the late bid, on pod B")
            assert late_a == late_b, f"both pods' clients must receive the same new_bid: {late_a} vs {late_b}"
            t1 = parse_time(late_a["added_at"], "the late bid's added_at")
            assert t1 < end0, f"the late bid was decided at {t1}, not before the end {end0}: it should have been refused"
            end1 = parse_time(late_a.get("ends_at"), "the late bid's new_bid.ends_at")
            assert end1 - t1 == timedelta(seconds=extend_by), (
                f"a bid {seconds(end0 - t1):.3f} s before the end, inside the {window} s window, must move the end to "
                f"added_at + {extend_by} s exactly: added_at {late_a['added_at']}, new_bid.ends_at {late_a.get('ends_at')}")
            assert end1 > end0, f"the extension must move the end later: {end1} vs {end0}"
            assert (late_a.get("min_increment"), "min_price" in late_a) == ("0.01", False), (
                f"new_bid must carry min_increment (not min_price, which is price + min_increment): {late_a}")
            api = api_get(pod_b, bid_id)
            assert (api["ends_at"], api["status"], api["min_price"]) == (late_a["ends_at"], "open", "100.51"), (
                f"the API must show the extended end: {api}")
            stored_end = auction_row(db, bid_id)[1]
            assert abs(stored_end - end1) < MS, f"bids_bid.ends_at must be the new end {end1}, is {stored_end}"
            for seq, after_it in ((ack0["seq"], end0), (ack1["seq"], end1)):
                (history_end,) = db.query("SELECT ends_at FROM bids_bidhistory WHERE id = %s", (seq,))[0]
                assert history_end is not None and abs(history_end - after_it) < MS, (
                    f"bids_bidhistory.ends_at of bid {seq} must be the auction's end after it, {after_it}; is {history_end}")
            joiner = WsClient("late-joiner-b", pod_b.ws_url(bid_id))
            await joiner.open()
            await joiner.close()
            assert joiner.state["bid"]["ends_at"] == late_a["ends_at"], (
                f"a client connecting after the extension must see the new end in initial_state: {joiner.state['bid']}")

            # Past the original end: still open, nobody was told it closed, bids are taken.
            await clock.until(end0 + timedelta(seconds=settle))
            assert clock.now() < end1, "setup: the check must happen before the extended end"
            check_open_and_unclosed(db, bid_id, f"{settle} s after the ORIGINAL end, before the extended one")
            for c in (on_a, on_b):
                assert not closed_messages(c) and not c.closed.is_set(), (
                    f"{c.name}: nothing may close before the extended end: {payload(c)[-3:]}, closed {c.close_code}")
            ack2 = await on_b.bid_accepted("bob", "101.00", "after-original-end")
            third_b = await new_bid_of(on_b, ack2["seq"], "the third bid, on pod B")
            third_a = await new_bid_of(on_a, ack2["seq"], "the third bid, on pod A")
            assert third_a == third_b, f"both pods' clients must receive the same new_bid: {third_a} vs {third_b}"
            t2 = parse_time(third_b["added_at"], "the third bid's added_at")
            end2 = parse_time(third_b.get("ends_at"), "the third bid's new_bid.ends_at")
            assert end2 == max(end1, t2 + timedelta(seconds=extend_by)), (
                f"a bid at {t2} (inside the window of the end {end1}) must move the end to max(end, added_at + {extend_by} s): "
                f"got {end2}")

            # It closes at the last end, not before.
            remaining = max(seconds(end2 - clock.now()), 0)
            for c in (on_a, on_b):
                await c.wait_for(lambda m: m.get("type") == "bid_closed", remaining + 3, "bid_closed at the extended end")
                await c.wait_closed(3, "close 4003 after bid_closed")
            return end2
        finally:
            await close_clients([on_a, on_b])

    end2 = run_async(scenario(), timeout=60)
    expected = {"type": "bid_closed", "bid_id": bid_id, "final_price": "101.00", "winner": "bob"}
    check_one_close(db, bid_id, end2, "101.00", "bob")
    assert [h[1:] for h in harness.history(db, bid_id)] == [("early", "100.01"), ("alice", "100.50"), ("bob", "101.00")]


# --------------------------------------------------------------------------- 2. a moment after the end

def test_a_bid_a_moment_after_the_end_is_refused_even_before_the_closer_runs(start_server, db, redis, clock):
    margin = timing_bound(0.3)
    duration = math.ceil(timing_bound(2))
    pod_a, pod_b = start_server.pods(2, db, env=FROZEN_CLOSER_ENV)
    lot = create_ok(pod_a, {"name": "Hard End Lot", "initial_price": "100.00", "duration": duration})
    bid_id, end = lot["id"], parse_time(lot["ends_at"], "ends_at")
    assert (lot["extend_window"], lot["extend_by"]) == (None, None), f"no soft close was asked for: {lot}"

    async def scenario():
        on_a, on_b = WsClient("client-a", pod_a.ws_url(bid_id)), WsClient("client-b", pod_b.ws_url(bid_id))
        await open_clients([on_a, on_b])
        try:
            await clock.until(end - timedelta(seconds=margin))
            ack = await on_a.bid_accepted("alice", "110.00", "before")
            seen = await new_bid_of(on_b, ack["seq"], "the bid before the end, on pod B")
            assert parse_time(seen["added_at"], "added_at") < end and seen.get("ends_at") == lot["ends_at"], (
                f"a bid before the end, without soft close, is accepted and leaves the end alone: {seen}")

            after = await clock.until(end)
            check_open_and_unclosed(db, bid_id, "setup (the closer is frozen by CLOSE_CHECK_INTERVAL=30)")
            replies = []
            for c, name, price in ((on_a, "bob", "120.00"), (on_b, "carol", "130.00")):
                reply, _ = await c.bid(name, price, f"after-{c.name}")
                replies.append((c.name, reply))
            return after, replies
        finally:
            await close_clients([on_a, on_b])

    after, replies = run_async(scenario(), timeout=60)
    for name, reply in replies:
        assert reply.get("type") == "error" and reply.get("code") == "bid_closed", (
            f"{name}: a bid sent when the database clock read {after} (the end was {end}) must be refused with "
            f"bid_closed, got {reply}")
    # The status was 'open' when the bids were sent (checked above, the closer frozen): the refusal
    # came from the end time, not from the status.
    assert [h[1:] for h in harness.history(db, bid_id)] == [("alice", "110.00")], "no bid after the end may be stored"


# --------------------------------------------------------------------------- 3. the end passes on two pods

CLIENTS_PER_POD = 3


def test_the_end_closes_the_auction_once_and_every_client_of_every_pod_is_told_once(start_server, db, redis, clock):
    duration = math.ceil(timing_bound(2))
    pods = start_server.pods(2, db, env=POD_ENV)
    lot = create_ok(pods[1], {"name": "Ending Lot", "initial_price": "50.00", "duration": duration})
    bid_id, end = lot["id"], parse_time(lot["ends_at"], "ends_at")
    db0, mono0 = clock.now(), time.monotonic()

    def db_time(mono: float) -> datetime:
        return db0 + timedelta(seconds=mono - mono0)

    async def scenario():
        clients = [WsClient(f"{p.name}-{i}", p.ws_url(bid_id)) for p in pods for i in range(CLIENTS_PER_POD)]
        await open_clients(clients)
        try:
            ack = await clients[0].bid_accepted("alice", "60.00", "a")
            ack = await clients[CLIENTS_PER_POD].bid_accepted("bob", "75.50", "b")
            await asyncio.gather(*(new_bid_of(c, ack["seq"], "bob's bid") for c in clients))
            assert clock.now() < end, "setup: the bids must come before the end"
            remaining = max(seconds(end - clock.now()), 0)
            await asyncio.gather(*(c.wait_for(lambda m: m.get("type") == "bid_closed", remaining + 3,
                                              "bid_closed at the end") for c in clients))
            await asyncio.gather(*(c.wait_closed(3, "close 4003 after bid_closed") for c in clients))
            return clients
        finally:
            await close_clients(clients)

    clients = run_async(scenario(), timeout=60)
    expected = {"type": "bid_closed", "bid_id": bid_id, "final_price": "75.50", "winner": "bob"}
    for c in clients:
        check_closed_stream(c, expected)
        arrived = db_time(c.arrival[id(closed_messages(c)[0])])
        assert arrived >= end - timedelta(seconds=0.05), f"{c.name} was told of the close at {arrived}, before the end {end}"
        assert seconds(arrived - end) <= timing_bound(1.5), (
            f"{c.name} must be told within a second or so of the end: told {seconds(arrived - end):.3f} s after it")
    check_one_close(db, bid_id, end, "75.50", "bob")
    api = api_get(pods[0], bid_id)
    assert (api["status"], api["current_price"], api["winner"]) == ("closed", "75.50", "bob"), f"the API after the end: {api}"
    assert [h[1:] for h in harness.history(db, bid_id)] == [("alice", "60.00"), ("bob", "75.50")]


# --------------------------------------------------------------------------- 4. a pod down at the end

def kill(server: harness.Server) -> None:
    server.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)


def check_seen_closed(server: harness.Server, bid_id: int, final_price: str, winner: str | None) -> None:
    """A new client of a closed auction is closed at once with 4003 'bid closed' and nothing else (the
    protocol's rule for closed auctions: no initial_state); the API says closed, with the winner."""
    async def connect():
        async with ws_connect(server.ws_url(bid_id)) as ws:
            return await harness.recv_until_closed(ws)

    messages, code, reason = run_async(connect())
    assert (code, reason) == (4003, "bid closed"), (
        f"{server.name}: a new client of the closed auction must be closed with 4003 'bid closed', got {code} {reason!r} "
        f"after {messages}")
    assert [m for m in messages if m.get("type") != "ping"] == [], (
        f"{server.name}: a closed auction's new client gets 4003 at once, no messages: {messages}")
    api = api_get(server, bid_id)
    assert (api["status"], api["current_price"], api["winner"]) == ("closed", final_price, winner), (
        f"{server.name}: GET /api/bids/{bid_id} must show the auction closed: {api}")


def test_a_pod_killed_before_the_end_and_restarted_after_it_shows_the_auction_closed(start_server, db, redis, clock):
    duration = math.ceil(timing_bound(2))
    pod_a, pod_b = start_server.pods(2, db, env=POD_ENV)
    lot = create_ok(pod_b, {"name": "Survivor Lot", "initial_price": "100.00", "duration": duration})
    bid_id, end = lot["id"], parse_time(lot["ends_at"], "ends_at")

    async def before_the_end():
        on_a, on_b = WsClient("client-a", pod_a.ws_url(bid_id)), WsClient("client-b", pod_b.ws_url(bid_id))
        await open_clients([on_a, on_b])
        try:
            ack = await on_a.bid_accepted("alice", "150.00", "a")
            await new_bid_of(on_b, ack["seq"], "alice's bid on pod B")
            await asyncio.to_thread(kill, pod_a)
            assert clock.now() < end, "setup: pod A must be killed before the end"
            await on_b.wait_for(lambda m: m.get("type") == "bid_closed", seconds(end - clock.now()) + 3,
                                "bid_closed from pod B, the pod alive at the end")
            await on_b.wait_closed(3)
            return on_b
        finally:
            await close_clients([on_a, on_b])

    on_b = run_async(before_the_end(), timeout=60)
    expected = {"type": "bid_closed", "bid_id": bid_id, "final_price": "150.00", "winner": "alice"}
    check_closed_stream(on_b, expected)
    check_one_close(db, bid_id, end, "150.00", "alice")

    restarted = start_server(db, env=POD_ENV, redis=redis, name="pod-a-restarted")
    check_seen_closed(restarted, bid_id, "150.00", "alice")
    assert len(close_rows(db, bid_id)) == 1, "the restarted pod must not close the auction a second time"


def test_with_every_pod_down_at_the_end_the_first_pod_to_start_closes_it(start_server, db, clock):
    duration = math.ceil(timing_bound(2))
    settle = timing_bound(0.6)
    pod = start_server(db, env=POD_ENV, name="only-pod")
    lot = create_ok(pod, {"name": "Lonely Lot", "initial_price": "10.00", "duration": duration})
    bid_id, end = lot["id"], parse_time(lot["ends_at"], "ends_at")

    async def bid_then_kill():
        c = WsClient("client", pod.ws_url(bid_id))
        await c.open()
        try:
            await c.bid_accepted("zoe", "12.00", "z")
            await asyncio.to_thread(kill, pod)
        finally:
            await close_clients([c])

    run_async(bid_then_kill())
    assert clock.now() < end, "setup: the only pod must be killed before the end"
    clock.wait_until(end + timedelta(seconds=settle))
    check_open_and_unclosed(db, bid_id, "with no pod running past the end (setup)")

    started_at = clock.now()
    again = start_server(db, env=POD_ENV, name="only-pod-restarted")
    up_at = clock.now()
    harness.wait_until(lambda: close_rows(db, bid_id), timeout=1 + CHECK_INTERVAL,
                       what="the restarted pod closing the overdue auction at startup (a row in bidding_auction_closes)")
    (closed_at, *_), = close_rows(db, bid_id)
    assert closed_at >= started_at, f"the close {closed_at} must be the restarted pod's (started at {started_at})"
    assert seconds(closed_at - up_at) <= timing_bound(1), (
        f"the first pod to start must close an overdue auction within CLOSE_CHECK_INTERVAL of starting: up at {up_at}, "
        f"closed at {closed_at}")
    check_one_close(db, bid_id, end, "12.00", "zoe", bound=seconds(closed_at - end) + 0.001)

    check_seen_closed(again, bid_id, "12.00", "zoe")
    assert [h[1:] for h in harness.history(db, bid_id)] == [("zoe", "12.00")], "no bid may have been stored after the end"


# --------------------------------------------------------------------------- 5. minimum increments

def test_minimum_increment_at_the_boundary(start_server, db):
    pod = start_server(db, env=POD_ENV, name="increments")
    lot = create_ok(pod, {"name": "Step Lot", "initial_price": "100.00", "min_increment": "1.00"})
    bid_id = lot["id"]
    assert (lot["ends_at"], lot["extend_window"], lot["extend_by"], lot["min_increment"], lot["min_price"]) == (
        None, None, None, "1.00", "101.00"), f"an auction with only a min_increment: {lot}"

    async def scenario():
        c = WsClient("bidder", pod.ws_url(bid_id))
        await c.open()
        try:
            bid = c.state["bid"]
            check_timed_fields(bid, "initial_state.bid")
            assert (bid["min_increment"], bid["min_price"]) == ("1.00", "101.00"), f"initial_state.bid: {bid}"

            below_first, _ = await c.bid("ann", "100.99", "below-first")
            first = await c.bid_accepted("ann", "101.00", "first")
            first_new = await new_bid_of(c, first["seq"], "the first bid")
            below, _ = await c.bid("bo", "101.99", "below")
            second = await c.bid_accepted("bo", "102.00", "second")
            second_new = await new_bid_of(c, second["seq"], "the second bid")
            late = WsClient("late-joiner", pod.ws_url(bid_id))
            await late.open()
            await late.close()
            return below_first, first_new, below, second_new, late.state["bid"]
        finally:
            await close_clients([c])

    below_first, first_new, below, second_new, late_bid = run_async(scenario())
    assert below_first.get("type") == "error" and below_first.get("code") == "price_too_low", (
        f"the first bid at initial + 0.99 must be refused price_too_low: {below_first}")
    assert (below_first.get("current_price"), below_first.get("min_price")) == ("100.00", "101.00"), (
        f"price_too_low must carry current_price and min_price: {below_first}")
    assert (first_new.get("price"), first_new.get("min_increment"), first_new.get("ends_at")) == (
        "101.00", "1.00", None), f"the first bid at exactly initial + 1.00 is accepted; its new_bid: {first_new}"
    assert below.get("type") == "error" and below.get("code") == "price_too_low", (
        f"current + 0.99 must be refused price_too_low: {below}")
    assert (below.get("current_price"), below.get("min_price")) == ("101.00", "102.00"), (
        f"price_too_low must carry current_price 101.00 and min_price 102.00: {below}")
    assert (second_new.get("price"), second_new.get("min_increment")) == ("102.00", "1.00"), (
        f"exactly current + 1.00 is accepted: {second_new}")
    assert (late_bid["current_price"], late_bid["min_price"]) == ("102.00", "103.00"), f"a new client's initial_state: {late_bid}"
    api = api_get(pod, bid_id)
    assert (api["current_price"], api["min_price"]) == ("102.00", "103.00"), f"the API: {api}"
    assert [h[1:] for h in harness.history(db, bid_id)] == [("ann", "101.00"), ("bo", "102.00")]
    # An operator's close through the API is recorded too, as reason 'closed'.
    reply = http_request(pod, "POST", f"/api/bids/{bid_id}/close", token=admin())
    assert reply.status == 200, f"POST /api/bids/{bid_id}/close: {reply}"
    rows = close_rows(db, bid_id)
    assert [r[1:] for r in rows] == [("102.00", "bo", "closed")], (
        f"an operator's close must write one row (final_price 102.00, winner bo, reason 'closed'): {rows}")


# --------------------------------------------------------------------------- 6. rows from before migration 2

# (table, column) -> (data_type, numeric_precision, numeric_scale, is_nullable)
MIGRATION_2_COLUMNS = {
    ("bids_bid", "ends_at"): ("timestamp with time zone", None, None, "YES"),
    ("bids_bid", "extend_window"): ("integer", 32, 0, "YES"),
    ("bids_bid", "extend_by"): ("integer", 32, 0, "YES"),
    ("bids_bid", "min_increment"): ("numeric", 10, 2, "NO"),
    ("bids_bidhistory", "ends_at"): ("timestamp with time zone", None, None, "YES"),
    ("bidding_auction_closes", "bid_id"): ("bigint", 64, 0, "NO"),
    ("bidding_auction_closes", "closed_at"): ("timestamp with time zone", None, None, None),
    ("bidding_auction_closes", "final_price"): ("numeric", 10, 2, None),
    ("bidding_auction_closes", "winner"): ("character varying", None, None, "YES"),
    ("bidding_auction_closes", "reason"): ("text", None, None, None),
}
# The contract says `reason text`; a varchar holds the two words as well.
TYPE_ALTERNATIVES = {("bidding_auction_closes", "reason"): {"text", "character varying"}}


def django_insert(db: harness.Database, name: str, initial_price: str, bids: list[tuple[str, str]]) -> tuple[int, list[int]]:
    """An auction and its history as the Django app writes them: only its own columns named."""
    (bid_id,) = db.query("INSERT INTO bids_bid (name, initial_price, created_at, status) VALUES (%s, %s, now(), 'open') "
                         "RETURNING id", (name, initial_price))[0]
    seqs = []
    for bidder, price in bids:
        (seq,) = db.query("INSERT INTO bids_bidhistory (bid_id, bidder_name, price, added_at, name) "
                          "VALUES (%s, %s, %s, now(), '') RETURNING id", (bid_id, bidder, price))[0]
        seqs.append(seq)
    return bid_id, seqs


def test_rows_from_before_migration_2_have_no_end_and_increment_one_cent(start_server, fresh_db, clock):
    fresh_db.execute(harness.DJANGO_SCHEMA)
    old_id, _ = django_insert(fresh_db, "Old Lamp", "50.00", [("zed", "75.00")])
    run_cli_ok("migrate", database_url=fresh_db.url)
    assert fresh_db.query("SELECT max(version) FROM bidding_schema_migrations") == [(2,)], "migrate must reach version 2"
    columns = {(t, c): (dt, p, s, n) for t, c, dt, p, s, n in fresh_db.query(
        """SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable
             FROM information_schema.columns WHERE table_schema = 'public'
              AND table_name IN ('bids_bid', 'bids_bidhistory', 'bidding_auction_closes')""")}
    for key, (data_type, precision, scale, nullable) in MIGRATION_2_COLUMNS.items():
        got = columns.get(key)
        assert got is not None, f"migration 2 must add {key[0]}.{key[1]}; columns: {sorted(columns)}"
        types = TYPE_ALTERNATIVES.get(key, {data_type})
        assert got[0] in types and got[1:3] == (precision, scale) and (nullable is None or got[3] == nullable), (
            f"{key[0]}.{key[1]} must be {data_type}({precision},{scale}) nullable={nullable}, is {got}")
    (pk,) = fresh_db.query("""SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a
                                ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                               WHERE i.indrelid = 'bidding_auction_closes'::regclass AND i.indisprimary""")[0]
    assert pk == ["bid_id"], f"bidding_auction_closes's primary key must be bid_id (one row per close): {pk}"
    # The Django app keeps writing after the migration, naming only its columns.
    new_id, _ = django_insert(fresh_db, "Newer Lamp", "20.00", [])
    for bid_id in (old_id, new_id):
        _, ends_at, window, by, increment = auction_row(fresh_db, bid_id)
        assert (ends_at, window, by, increment) == (None, None, None, "0.01"), (
            f"auction {bid_id}, written without the new columns, must read as no end, increment 0.01: {(ends_at, window, by, increment)}")
    assert fresh_db.query("SELECT count(*) FROM bids_bidhistory WHERE ends_at IS NOT NULL") == [(0,)]

    pod = start_server(fresh_db, env=POD_ENV, name="legacy")
    # A timed auction beside them, as a control: the closer runs on this pod meanwhile.
    control = create_ok(pod, {"name": "Control Lot", "duration": 1})

    async def scenario():
        old, new = WsClient("old", pod.ws_url(old_id)), WsClient("new", pod.ws_url(new_id))
        await open_clients([old, new])
        try:
            for c, price, min_price in ((old, "75.00", "75.01"), (new, "20.00", "20.01")):
                bid = c.state["bid"]
                check_timed_fields(bid, f"{c.name}: initial_state.bid")
                assert (bid["ends_at"], bid["extend_window"], bid["extend_by"], bid["min_increment"], bid["current_price"],
                        bid["min_price"]) == (None, None, None, "0.01", price, min_price), (
                    f"{c.name}: an auction from before the migration has no end and increment 0.01: {bid}")
            same, _ = await old.bid("amy", "75.00", "same")
            ack = await old.bid_accepted("amy", "75.01", "cent")
            cent = await new_bid_of(old, ack["seq"], "the bid of current + 0.01")
            ack_new = await new.bid_accepted("ben", "20.01", "first-cent")

            await harness.eventually(lambda: close_rows(fresh_db, control["id"]), 1 + 3,
                                     "the control auction's close (the closer is running)")
            (control_closed, *_), = close_rows(fresh_db, control["id"])
            await clock.until(control_closed + timedelta(seconds=4 * CHECK_INTERVAL))
            for c in (old, new):
                assert not closed_messages(c) and not c.closed.is_set(), (
                    f"{c.name}: an auction without an end must never close by itself: {payload(c)[-3:]} {c.close_code}")
            return same, cent, ack_new
        finally:
            await close_clients([old, new])

    same, cent, ack_new = run_async(scenario(), timeout=60)
    assert same.get("type") == "error" and same.get("code") == "price_too_low", f"the current price itself is too low: {same}"
    assert (same.get("current_price"), same.get("min_price")) == ("75.00", "75.01"), f"price_too_low: {same}"
    assert (cent.get("price"), "ends_at" in cent, "min_increment" in cent) == ("75.01", False, False), (
        f"current + 0.01 is accepted; an auction without an end at the default increment sends new_bid "
        f"as before: {cent}")
    assert ack_new["price"] == "20.01"
    for bid_id in (old_id, new_id):
        check_open_and_unclosed(fresh_db, bid_id, "an auction without an end, after several closer checks")
    assert fresh_db.query("SELECT count(*) FROM bids_bidhistory WHERE ends_at IS NOT NULL") == [(0,)], (
        "bids on an auction without an end store no ends_at")


# --------------------------------------------------------------------------- 7. API validation

def test_create_validation_of_ends_at_duration_extension_and_min_increment(start_server, db, clock):
    pod = start_server(db, env=POD_ENV, name="api")
    now = clock.now()
    future = now + timedelta(days=1)
    naive_future = (future.astimezone(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    bad = [
        ({"ends_at": iso_z(now - timedelta(minutes=1))}, {"invalid_ends_at"}, "an end in the past"),
        ({"ends_at": "tomorrow"}, {"invalid_ends_at"}, "an unparseable end"),
        ({"ends_at": ""}, {"invalid_ends_at"}, "an empty end"),
        ({"ends_at": f"{future.year + 1}-13-01T00:00:00Z"}, {"invalid_ends_at"}, "month 13"),
        ({"ends_at": f"{now.year if now.month <= 1 else now.year + 1}-02-30T12:00:00Z"}, {"invalid_ends_at"}, "February 30"),
        ({"ends_at": f"{future.strftime('%Y-%m-%d')}T25:00:00Z"}, {"invalid_ends_at"}, "hour 25"),
        ({"ends_at": naive_future}, {"invalid_ends_at"}, "an end without Z or offset"),
        ({"ends_at": iso_z(now + timedelta(days=366))}, {"invalid_ends_at"}, "an end more than 365 days ahead"),
        ({"ends_at": iso_z(future), "duration": 60}, {"invalid_ends_at"}, "both ends_at and duration"),
        ({"duration": 0}, {"invalid_ends_at"}, "duration 0"),
        ({"duration": -5}, {"invalid_ends_at"}, "a negative duration"),
        ({"duration": 31536001}, {"invalid_ends_at"}, "a duration over 365 days"),
        ({"duration": 1.5}, {"invalid_ends_at", "bad_request"}, "a fractional duration"),
        ({"duration": "60"}, {"bad_request"}, "a duration as a string"),
        ({"duration": True}, {"bad_request"}, "a duration as a boolean"),
        ({"ends_at": 1893456000}, {"bad_request"}, "an end as a number"),
        ({"duration": 60, "extend_window": 30}, {"invalid_extension"}, "extend_window without extend_by"),
        ({"duration": 60, "extend_by": 30}, {"invalid_extension"}, "extend_by without extend_window"),
        ({"extend_window": 30, "extend_by": 30}, {"invalid_extension"}, "a soft close without an end"),
        ({"duration": 60, "extend_window": 0, "extend_by": 30}, {"invalid_extension"}, "extend_window 0"),
        ({"duration": 60, "extend_window": -5, "extend_by": 30}, {"invalid_extension"}, "a negative extend_window"),
        ({"duration": 60, "extend_window": 30, "extend_by": 86401}, {"invalid_extension"}, "extend_by over 86400"),
        ({"duration": 60, "extend_window": 86401, "extend_by": 30}, {"invalid_extension"}, "extend_window over 86400"),
        ({"duration": 60, "extend_window": "30", "extend_by": 30}, {"bad_request"}, "extend_window as a string"),
        ({"min_increment": 0}, {"invalid_price"}, "min_increment 0"),
        ({"min_increment": "-1.00"}, {"invalid_price"}, "a negative min_increment"),
        ({"min_increment": "abc"}, {"invalid_price"}, "a min_increment that is not a number"),
        ({"min_increment": "0.004"}, {"invalid_price"}, "a min_increment that rounds to 0.00"),
        ({"min_increment": "100000000.00"}, {"invalid_price"}, "a min_increment over 99999999.99"),
        ({"min_increment": True}, {"bad_request"}, "a min_increment as a boolean"),
    ]
    count_before = db.query("SELECT count(*) FROM bids_bid")[0][0]
    problems = []
    for i, (fields, codes, what) in enumerate(bad):
        body = {"name": f"Bad Lot {i}", "initial_price": "100.00", **fields}
        reply = api_create(pod, body)
        code = None
        if reply.content_type.startswith("application/json"):
            try:
                code = reply.json().get("error")
            except (AssertionError, AttributeError):
                code = None
        if reply.status != 400 or code not in codes:
            problems.append(f"{what}: {json.dumps(fields)} must be 400 {'/'.join(sorted(codes))}, got {reply}")
    assert not problems, "POST /api/bids must refuse each bad body with its code:\n" + "\n".join(problems)
    assert db.query("SELECT count(*) FROM bids_bid")[0][0] == count_before, "nothing may be stored for a refused body"

    # The accepted forms, at the boundaries too.
    before = clock.now()
    offset_end = before + timedelta(hours=1)
    with_offset = create_ok(pod, {"name": "Offset Lot", "ends_at": iso_offset(offset_end, 2)})
    assert with_offset["ends_at"] == iso_z(offset_end), (
        f"an end given with +02:00 must be stored and shown as the same instant in UTC ({iso_z(offset_end)}): {with_offset}")
    minus = create_ok(pod, {"name": "Minus Offset Lot", "ends_at": iso_offset(offset_end, -5, 30)})
    assert minus["ends_at"] == iso_z(offset_end), f"an end given with -05:30: {minus} (expected {iso_z(offset_end)})"
    assert (with_offset["extend_window"], with_offset["extend_by"], with_offset["min_increment"], with_offset["min_price"]) == (
        None, None, "0.01", "100.01"), f"the defaults: {with_offset}"

    timed = create_ok(pod, {"name": "Duration Lot", "initial_price": "10", "duration": 60, "extend_window": 30,
                            "extend_by": 45, "min_increment": "2.50"})
    after = clock.now()
    ends = parse_time(timed["ends_at"], "ends_at")
    assert truncate_ms(before + timedelta(seconds=60)) <= ends <= after + timedelta(seconds=60), (
        f"duration 60 must end 60 s after the database's now (between {before} and {after} + 60 s): {timed['ends_at']}")
    assert (timed["extend_window"], timed["extend_by"], timed["min_increment"], timed["min_price"], timed["status"]) == (
        30, 45, "2.50", "12.50", "open"), f"the created auction: {timed}"
    stored = auction_row(db, timed["id"])
    assert stored[0] == "open" and abs(stored[1] - ends) < MS and stored[2:] == (30, 45, "2.50"), f"the stored row: {stored}"
    assert api_get(pod, timed["id"]) == timed, "GET must show what POST returned"

    numeric = create_ok(pod, {"name": "Numeric Step Lot", "min_increment": 5})
    assert (numeric["ends_at"], numeric["min_increment"], numeric["min_price"]) == (None, "5.00", "105.00"), f"{numeric}"
    longest = create_ok(pod, {"name": "Longest Lot", "duration": 31536000})
    assert seconds(parse_time(longest["ends_at"], "ends_at") - before) >= 31536000 - 1, f"duration 31536000: {longest}"
    far = create_ok(pod, {"name": "Far End Lot", "ends_at": iso_z(clock.now() + timedelta(days=365, minutes=-1))})
    assert far["ends_at"] is not None
    wide = create_ok(pod, {"name": "Wide Window Lot", "duration": 10, "extend_window": 86400, "extend_by": 1})
    assert (wide["extend_window"], wide["extend_by"]) == (86400, 1), f"{wide}"
    biggest = create_ok(pod, {"name": "Biggest Step Lot", "initial_price": "1.00", "min_increment": "99999999.99"})
    assert (biggest["min_increment"], biggest["min_price"]) == ("99999999.99", "100000000.99"), (
        f"min_increment 99999999.99 is allowed; min_price is current_price + min_increment: {biggest}")
    assert db.query("SELECT count(*) FROM bids_bid")[0][0] == count_before + 8, "each accepted body stores one auction"


# --------------------------------------------------------------------------- 8. server_time

def check_server_time(text, db_after: datetime, what: str, latency: float) -> datetime:
    """server_time must be the database's clock: within 0.5 s of clock_timestamp() read right after
    the message arrived (and not later than it by more than that)."""
    server_time = parse_time(text, what)
    ahead = seconds(server_time - db_after)
    assert -(0.5 + latency) <= ahead <= 0.5, (
        f"{what}: server_time {text} must be the database's clock within 0.5 s; clock_timestamp() right after it "
        f"arrived was {iso_z(db_after)} ({ahead:+.3f} s)")
    return server_time


async def server_times(server: harness.Server, bid_id: int, clock: DbClock, pings: int) -> list[tuple[str, dict, datetime]]:
    """initial_state and the first `pings` pings: (kind, message, database clock right after it arrived)."""
    seen = []
    async with ws_connect(server.ws_url(bid_id)) as ws:
        deadline = asyncio.get_running_loop().time() + timing_bound(10)
        while len([s for s in seen if s[0] == "ping"]) < pings:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(deadline - asyncio.get_running_loop().time(), 0.01))
            except asyncio.TimeoutError:
                raise AssertionError(f"{server.name}: {pings} pings did not arrive within {timing_bound(10)} s "
                                     f"(HEARTBEAT_INTERVAL=0.2); got {[s[1] for s in seen]}") from None
            at = clock.now()
            message = json.loads(raw)
            if not seen:
                assert message.get("type") == "initial_state", f"the first message must be initial_state: {message}"
                seen.append(("initial_state", message, at))
            elif message.get("type") == "ping":
                seen.append(("ping", message, at))
    return seen


def test_server_time_in_initial_state_and_ping_is_the_database_clock(start_server, db, clock):
    pod = start_server(db, env={**POD_ENV, "HEARTBEAT_INTERVAL": "0.2"}, name="heartbeat")
    lot = create_ok(pod, {"name": "Clock Lot"})
    seen = run_async(server_times(pod, lot["id"], clock, pings=3))
    latency = timing_bound(0.1)
    kind, state, at = seen[0]
    check_timed_fields(state["bid"], "initial_state.bid")
    check_server_time(state.get("server_time"), at, "initial_state.server_time", latency)
    times = []
    for kind, message, at in seen[1:]:
        assert set(message) == {"type", "server_time"}, f"a ping is {{\"type\":\"ping\",\"server_time\":...}}: {message}"
        times.append(check_server_time(message["server_time"], at, "ping.server_time", latency))
    assert all(a < b for a, b in zip(times, times[1:])), f"successive pings' server_time must increase: {times}"


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) ")


def skewed_env(offset: str) -> dict[str, str]:
    return {**POD_ENV, "HEARTBEAT_INTERVAL": "0.2", "LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": offset,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}


def check_skew(server: harness.Server, expected: float, real_start: datetime) -> None:
    """The pod's own clock really is `expected` seconds off: its first log line's time says so."""
    for line in server.log_text().splitlines():
        match = LOG_TIME.match(line)
        if match:
            logged = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
            off = seconds(logged - real_start)
            assert abs(off - expected) < 5, f"setup: {server.name}'s clock must be {expected:+} s off (libfaketime), is {off:+.1f} s"
            return
    raise AssertionError(f"setup: no timestamped line in {server.name}'s log")


@pytest.mark.skipif(not FAKETIME_LIB.exists() or bool(harness.SANITIZER),
                    reason="needs libfaketime (Debian package libfaketime), and no sanitizer (LD_PRELOAD)")
def test_pods_with_skewed_clocks_use_the_database_clock(start_server, db, redis, clock):
    """A pod whose own clock is 30 s ahead must neither close early nor refuse a bid before the end,
    and both its server_time and that of a pod 30 s behind are the database's clock."""
    real_start = datetime.now(timezone.utc)
    ahead = start_server(db, env=skewed_env("+30"), redis=redis, name="pod-ahead")
    behind = start_server(db, env=skewed_env("-30"), redis=redis, name="pod-behind")
    check_skew(ahead, 30, real_start)
    check_skew(behind, -30, real_start)
    margin = timing_bound(0.3)
    duration = 3
    before = clock.now()
    lot = create_ok(ahead, {"name": "Skewed Lot", "initial_price": "100.00", "duration": duration})
    after = clock.now()
    bid_id, end = lot["id"], parse_time(lot["ends_at"], "ends_at")
    assert truncate_ms(before) + timedelta(seconds=duration) <= end <= after + timedelta(seconds=duration) + MS, (
        f"pod-ahead must compute ends_at from the database's clock: got {lot['ends_at']}, expected "
        f"{iso_z(before + timedelta(seconds=duration))}..{iso_z(after + timedelta(seconds=duration))}")

    async def scenario():
        seen = await asyncio.gather(server_times(ahead, bid_id, clock, pings=2), server_times(behind, bid_id, clock, pings=2))
        on_ahead, on_behind = WsClient("client-ahead", ahead.ws_url(bid_id)), WsClient("client-behind", behind.ws_url(bid_id))
        await open_clients([on_ahead, on_behind])
        try:
            assert clock.now() < end - timedelta(seconds=margin), "setup: the clients must be connected before the last moment"
            await clock.until(end - timedelta(seconds=margin))
            reply, _ = await on_ahead.bid("alice", "110.00", "before-end")
            remaining = max(seconds(end - clock.now()), 0)
            for c in (on_ahead, on_behind):
                await c.wait_for(lambda m: m.get("type") == "bid_closed", remaining + 3, "bid_closed")
                await c.wait_closed(3)
            return seen, reply, (on_ahead, on_behind)
        finally:
            await close_clients([on_ahead, on_behind])

    seen, reply, clients = run_async(scenario(), timeout=60)
    for server, messages in zip((ahead, behind), seen):
        for kind, message, at in messages:
            check_server_time(message.get("server_time"), at, f"{server.name} (own clock off by 30 s): {kind}.server_time",
                              timing_bound(0.1))
    assert reply.get("type") == "bid_accepted", (
        f"a bid {margin} s before the end (database clock) on a pod whose clock is 30 s ahead must be accepted: {reply}")
    expected = {"type": "bid_closed", "bid_id": bid_id, "final_price": "110.00", "winner": "alice"}
    for c in clients:
        check_closed_stream(c, expected)
    check_one_close(db, bid_id, end, "110.00", "alice")


# --------------------------------------------------------------------------- 9. CLI and seed

def cli_json(db: harness.Database, *args: str) -> dict:
    result = run_cli_ok(*args, database_url=db.url)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"`bidding-server {' '.join(args)}` must print one JSON line, printed:\n{result.stdout}"
    auction = json.loads(lines[0])
    check_timed_fields(auction, f"`bidding-server {' '.join(args)}`")
    return auction


def check_ends_in(auction: dict, before: datetime, after: datetime, duration: float, what: str) -> datetime:
    ends = parse_time(auction["ends_at"], f"{what}: ends_at")
    low, high = truncate_ms(before + timedelta(seconds=duration)), after + timedelta(seconds=duration) + MS
    assert low <= ends <= high, f"{what}: ends_at must be the database's now + {duration} s ({iso_z(low)}..{iso_z(high)}): {auction['ends_at']}"
    return ends


def pocket_watch(db: harness.Database) -> tuple:
    rows = db.query("SELECT name, status, ends_at, extend_window, extend_by, min_increment::text FROM bids_bid WHERE id = 4")
    assert rows, "seed must create auction 4"
    return rows[0]


def test_cli_bid_create_with_an_end_and_the_seeded_timed_auction(start_server, fresh_db, clock):
    db = fresh_db
    run_cli_ok("migrate", database_url=db.url)
    before = clock.now()
    run_cli_ok("seed", database_url=db.url)
    after = clock.now()
    seeded = db.query("SELECT id, name, status, ends_at, min_increment::text FROM bids_bid WHERE id <= 3 ORDER BY id")
    assert seeded == [(1, "Vintage Camera", "open", None, "0.01"), (2, "Antique Vase", "open", None, "0.01"),
                      (3, "Rare Book", "closed", None, "0.01")], f"seed keeps auctions 1-3 as they were: {seeded}"
    name, status, ends_at, window, by, increment = pocket_watch(db)
    assert (name, status, window, by, increment) == ("Pocket Watch", "open", 120, 120, "1.00"), (
        f"auction 4 is the timed demo (min_increment 1.00, soft close 120/120): {pocket_watch(db)}")
    assert before + timedelta(minutes=10) - MS <= ends_at <= after + timedelta(minutes=10), (
        f"auction 4 must end 10 minutes after the seed ({before}..{after} + 10 min): {ends_at}")

    # bid create with an end, a soft close and a step.
    before = clock.now()
    lamp = cli_json(db, "bid", "create", "--name", "Timed Lamp", "--initial-price", "25", "--ends-in", "10m",
                    "--extend", "2m/3m", "--min-increment", "1.00")
    after = clock.now()
    assert lamp["id"] > 4, f"bid create must not reuse the seeded ids: {lamp}"
    assert (lamp["name"], lamp["status"], lamp["initial_price"], lamp["current_price"], lamp["extend_window"],
            lamp["extend_by"], lamp["min_increment"], lamp["min_price"]) == (
        "Timed Lamp", "open", "25.00", "25.00", 120, 180, "1.00", "26.00"), f"bid create printed: {lamp}"
    lamp_end = check_ends_in(lamp, before, after, 600, "--ends-in 10m")
    row = auction_row(db, lamp["id"])
    assert abs(row[1] - lamp_end) < MS and row[2:] == (120, 180, "1.00"), f"what bid create stored: {row}"
    for spelling, expected in (("1h30m", 5400), ("90", 90), ("90s", 90), ("2d", 172800)):
        before = clock.now()
        made = cli_json(db, "bid", "create", "--name", f"Lot {spelling}", "--ends-in", spelling)
        check_ends_in(made, before, clock.now(), expected, f"--ends-in {spelling}")
        assert (made["extend_window"], made["extend_by"], made["min_increment"]) == (None, None, "0.01"), f"{made}"
    at = clock.now() + timedelta(days=1)
    fixed = cli_json(db, "bid", "create", "--name", "Fixed End Lot", "--ends-at", iso_offset(at, 2))
    assert fixed["ends_at"] == iso_z(at), f"--ends-at with +02:00 must be that instant in UTC ({iso_z(at)}): {fixed}"
    plain = cli_json(db, "bid", "create", "--name", "Plain Lot")
    assert (plain["ends_at"], plain["extend_window"], plain["extend_by"], plain["min_increment"]) == (None, None, None, "0.01")
    count = db.query("SELECT count(*) FROM bids_bid")[0][0]
    bad = run_cli("bid", "create", "--name", "Bad Lot", "--ends-in", "5x", database_url=db.url)
    assert bad.returncode == 2, f"--ends-in 5x is bad usage (exit 2): exit {bad.returncode}, {bad.stdout}{bad.stderr}"
    assert db.query("SELECT count(*) FROM bids_bid")[0][0] == count, "nothing is created by a bad command"

    # Bids on the demo, then it closes; a new seed restarts it.
    pod = start_server(db, env=POD_ENV, name="seeded")

    async def bid_on_the_demo():
        c = WsClient("demo", pod.ws_url(4))
        await c.open()
        try:
            first = Decimal(c.state["bid"]["min_price"])
            assert first == Decimal(c.state["bid"]["initial_price"]) + 1, f"the demo's step is 1.00: {c.state['bid']}"
            await c.bid_accepted("ann", str(first), "1")
            await c.bid_accepted("bo", str(first + 1), "2")
        finally:
            await close_clients([c])

    run_async(bid_on_the_demo())
    run_cli_ok("bid", "close", "4", database_url=db.url)
    first_close = close_rows(db, 4)
    assert [r[3] for r in first_close] == ["closed"], f"an operator's close is recorded with reason 'closed': {first_close}"
    old_end = pocket_watch(db)[2]
    other_before = db.query("SELECT id, status, ends_at FROM bids_bid WHERE id <> 4 ORDER BY id")

    before = clock.now()
    run_cli_ok("migrate", "--seed", database_url=db.url)
    after = clock.now()
    name, status, ends_at, window, by, increment = pocket_watch(db)
    assert (status, window, by, increment) == ("open", 120, 120, "1.00"), f"a new seed must open auction 4 again: {pocket_watch(db)}"
    assert before + timedelta(minutes=10) - MS <= ends_at <= after + timedelta(minutes=10) and ends_at > old_end, (
        f"a new seed must give auction 4 a new end 10 minutes ahead: {ends_at} (was {old_end})")
    assert harness.history(db, 4) == [], "a new seed removes auction 4's bids"
    assert db.query("SELECT id, status, ends_at FROM bids_bid WHERE id <> 4 ORDER BY id") == other_before, (
        "a new seed must leave the other auctions alone")

    async def view():
        c = WsClient("demo-again", pod.ws_url(4))
        await c.open()
        await c.close()
        return c.state["bid"]

    state = run_async(view())
    assert (state["status"], state["last_seq"], state["current_price"]) == ("open", 0, state["initial_price"]) and \
        abs(parse_time(state["ends_at"], "ends_at") - ends_at) < MS, f"the restarted demo as a client sees it: {state}"
    run_cli_ok("bid", "close", "4", database_url=db.url)
    closes = close_rows(db, 4)
    assert len(closes) == 1 and closes[0][3] == "closed" and closes[0][0] > first_close[0][0], (
        f"closing the restarted demo must record that close (one row, the new one): {closes} (first close: {first_close})")
