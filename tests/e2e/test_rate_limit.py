"""A connection that sends bids faster than BID_RATE_LIMIT per second (after a burst of
BID_BURST) gets error rate_limited for the excess, stays open, and may bid again once it slows
down; other connections are not affected."""
from __future__ import annotations

import asyncio

import harness
from harness import run_async


def test_bids_beyond_the_rate_are_refused_with_rate_limited(start_server, seeded_db):
    server = start_server(seeded_db, env={"BID_RATE_LIMIT": "2", "BID_BURST": "3"})
    lot = harness.create_auction(seeded_db, "Rate Lot")
    other = harness.create_auction(seeded_db, "Calm Lot")

    async def reply_to(ws, ref):
        while True:
            m = await harness.recv_json(ws, what=f"the reply to bid {ref}")
            if m["type"] in ("bid_accepted", "error") and m.get("ref") == ref:
                return m

    async def scenario():
        async with harness.ws_connect(server.ws_url(lot["id"])) as fast, \
                harness.ws_connect(server.ws_url(other["id"])) as calm:
            await harness.initial_state(fast)
            await harness.initial_state(calm)
            for i in range(6):
                await fast.send(harness.bid_frame("fast", f"{200 + i}.00", f"f{i}"))
            replies = {}
            while len(replies) < 6:
                m = await harness.recv_json(fast, what="a reply to each of the 6 bids")
                if m["type"] in ("bid_accepted", "error"):
                    replies[m["ref"]] = m
            limited = [r for r, m in replies.items() if m.get("code") == "rate_limited"]
            assert sorted(limited) == ["f3", "f4", "f5"], (
                f"a burst of 3 then no more within the same instant: expected f3..f5 refused, got {replies}")
            assert all(replies[f"f{i}"]["type"] == "bid_accepted" for i in range(3)), replies
            await calm.send(harness.bid_frame("calm", "300.00", "c1"))
            accepted = await reply_to(calm, "c1")
            assert accepted["type"] == "bid_accepted", f"another connection must not be limited by this one: {accepted}"
            await asyncio.sleep(0.6)  # one token back at 2 per second
            await fast.send(harness.bid_frame("fast", "400.00", "f6"))
            again = await reply_to(fast, "f6")
            assert again["type"] == "bid_accepted", f"after slowing down the connection must bid again: {again}"

    run_async(scenario(), timeout=30)
    stored = [row[2] for row in harness.history(seeded_db, lot["id"])]
    assert "203.00" not in stored and "205.00" not in stored, "a rate-limited bid must not be stored"
