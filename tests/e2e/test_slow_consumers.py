"""Clients that stop reading, or read too slowly, on a busy auction.

The promise: each socket's queue is bounded in bytes (MAX_SEND_QUEUE_BYTES); a client that falls
further behind, or whose writes make no progress for SEND_TIMEOUT, is disconnected (close 1008
"slow consumer" when a close frame can still go out, else its TCP connection is dropped), its file
descriptor and memory are released at once, and nobody else is slowed down: the healthy clients
of the same auction keep every bid, in order, and the bidder keeps getting fast replies.

The misbehaving clients are raw sockets (rawws.py) with a tiny receive buffer, so the kernel's
window closes after a few KiB and the server's writes to them block.
"""
from __future__ import annotations

import asyncio
import time

import harness
from harness import WsClient, close_clients, open_clients, run_async
from rawws import RawWsClient

LONG_NAME = "slow-consumer-bidder-" + "x" * 200  # ~300-byte new_bid messages: the queues fill fast


def slow_env(**overrides: str) -> dict[str, str]:
    env = {"MAX_SEND_QUEUE_BYTES": "65536", "SEND_TIMEOUT": "1"}
    env.update(overrides)
    return env


async def pump_bids(bidder: WsClient, ticker: harness.PriceTicker, until, records: list[harness.BidRecord],
                    limit: float) -> None:
    """Bids one at a time (each answered before the next) until `until()` holds or `limit` s pass."""
    deadline = time.monotonic() + limit
    k = 0
    while not until() and time.monotonic() < deadline:
        price = ticker.next()
        ref = f"pump-{k}"
        k += 1
        record = harness.BidRecord(bidder.name, LONG_NAME, price, ref, time.monotonic())
        records.append(record)
        record.reply, took = await bidder.bid(LONG_NAME, price, ref)
        record.replied = record.sent + took


def slow_consumers_dropped(server: harness.Server) -> float:
    return harness.metric_value(harness.metrics_text(server), "bidding_slow_consumers_dropped_total")


def test_a_zero_window_client_beyond_its_bound_is_cut_off_without_slowing_the_others(start_server, seeded_db):
    # SEND_TIMEOUT 3 s: the byte bound is reached first (about 2 s of pumping); the close frame that
    # follows cannot reach a zero window, so the close deadline (SEND_TIMEOUT) drops the connection.
    server = start_server(seeded_db, env=slow_env(SEND_TIMEOUT="3"))
    lot = harness.create_auction(seeded_db, "Zero Window Lot")
    ticker = harness.PriceTicker()
    pid = server.proc.pid

    async def scenario():
        observers = [WsClient(f"observer-{i}", server.ws_url(lot["id"])) for i in range(3)]
        bidder = WsClient("bidder", server.ws_url(lot["id"]))
        await open_clients(observers + [bidder])
        stuck = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{lot['id']}", rcvbuf=2048)
        records: list[harness.BidRecord] = []
        try:
            assert stuck.connect() == 101
            stuck_port = stuck.sock.getsockname()[1]
            held = lambda: harness.holds_connection(pid, server.port, stuck_port)  # noqa: E731
            await harness.eventually(held, 5, "the server holding the raw client's socket")
            dropped_before = slow_consumers_dropped(server)
            started = time.monotonic()
            await pump_bids(bidder, ticker, lambda: slow_consumers_dropped(server) > dropped_before, records, 30)
            took = time.monotonic() - started
            assert slow_consumers_dropped(server) == dropped_before + 1, (
                f"the client that stopped reading must be cut off once {65536} bytes wait for it "
                f"({len(records)} bids of ~300 bytes sent in {took:.1f} s)")
            # What waited for it is dropped at once; the close frame cannot reach a zero window, so
            # the TCP connection is dropped when the close's own deadline (SEND_TIMEOUT) passes.
            await harness.eventually(lambda: not held(), 3 + 1.0, "the server releasing the stuck client's socket")
            log = server.log_text()
            assert "slow consumer" in log and ("no write progress" in log or "the close did not complete" in log), (
                "the server logs the slow consumer and why its connection was dropped")
            assert slow_consumers_dropped(server) == dropped_before + 1, "one client is counted once"
            text = harness.metrics_text(server)
            assert harness.metric_value(text, "bidding_connections_open") == 4
            # Healthy clients did not notice: every bid, in order, and the bidder's replies were fast.
            ack = await bidder.bid_accepted("sentinel", "999999.00", "end")
            await asyncio.gather(*(o.wait_until(lambda o=o: o.last_seq >= ack["seq"], 5, "the sentinel")
                                   for o in observers))
            assert not any(o.closed.is_set() for o in observers), "healthy readers must stay connected"
        finally:
            stuck.close()
            await close_clients(observers + [bidder])
        return observers, bidder, records

    observers, bidder, records = run_async(scenario(), timeout=90)
    stored = harness.history(seeded_db, lot["id"])
    assert harness.check_acknowledged_are_stored(records, stored) == len(records), (
        "every bid of the pump must have been accepted (one bidder, rising prices)")
    for client in observers + [bidder]:
        harness.check_stream(client, stored)
    slowest = max(r.replied - r.sent for r in records)
    assert slowest < 1.0, f"a stuck client must not slow the others down: the slowest reply took {slowest:.2f} s"
    assert "slow consumer" in server.log_text(), "the server logs the slow consumer it closed"


