"""Graceful drain: SIGTERM (or SIGINT) to a pod while its clients bid.

The pod stops accepting new connections, finishes the bids in flight, sends every client
{"type":"server_shutdown","reconnect":true}, closes it with 1012 and exits 0, all within DRAIN_TIMEOUT.
Bids arriving after the drain started get "unavailable". No acknowledged bid is lost and none is
acknowledged without being stored. The other pod keeps serving the same auction without a hiccup.
"""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time

import websockets

import harness
from harness import WsClient, close_clients, open_clients, run_async

DRAIN_TIMEOUT = 5
POD_ENV = {"DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}
SHUTDOWN = {"type": "server_shutdown", "reconnect": True}


def wait_exit(server: harness.Server, since: float, timeout: float) -> tuple[int | None, float]:
    """(exit code or None if still running after `timeout` s, seconds from `since` to the exit)."""
    try:
        server.proc.wait(timeout=max(timeout - (time.monotonic() - since), 0.01))
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - since
    return server.proc.returncode, time.monotonic() - since


async def try_new_connection(url: str) -> str | dict:
    """What a client gets when it connects: 'HTTP n', 'refused (...)', or the first message."""
    try:
        ws = await harness.ws_connect(url, open_timeout=3)
    except websockets.exceptions.InvalidStatusCode as error:
        return f"HTTP {error.status_code}"
    except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake,
            websockets.exceptions.ConnectionClosed) as error:
        return f"refused ({type(error).__name__})"
    try:
        return await harness.recv_json(ws, timeout=3, what="the first message")
    except AssertionError as error:
        return f"upgraded, then {error}"
    finally:
        await ws.close()


def check_shutdown_sequence(client: WsClient) -> None:
    shutdowns = [m for m in client.messages if m.get("type") == "server_shutdown"]
    assert shutdowns == [SHUTDOWN], f"{client.name} must receive {SHUTDOWN} exactly once when its pod drains: {shutdowns}"
    assert client.messages[-1] == SHUTDOWN, (
        f"{client.name}: server_shutdown must be the last message before the close, got after it: "
        f"{client.messages[client.messages.index(SHUTDOWN) + 1:]}")
    assert client.close_code == 1012, (
        f"{client.name}: after server_shutdown the pod must close with 1012 (service restart), "
        f"got {client.close_code} {client.close_reason!r}")


