"""Heartbeat and idle timeout, with HEARTBEAT_INTERVAL=0.1 and IDLE_TIMEOUT=0.5.

The server sends {"type":"ping"} every interval; a client's {"type":"pong"}, bare "pong" or any bid
message resets its idle clock; a client silent for IDLE_TIMEOUT is closed with 1000 "idle timeout".
The websockets client answers WebSocket control pings by itself: those must NOT count as activity.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
import websockets

import harness
from harness import initial_state, run_async, ws_connect

INTERVAL = 0.1
IDLE = 0.5


@pytest.fixture(scope="module")
def hb_server(workdir, seeded_db):
    pool = harness.ServerPool(workdir / "servers", default_db=seeded_db)
    yield pool(env={"HEARTBEAT_INTERVAL": str(INTERVAL), "IDLE_TIMEOUT": str(IDLE)}, name="heartbeat")
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@dataclass
class Outcome:
    pings: int = 0
    messages: list = field(default_factory=list)
    closed_after: float | None = None  # seconds from connecting to the server's close
    close_code: int | None = None
    close_reason: str | None = None


async def client(url: str, duration: float, answer: str | None = None, bids: list[str] | None = None,
                 bid_every: float = 0.15) -> Outcome:
    """Connects, then for `duration` s answers each ping with `answer` (None: never) and sends the
    `bids` frames one every `bid_every` s. Reports pings seen and whether/when the server closed."""
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    started = loop.time()
    ws = await ws_connect(url)
    await initial_state(ws)

    async def read():
        try:
            async for raw in ws:
                message = json.loads(raw)
                if harness.is_ping(message):
                    outcome.pings += 1
                    if answer is not None:
                        await ws.send(answer)
                else:
                    outcome.messages.append(message)
        except websockets.exceptions.ConnectionClosed:
            pass
        outcome.closed_after = loop.time() - started
        outcome.close_code, outcome.close_reason = ws.close_code, ws.close_reason

    async def bid():
        try:
            for frame in bids or []:
                await asyncio.sleep(bid_every)
                await ws.send(frame)
        except websockets.exceptions.ConnectionClosed:
            pass

    reader = asyncio.ensure_future(read())
    bidder = asyncio.ensure_future(bid())
    await asyncio.wait([reader], timeout=duration)
    bidder.cancel()
    if not reader.done():
        reader.cancel()
        await ws.close()
    return outcome


def test_server_sends_ping_messages(hb_server):
    outcome = run_async(client(hb_server.ws_url(1), duration=1.0, answer='{"type":"pong"}'))
    assert outcome.pings >= 4, f"with HEARTBEAT_INTERVAL=0.1 the client must get about 10 pings a second, got {outcome.pings}"


@pytest.mark.parametrize("answer", ['{"type":"pong"}', "pong"], ids=["json-pong", "bare-pong"])
def test_client_answering_pongs_stays_connected(hb_server, answer):
    outcome = run_async(client(hb_server.ws_url(1), duration=1.6, answer=answer))
    assert outcome.closed_after is None, (
        f"a client answering {answer!r} must stay connected past 1.5 s (IDLE_TIMEOUT=0.5), but the server closed it "
        f"after {outcome.closed_after:.2f} s with {outcome.close_code} {outcome.close_reason!r}")
    assert outcome.pings >= 5, f"the client must have been pinged meanwhile, got {outcome.pings} pings"


def test_silent_client_is_closed_for_idle_timeout(hb_server):
    outcome = run_async(client(hb_server.ws_url(1), duration=5.0, answer=None))
    assert outcome.closed_after is not None, "a client that never answers pings must be disconnected (IDLE_TIMEOUT=0.5)"
    assert (outcome.close_code, outcome.close_reason) == (1000, "idle timeout"), (
        f"an idle client must be closed with 1000 'idle timeout', got {outcome.close_code} {outcome.close_reason!r}")
    assert 0.4 <= outcome.closed_after <= 1.5, (
        f"with IDLE_TIMEOUT=0.5 a silent client must be closed after about 0.5 s, took {outcome.closed_after:.2f} s")


@pytest.mark.parametrize("kind", ["accepted", "rejected"])
def test_client_that_only_bids_stays_connected(hb_server, seeded_db, kind):
    lot = harness.create_auction(seeded_db, f"Heartbeat {kind} Lot")
    if kind == "accepted":
        bids = [harness.bid_frame("busy", f"{101 + i}.00") for i in range(12)]
    else:
        bids = [harness.bid_frame("busy", "1.00") for _ in range(12)]  # always price_too_low
    outcome = run_async(client(hb_server.ws_url(lot["id"]), duration=1.6, answer=None, bids=bids, bid_every=0.12))
    assert outcome.closed_after is None, (
        f"bid messages ({kind}) must reset the idle clock, but the server closed the client after "
        f"{outcome.closed_after:.2f} s with {outcome.close_code} {outcome.close_reason!r}")
    replies = [m for m in outcome.messages if m.get("type") in ("bid_accepted", "error")]
    assert len(replies) >= 8, f"the bids must have been answered: {outcome.messages}"
    if kind == "accepted":
        assert all(m["type"] == "bid_accepted" for m in replies), f"increasing bids must be accepted: {replies}"
    else:
        assert all(m.get("code") == "price_too_low" for m in replies), f"bids at 1.00 must be price_too_low: {replies}"