def test_a_client_whose_writes_make_no_progress_is_dropped_after_send_timeout(start_server, seeded_db):
    # The default byte bound (1 MiB) is never reached here: the write blocks with far less queued.
    server = start_server(seeded_db, env={"SEND_TIMEOUT": "1"})
    lot = harness.create_auction(seeded_db, "Stalled Write Lot")
    ticker = harness.PriceTicker()
    pid = server.proc.pid

    async def scenario():
        bidder = WsClient("bidder", server.ws_url(lot["id"]))
        await open_clients([bidder])
        stuck = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{lot['id']}", rcvbuf=2048)
        records: list[harness.BidRecord] = []
        try:
            assert stuck.connect() == 101
            stuck_port = stuck.sock.getsockname()[1]
            dropped_before = slow_consumers_dropped(server)
            # About 300 KiB: the kernel's buffers (a few dozen KiB with a closed window) fill, the
            # rest waits in the server's queue, far below its 1 MiB bound.
            await pump_bids(bidder, ticker, lambda: len(records) >= 1000, records, 60)
            stopped = time.monotonic()
            await harness.eventually(lambda: slow_consumers_dropped(server) > dropped_before, 1 + 2.0,
                                     "the stalled client dropped within SEND_TIMEOUT (1 s) of its last progress")
            await harness.eventually(lambda: not harness.holds_connection(pid, server.port, stuck_port), 0.5,
                                     "its descriptor released at once")
            waited = time.monotonic() - stopped
            # What the server had buffered is gone: reading now ends with the end of the connection.
            outcome = await asyncio.to_thread(stuck.drain, 10)
            assert outcome in ("eof", "reset"), f"the dropped connection must end, got {outcome}"
        finally:
            stuck.close()
            await close_clients([bidder])
        return waited

    waited = run_async(scenario(), timeout=120)
    assert "no write progress" in server.log_text(), "the server logs why it dropped the client"
    print(f"stalled client dropped {waited:.2f} s after the bids stopped (SEND_TIMEOUT 1 s)")


def test_a_slow_reader_beyond_its_bound_gets_close_1008(start_server, seeded_db):
    """A client that reads, but slower than its auction moves: its writes progress, so the close
    frame can still go out, and it learns why it was disconnected."""
    server = start_server(seeded_db, env=slow_env(SEND_TIMEOUT="10"))
    lot = harness.create_auction(seeded_db, "Slow Reader Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        bidder = WsClient("bidder", server.ws_url(lot["id"]))
        observer = WsClient("observer", server.ws_url(lot["id"]))
        await open_clients([bidder, observer])
        slow = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{lot['id']}", rcvbuf=4096)
        records: list[harness.BidRecord] = []
        result: dict = {}
        try:
            assert slow.connect() == 101
            stop = asyncio.Event()

            def read_slowly():
                # About 20 KiB/s, far below what the pump produces.
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        frame = slow.recv_frame(timeout=2)
                    except (EOFError, ConnectionResetError, TimeoutError) as error:
                        result["ended"] = repr(error)
                        return
                    if frame.opcode == 8:
                        result["close"] = (frame.close_code, frame.close_reason)
                        return
                    time.sleep(0.015)

            reader = asyncio.ensure_future(asyncio.to_thread(read_slowly))
            await pump_bids(bidder, ticker, lambda: "close" in result or "ended" in result, records, 40)
            stop.set()
            await reader
            ack = await bidder.bid_accepted("sentinel", "999999.00", "end")
            await observer.wait_until(lambda: observer.last_seq >= ack["seq"], 5, "the sentinel")
        finally:
            slow.close()
            await close_clients([bidder, observer])
        return result, observer, bidder

    result, observer, bidder = run_async(scenario(), timeout=90)
    assert result.get("close") == (1008, "slow consumer"), (
        f"a reader that falls {65536} bytes behind while its writes progress must get close 1008 "
        f"'slow consumer', got {result}")
    stored = harness.history(seeded_db, lot["id"])
    harness.check_stream(observer, stored)
    harness.check_stream(bidder, stored)
