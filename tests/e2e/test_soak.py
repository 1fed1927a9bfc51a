"""The soak: two pods, 500 clients on five auctions, continuous bidding with bursts beyond capacity,
and a fault every few seconds for SOAK_SECONDS (90 by default): a pod killed with SIGKILL and
restarted, Postgres restarted and frozen, Redis killed and frozen, a connection cut right after
COMMIT. Clients that lose their connection reconnect (to any live pod) with ?since=.

Checked at the end, against Postgres, as Jepsen does:
- every bid_accepted is in Postgres with its seq, bidder and price;
- no bid answered unavailable or overloaded is in Postgres;
- every in_doubt bid is either stored (and then in every feed) or not: both are counted;
- every client holds exactly Postgres's sequence from its first initial_state on, across its
  reconnections;
- no pod died but the ones the test killed.
One summary line gives the counts.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import time

import websockets

import faults
import harness
from faults import FaultProxy

SOAK_SECONDS = float(os.environ.get("BIDDING_SOAK_SECONDS", "90"))
AUCTIONS = 5
CLIENTS_PER_AUCTION = 100
BIDDERS_PER_AUCTION = 4
FAULT_EVERY = 6.0
# A small lane, so that the bursts go beyond what a pod holds for one auction (answered overloaded).
POD_ENV = {"HISTORY_LIMIT": "10000", "DRAIN_TIMEOUT": "3", "LOG_LEVEL": "info", "MAX_PENDING_BIDS_PER_AUCTION": "64"}


class Pods:
    """The live pods' URLs, which change when a pod is killed and started again."""

    def __init__(self, servers: list[harness.Server]):
        self.servers = servers

    def url(self, index: int, auction: int, since: int | None) -> str:
        live = [s for s in self.servers if s.alive()]
        server = live[index % len(live)] if live else self.servers[index % len(self.servers)]
        return server.ws_url(auction) + (f"?since={since}" if since is not None else "")


