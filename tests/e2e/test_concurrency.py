"""Many bidders on one auction at once: the stored history must be strictly increasing, and every
client must see exactly that history as new_bid messages — once each, in order, with no gap.

50 bidders (one connection each) send 4 increasing random bids each, all at the same time, while 5
observers watch. Afterwards a sentinel bid above every other one marks the end of the stream, so
each client's list is complete when it has seen the sentinel's new_bid (no sleeping and hoping).
"""
from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

import websockets

import harness
from harness import initial_state, run_async, ws_connect

BIDDERS = 50
BIDS_EACH = 4
OBSERVERS = 5
SENTINEL = "sentinel"
SENTINEL_PRICE = "999999.00"


@dataclass
class Client:
    name: str
    ws: object = None
    messages: list = field(default_factory=list)
    replies: dict = field(default_factory=dict)  # ref -> list of bid_accepted/error messages
    expected_replies: int = 0
    all_replied: asyncio.Event = field(default_factory=asyncio.Event)
    saw_sentinel: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    continue
                self.messages.append(message)
                if message.get("type") in ("bid_accepted", "error"):
                    self.replies.setdefault(message.get("ref"), []).append(message)
                    if sum(map(len, self.replies.values())) >= self.expected_replies:
                        self.all_replied.set()
                if message.get("type") == "new_bid" and message.get("bidder") == SENTINEL:
                    self.saw_sentinel.set()
        except websockets.exceptions.ConnectionClosed:
            pass

    def new_bids(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") == "new_bid"]


def cents_to_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def test_concurrent_bidders_and_observers_agree_with_the_database(start_server, postgres):
    db = harness.migrate_and_seed(postgres.create_database())
    server = start_server(db)
    lot = harness.create_auction(db, "Contested Lot")
    url = server.ws_url(lot["id"])
    rng = random.Random(20261125)
    plans = {f"bidder{i:02d}": [cents_to_text(c) for c in sorted(rng.sample(range(10_001, 200_000), BIDS_EACH))]
             for i in range(BIDDERS)}

    async def scenario():
        observers = [Client(f"observer{i}") for i in range(OBSERVERS)]
        bidders = [Client(name, expected_replies=BIDS_EACH) for name in plans]
        sentinel = Client(SENTINEL, expected_replies=1)
        everyone = observers + bidders + [sentinel]

        async def connect(client: Client):
            client.ws = await ws_connect(url)
            state = await initial_state(client.ws, timeout=20)
            assert state["bid"]["last_seq"] == 0 and state["data"] == [], f"{client.name}: a fresh auction: {state}"

        await asyncio.gather(*(connect(c) for c in everyone))
        readers = [asyncio.ensure_future(c.read()) for c in everyone]
        try:
            async def bid(client: Client):
                for k, price in enumerate(plans[client.name]):
                    await asyncio.sleep(rng.random() * 0.01)
                    # Alternate JSON numbers and numeric strings.
                    frame = harness.bid_frame(client.name, price if k % 2 else f'"{price}"', ref=f"{client.name}-{k}")
                    await client.ws.send(frame)

            await asyncio.gather(*(bid(c) for c in bidders))
            await asyncio.wait_for(asyncio.gather(*(c.all_replied.wait() for c in bidders)), 60)

            await sentinel.ws.send(harness.bid_frame(SENTINEL, SENTINEL_PRICE, ref="end"))
            pending = [c for c in everyone]
            try:
                await asyncio.wait_for(asyncio.gather(*(c.saw_sentinel.wait() for c in pending)), 30)
            except asyncio.TimeoutError:
                missing = [c.name for c in everyone if not c.saw_sentinel.is_set()]
                raise AssertionError(f"these clients never received the final new_bid: {missing}") from None
        finally:
            for c in everyone:
                await c.ws.close()
            await asyncio.wait(readers, timeout=10)
        return observers, bidders, sentinel

    observers, bidders, sentinel = run_async(scenario(), timeout=150)

    stored = harness.history(db, lot["id"])
    stored_seqs = [seq for seq, _, _ in stored]
    prices = [Decimal(p) for _, _, p in stored]
    assert all(a < b for a, b in zip(prices, prices[1:])), f"stored prices must strictly increase by seq: {prices}"
    assert stored and stored[-1][1:] == (SENTINEL, SENTINEL_PRICE), f"the sentinel bid must be the last stored: {stored[-1:]}"
    by_seq = {seq: (bidder, price) for seq, bidder, price in stored}

    for client in observers + bidders + [sentinel]:
        seen = client.new_bids()
        seen_seqs = [m["seq"] for m in seen]
        assert seen_seqs == stored_seqs, (
            f"{client.name} must receive every stored bid exactly once, in order: "
            f"got {len(seen_seqs)} new_bid (duplicates: {len(seen_seqs) - len(set(seen_seqs))}, "
            f"missing: {sorted(set(stored_seqs) - set(seen_seqs))}, unexpected: {sorted(set(seen_seqs) - set(stored_seqs))})")
        for m in seen:
            assert (m["bidder"], m["price"]) == by_seq[m["seq"]], f"{client.name}: new_bid {m} differs from the stored row"

    accepted_total = 0
    for client in bidders:
        refs = [f"{client.name}-{k}" for k in range(BIDS_EACH)]
        assert sorted(client.replies) == sorted(refs), (
            f"{client.name} must get one reply per bid, matched by ref: sent {refs}, replies for {sorted(client.replies, key=str)}")
        position = {id(m): i for i, m in enumerate(client.messages)}
        for ref in refs:
            replies = client.replies[ref]
            assert len(replies) == 1, f"{client.name}: exactly one reply per bid, got {replies}"
            reply = replies[0]
            if reply["type"] == "error":
                assert reply["code"] == "price_too_low", f"{client.name}: the only acceptable rejection here is price_too_low: {reply}"
                continue
            accepted_total += 1
            assert reply["seq"] in by_seq, f"{client.name}: bid_accepted seq {reply['seq']} is not in the stored history"
            assert by_seq[reply["seq"]] == (client.name, reply["price"]), (
                f"{client.name}: bid_accepted {reply} does not match the stored row {by_seq[reply['seq']]}")
            own = [m for m in client.new_bids() if m["seq"] == reply["seq"]]
            assert own and position[id(own[0])] < position[id(reply)], (
                f"{client.name}: the sender must receive new_bid before bid_accepted (seq {reply['seq']})")
    assert accepted_total + 1 == len(stored), (
        f"every stored bid must have been acknowledged to its sender: {accepted_total} accepted + sentinel vs {len(stored)} stored")
    assert accepted_total >= 1, "at least one concurrent bid must have been accepted"