def test_sigterm_drains_a_pod_while_its_clients_bid_and_the_other_pod_carries_on(seeded_db, start_server, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db, env=POD_ENV)
    lot = harness.create_auction(seeded_db, "Drain Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        url_a, url_b = pod_a.ws_url(lot["id"]), pod_b.ws_url(lot["id"])
        bidders_a = [WsClient(f"bidder-a{i}", url_a) for i in range(4)]
        observers_a = [WsClient(f"observer-a{i}", url_a) for i in range(2)]
        bidders_b = [WsClient(f"bidder-b{i}", url_b) for i in range(2)]
        observers_b = [WsClient(f"observer-b{i}", url_b) for i in range(2)]
        on_a, on_b = bidders_a + observers_a, bidders_b + observers_b
        await open_clients(on_a + on_b)
        records: list[harness.BidRecord] = []
        stop_b = asyncio.Event()
        never = asyncio.Event()
        loops_a = [asyncio.ensure_future(harness.bid_loop(b, ticker, never, records)) for b in bidders_a]
        loops_b = [asyncio.ensure_future(harness.bid_loop(b, ticker, stop_b, records, pause=0.005)) for b in bidders_b]
        try:
            await asyncio.gather(*(b.wait_until(lambda b=b: sum(r.accepted for r in records if r.client == b.name) >= 2,
                                                15, "2 accepted bids before the drain") for b in bidders_a + bidders_b))

            signalled = time.monotonic()
            pod_a.send_signal(signal.SIGTERM)
            await observers_a[0].wait_for(lambda m: m.get("type") == "server_shutdown", DRAIN_TIMEOUT + 1,
                                          "server_shutdown after SIGTERM")
            newcomer = await try_new_connection(url_a)
            await asyncio.gather(*(c.wait_closed(DRAIN_TIMEOUT + 1, "the close after server_shutdown") for c in on_a))
            code, exited_after = await asyncio.to_thread(wait_exit, pod_a, signalled, DRAIN_TIMEOUT + 1)
            await asyncio.gather(*loops_a)

            # Pod B carries on: more bids accepted there after pod A is gone, then the sentinel.
            gone = time.monotonic()
            await asyncio.gather(*(b.wait_until(
                lambda b=b: sum(r.accepted for r in records if r.client == b.name and r.sent > gone) >= 2,
                10, "2 bids accepted on pod B after pod A exited") for b in bidders_b))
            stop_b.set()
            await asyncio.gather(*loops_b)
            ack = await bidders_b[0].bid_accepted("sentinel", "999999.00", "end")
            await asyncio.gather(*(c.wait_until(lambda c=c: ack["seq"] in c.seen_seqs, 10, "the sentinel's new_bid")
                                   for c in on_b))
        finally:
            stop_b.set()
            await asyncio.wait(loops_a + loops_b, timeout=10)
            await close_clients(on_a + on_b)
        return on_a, on_b, bidders_a, records, newcomer, code, exited_after, signalled

    on_a, on_b, bidders_a, records, newcomer, code, exited_after, signalled = run_async(scenario(), timeout=120)
    stored = harness.history(seeded_db, lot["id"])

    assert code == 0, (f"after SIGTERM the pod must exit with code 0 within DRAIN_TIMEOUT ({DRAIN_TIMEOUT} s) + 1 s; "
                       f"exit code {code} after {exited_after:.2f} s (None: still running); log:\n{pod_a.log_tail(30)}")
    assert isinstance(newcomer, str) and (newcomer == "HTTP 503" or newcomer.startswith("refused")), (
        f"a draining pod must not accept new connections (HTTP 503 or refused), a newcomer got: {newcomer}")
    for client in on_a:
        check_shutdown_sequence(client)
        harness.check_stream(client, stored, complete=False)

    harness.check_acknowledged_are_stored(records, stored)
    names_a = {b.name for b in bidders_a}
    acked = {r.reply["seq"] for r in records if r.accepted}
    for r in records:
        if r.client in names_a and r.reply is not None and r.reply["type"] == "error":
            assert r.error_code in ("unavailable", "price_too_low"), (
                f"{r.client}: during the drain a bid may only be refused as 'unavailable' (or price_too_low): {r.reply}")
    unacknowledged = [row for row in stored if row[1] in names_a and row[0] not in acked]
    assert not unacknowledged, (
        f"the drain must finish bids in flight, replies included: these bids of pod A's clients are stored but "
        f"were never acknowledged: {unacknowledged}")
    late_accepts = [r for r in records if r.client in names_a and r.accepted and r.replied > signalled
                    and r.sent > signalled + 0.5]
    assert not late_accepts, f"bids sent well after the drain started must get 'unavailable', these were accepted: {late_accepts}"

    for client in on_b:
        harness.check_stream(client, stored)
    assert pod_b.alive(), "the other pod must keep running"
    after = [r for r in records if r.client in names_a and r.sent > signalled]
    in_flight = [r for r in records if r.client in names_a and r.sent <= signalled and (r.replied is None or r.replied > signalled)]
    print(f"pod A exited {exited_after:.2f} s after SIGTERM; bids of pod A's clients sent after it: {len(after)} "
          f"(accepted {sum(r.accepted for r in after)}, unavailable {sum(r.error_code == 'unavailable' for r in after)}, "
          f"unanswered {sum(r.reply is None for r in after)}); in flight at the signal: {len(in_flight)} "
          f"(accepted {sum(r.accepted for r in in_flight)}, unavailable {sum(r.error_code == 'unavailable' for r in in_flight)}, "
          f"unanswered {sum(r.reply is None for r in in_flight)})")


def test_sigint_drains_too(seeded_db, start_server, redis):
    pod, = start_server.pods(1, seeded_db, env=POD_ENV)
    lot = harness.create_auction(seeded_db, "Interrupted Lot")

    async def scenario():
        clients = [WsClient(f"client{i}", pod.ws_url(lot["id"])) for i in range(2)]
        await open_clients(clients)
        try:
            ack = await clients[0].bid_accepted("before", "150.00", "b")
            await clients[1].wait_until(lambda: ack["seq"] in clients[1].seen_seqs, 5, "the bid before the drain")
            signalled = time.monotonic()
            pod.send_signal(signal.SIGINT)
            await asyncio.gather(*(c.wait_closed(DRAIN_TIMEOUT + 1, "server_shutdown and the close") for c in clients))
            code, exited_after = await asyncio.to_thread(wait_exit, pod, signalled, DRAIN_TIMEOUT + 1)
        finally:
            await close_clients(clients)
        return clients, code, exited_after

    clients, code, exited_after = run_async(scenario(), timeout=60)
    for client in clients:
        check_shutdown_sequence(client)
    assert code == 0, f"after SIGINT the pod must exit 0 within {DRAIN_TIMEOUT + 1} s: code {code} after {exited_after:.2f} s"
    assert [row[1:] for row in harness.history(seeded_db, lot["id"])] == [("before", "150.00")]


def test_sigterm_while_sessions_wait_for_the_database_does_not_wait_for_drain_timeout(seeded_db, start_server):
    """Clients that vanish right after the upgrade, while their sessions wait for their snapshot
    from Postgres, and a SIGTERM at that moment: the pod still exits at once, not after
    DRAIN_TIMEOUT. (The sessions' io_context used to return from run() as soon as no socket
    operation was pending, and never ran the snapshots' completions: those sessions stayed in the
    registry, and the drain waited for them until DRAIN_TIMEOUT.)"""
    drain_timeout = 20
    pod = start_server(seeded_db, env={"DRAIN_TIMEOUT": str(drain_timeout)})
    request = (f"GET /ws/bid/1 HTTP/1.1\r\nHost: 127.0.0.1:{pod.port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", pod.port), timeout=harness.timing_bound(5)) as sock:
            sock.sendall(request)
            assert sock.recv(12) == b"HTTP/1.1 101", "the upgrade must succeed"
        # closed at once: the session is still loading its snapshot
    signalled = time.monotonic()
    pod.send_signal(signal.SIGTERM)
    code, exited_after = wait_exit(pod, signalled, harness.timing_bound(5))
    assert code == 0, (f"after SIGTERM with no client left the pod must exit 0 at once, not after DRAIN_TIMEOUT "
                       f"({drain_timeout} s): exit code {code} after {exited_after:.2f} s (None: still running); "
                       f"log:\n{pod.log_tail(30)}")