class SoakClient:
    """A client that follows one auction across reconnections, keeping every seq it was given."""

    def __init__(self, name: str, auction: int, index: int, pods: Pods, stop: asyncio.Event,
                 ticker: harness.PriceTicker | None = None):
        self.name, self.auction, self.index, self.pods, self.stop = name, auction, index, pods, stop
        self.ticker = ticker
        self.first_last_seq: int | None = None
        self.seqs: list[int] = []  # from since-snapshots and new_bids, in arrival order
        self.rows: dict[int, tuple[str, str]] = {}
        self.connections = 0
        self.closes: dict[str, int] = {}
        self.truncated = False
        self.records: list[harness.BidRecord] = []
        self.unknown: list[harness.BidRecord] = []  # sent, connection lost before the reply
        self.ws = None
        self.k = 0

    @property
    def last(self) -> int | None:
        return self.seqs[-1] if self.seqs else self.first_last_seq

    def take(self, seq: int, bidder: str, price: str) -> None:
        if self.seqs and seq <= self.seqs[-1]:
            self.seqs.append(seq)  # kept, so that the final check reports it
            return
        self.seqs.append(seq)
        self.rows[seq] = (bidder, price)

    async def run(self) -> None:
        while not self.stop.is_set():
            url = self.pods.url(self.index + self.connections, self.auction, self.last if self.connections else None)
            self.connections += 1
            try:
                async with harness.ws_connect(url, open_timeout=5, close_timeout=1) as ws:
                    self.ws = ws
                    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert first["type"] == "initial_state", first
                    if self.first_last_seq is None:
                        self.first_last_seq = first["bid"]["last_seq"]
                    elif "since" in first:
                        self.truncated |= bool(first.get("truncated"))
                        for entry in first["data"]:
                            self.take(entry["seq"], entry["bidder"], entry["price"])
                    self._pending = {}
                    reader = asyncio.ensure_future(self._read(ws))
                    try:
                        if self.ticker is not None:
                            await self._bid(ws, reader)
                        else:
                            await reader
                    finally:
                        reader.cancel()
                        await asyncio.gather(reader, return_exceptions=True)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as error:
                key = type(error).__name__
                if isinstance(error, websockets.exceptions.ConnectionClosed) and error.rcvd is not None:
                    key = str(error.rcvd.code)
                self.closes[key] = self.closes.get(key, 0) + 1
            finally:
                self.ws = None
                for r in self.records:
                    if r.reply is None and r not in self.unknown:
                        self.unknown.append(r)
            if not self.stop.is_set():
                await asyncio.sleep(0.2 + random.random() * 0.3)

    async def _read(self, ws) -> None:
        pending = self._pending
        async for raw in ws:
            m = json.loads(raw)
            kind = m.get("type")
            if kind == "new_bid":
                self.take(m["seq"], m["bidder"], m["price"])
            elif kind in ("bid_accepted", "error") and m.get("ref") in pending:
                record = pending.pop(m["ref"])
                record.reply = m
                record.replied = time.monotonic()
                if not record.future.done():
                    record.future.set_result(m)

    async def _bid(self, ws, reader) -> None:
        while not self.stop.is_set() and not reader.done():
            price = self.ticker.next()
            ref = f"{self.name}-{self.k}"
            self.k += 1
            record = harness.BidRecord(self.name, self.name, price, ref, time.monotonic())
            record.future = asyncio.get_running_loop().create_future()
            self._pending[ref] = record
            self.records.append(record)
            await ws.send(harness.bid_frame(self.name, json.dumps(price), ref))
            done, _ = await asyncio.wait([record.future, reader], timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if record.future not in done:
                if reader.done():
                    return  # connection gone: reply unknown
                raise AssertionError(f"{self.name}: bid {ref} got no reply within 10 s on an open connection")
            await asyncio.sleep(0.15 + random.random() * 0.1)


async def burst(pods: Pods, auction: int, ticker: harness.PriceTicker, tag: str,
                records: list[tuple[int, harness.BidRecord]]) -> None:
    """300 bids at once over 10 connections: far beyond what one lane takes."""
    async def one(i: int):
        mine: dict[str, harness.BidRecord] = {}
        try:
            async with harness.ws_connect(pods.url(i, auction, None), open_timeout=5) as ws:
                await asyncio.wait_for(ws.recv(), 5)
                for k in range(30):
                    price = ticker.next()
                    ref = f"burst-{tag}-{i}-{k}"
                    mine[ref] = harness.BidRecord(f"burst-{tag}-{i}", f"burst-{tag}", price, ref, time.monotonic())
                    await ws.send(harness.bid_frame(f"burst-{tag}", json.dumps(price), ref))
                while any(r.reply is None for r in mine.values()):
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if m.get("ref") in mine:
                        mine[m["ref"]].reply = m
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            pass  # a fault took the connection: the replies that came are kept
        records.extend((auction, r) for r in mine.values() if r.reply is not None)
    await asyncio.gather(*(one(i) for i in range(10)))


def test_soak_under_continuous_faults(dedicated_postgres, dedicated_redis, start_server):
    pg, redis = dedicated_postgres, dedicated_redis
    db = harness.migrate_and_seed(pg.create_database())
    lots = [harness.create_auction(db, f"Soak Lot {i}")["id"] for i in range(AUCTIONS)]
    with FaultProxy("127.0.0.1", pg.port) as proxy:
        pod_a = start_server(db, redis=redis, name="pod-a",
                             env={**POD_ENV, "DATABASE_URL": faults.via_proxy(db.url, proxy.port)})
        pod_b = start_server(db, redis=redis, name="pod-b", env=POD_ENV)
        pods = Pods([pod_a, pod_b])
        killed: list[harness.Server] = []
        fault_log: list[str] = []

        async def scenario():
            stop = asyncio.Event()
            tickers = {lot: harness.PriceTicker() for lot in lots}
            clients = []
            for a, lot in enumerate(lots):
                for i in range(CLIENTS_PER_AUCTION):
                    bidder = i < BIDDERS_PER_AUCTION
                    clients.append(SoakClient(f"{'bidder' if bidder else 'obs'}-{a}-{i}", lot, i, pods, stop,
                                              tickers[lot] if bidder else None))
            tasks = [asyncio.ensure_future(c.run()) for c in clients]
            burst_records: list[tuple[int, harness.BidRecord]] = []

            async def faults_loop():
                kinds = ["kill_pod", "restart_pg", "freeze_pg", "kill_redis", "freeze_redis", "cut_commit"]
                n = 0
                while not stop.is_set():
                    await asyncio.sleep(FAULT_EVERY)
                    if stop.is_set():
                        return
                    kind = kinds[n % len(kinds)]
                    n += 1
                    fault_log.append(kind)
                    if kind == "kill_pod":
                        victim = pods.servers[1]
                        victim.exit_expected = True
                        faults.kill9(victim.proc.pid)
                        killed.append(victim)
                        await asyncio.sleep(1)
                        pods.servers[1] = await asyncio.to_thread(start_server, db, redis=redis, name="pod-b",
                                                                  env=POD_ENV)
                    elif kind == "restart_pg":
                        await asyncio.to_thread(pg.halt, "fast")
                        await asyncio.sleep(0.5)
                        await asyncio.to_thread(pg.resume)
                    elif kind == "freeze_pg":
                        with faults.frozen(pg):
                            await asyncio.sleep(2)
                    elif kind == "kill_redis":
                        await asyncio.to_thread(redis.kill)
                        await asyncio.sleep(1)
                        await asyncio.to_thread(redis.restart)
                    elif kind == "freeze_redis":
                        with faults.frozen(redis):
                            await asyncio.sleep(2)
                    elif kind == "cut_commit":
                        proxy.arm("cut_after_commit", writes_only=True)
                    # a burst beyond capacity after every other fault
                    if n % 2 == 0:
                        lot = lots[n % len(lots)]
                        await burst(pods, lot, tickers[lot], str(n), burst_records)

            fault_task = asyncio.ensure_future(faults_loop())
            await asyncio.sleep(SOAK_SECONDS)
            stop.set()
            await fault_task
            proxy.disarm()
            for c in clients:
                if c.ws is not None:
                    await c.ws.close()
            # Quiescence: the clients' loops end; then every client must catch up (reconnecting
            # with since= if it has to) to the last stored seq of its auction.
            await asyncio.wait(tasks, timeout=30)
            assert all(t.done() for t in tasks), "every client's loop ends once the soak stops"
            final = {lot: (harness.history(db, lot) or [(0,)])[-1][0] for lot in lots}
            catch_up = asyncio.Event()
            for c in clients:
                c.stop = catch_up
                c.ticker = None
            late = [c for c in clients if (c.last or 0) < final[c.auction]]
            catchers = [asyncio.ensure_future(c.run()) for c in late]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any((c.last or 0) < final[c.auction] for c in late):
                await asyncio.sleep(0.2)
            catch_up.set()
            for c in late:
                if c.ws is not None:
                    await c.ws.close()
            if catchers:
                await asyncio.wait(catchers, timeout=10)
            return clients, burst_records, final

        clients, burst_records, final = harness.run_async(scenario(), timeout=SOAK_SECONDS + 240)

    stored_by_lot = {lot: harness.history(db, lot) for lot in lots}
    stored_bids = {(lot, bidder, price) for lot, rows in stored_by_lot.items() for _, bidder, price in rows}
    records = [(c.auction, r) for c in clients for r in c.records if r.reply is not None]
    records += burst_records
    by_code: dict[str, int] = {}
    in_doubt_stored = in_doubt_not_stored = 0
    for c in clients:
        harness.check_acknowledged_are_stored([r for r in c.records if r.reply is not None],
                                              stored_by_lot[c.auction])
    for lot, r in records:
        code = r.reply.get("code", r.reply["type"])
        by_code[code] = by_code.get(code, 0) + 1
        stored = (lot, r.bidder, r.price) in stored_bids
        if code in ("unavailable", "overloaded"):
            assert not stored, f"bid {r.ref} ({r.price}) was answered {code} (not stored) but is in Postgres"
        if code == "in_doubt":
            in_doubt_stored += stored
            in_doubt_not_stored += not stored
    problems = []
    for c in clients:
        rows = stored_by_lot[c.auction]
        expected = [seq for seq, _, _ in rows if seq > (c.first_last_seq or 0)]
        if c.truncated:
            problems.append(f"{c.name}: a since-reconnect was truncated")
        if c.seqs != expected:
            missing = sorted(set(expected) - set(c.seqs))[:10]
            extra = sorted(set(c.seqs) - set(expected))[:10]
            dup = len(c.seqs) - len(set(c.seqs))
            problems.append(f"{c.name}: {len(c.seqs)} seqs vs {len(expected)} stored; missing {missing}, "
                            f"not stored {extra}, duplicates {dup}, connections {c.connections}, closes {c.closes}")
        by_seq = {seq: (b, p) for seq, b, p in rows}
        wrong = [s for s, bp in c.rows.items() if by_seq.get(s) != bp]
        if wrong:
            problems.append(f"{c.name}: seqs {wrong[:5]} differ from the stored rows")
    assert not problems, f"{len(problems)} clients do not hold Postgres's sequence:\n" + "\n".join(problems[:20])
    alive = [s for s in pods.servers if s.alive()]
    assert len(alive) == 2, "no pod may die but the ones the test killed"
    for victim in killed:
        victim.proc.wait(timeout=10)
        assert victim.proc.returncode == -9, f"{victim.name} was killed by the test, exit {victim.proc.returncode}"
    accepted = by_code.get("bid_accepted", 0)
    reconnects = sum(c.connections - 1 for c in clients)
    unknown = sum(len(c.unknown) for c in clients)
    summary = {"seconds": SOAK_SECONDS, "clients": len(clients), "faults": fault_log, "replies": by_code,
               "accepted_stored": accepted, "in_doubt_stored": in_doubt_stored,
               "in_doubt_not_stored": in_doubt_not_stored, "replies_lost_with_connection": unknown,
               "reconnects": reconnects, "stored": {lot: len(rows) for lot, rows in stored_by_lot.items()},
               "pods_killed": len(killed), "pods_died_otherwise": 0, "clients_with_postgres_sequence": len(clients)}
    assert accepted > 100, f"the soak must have accepted bids all along: {summary}"
    print("soak:", json.dumps(summary))
