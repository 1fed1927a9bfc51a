"""Several server processes ("pods") sharing one Postgres and one Redis (REDIS_URL set).

- A bid accepted on one pod reaches the clients of every other pod, as the same new_bid.
- With bidders on two pods at once, every client still receives every accepted bid of its auction
  exactly once, in increasing seq, with no gap: the same sequence as Postgres.
- A pod is subscribed to an auction's Redis channel (bidding:auction:{id}) only while it has a client
  of that auction.
- Closing an auction (`bid close`) notifies and disconnects the clients of every pod, once each.
"""
from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import harness
from harness import WsClient, bid_frame, close_clients, initial_state, open_clients, recv_json, recv_until_closed, run_async, ws_connect

SENTINEL = "sentinel"
SENTINEL_PRICE = "999999.00"


def test_a_bid_on_any_pod_reaches_the_clients_of_the_others(start_server, seeded_db, redis):
    pod_a, pod_b, pod_c = start_server.pods(3, seeded_db)
    lot = harness.create_auction(seeded_db, "Three Pods Lot")

    async def scenario():
        async with ws_connect(pod_a.ws_url(lot["id"])) as on_a, ws_connect(pod_b.ws_url(lot["id"])) as on_b, \
                ws_connect(pod_c.ws_url(lot["id"])) as on_c:
            await initial_state(on_a)
            await initial_state(on_b)
            await initial_state(on_c)

            new_bid, _ = await harness.place_bid(on_a, "alice", "150")
            seen = await recv_json(on_b, timeout=5, what="pod A's new_bid on pod B")
            assert seen == new_bid, f"a bid accepted on pod A must reach pod B's clients as the same new_bid: {seen} vs {new_bid}"
            seen = await recv_json(on_c, timeout=5, what="pod A's new_bid on pod C")
            assert seen == new_bid, f"a bid accepted on pod A must reach a third pod's clients too: {seen} vs {new_bid}"

            await on_b.send(bid_frame("bob", "140", ref="low"))
            error = await recv_json(on_b, what="the reply to a too-low bid on pod B")
            assert error.get("code") == "price_too_low" and error.get("current_price") == "150.00", (
                f"pod B must refuse a bid under the price set on pod A and name that price: {error}")

            new_bid_b, _ = await harness.place_bid(on_b, "bob", "160")
            seen = await recv_json(on_a, timeout=5, what="pod B's new_bid on pod A")
            assert seen == new_bid_b and new_bid_b["seq"] > new_bid["seq"], (
                f"a bid accepted on pod B must reach pod A's clients as the same new_bid: {seen} vs {new_bid_b}")
            seen = await recv_json(on_c, timeout=5, what="pod B's new_bid on pod C")
            assert seen == new_bid_b, f"a bid accepted on pod B must reach pod C's clients, in order: {seen} vs {new_bid_b}"
            return new_bid, new_bid_b

    first, second = run_async(scenario(), timeout=60)
    assert harness.history(seeded_db, lot["id"]) == [(first["seq"], "alice", "150.00"), (second["seq"], "bob", "160.00")], (
        "the bids accepted on both pods must be stored once each")


BIDDERS_PER_POD = 20
BIDS_EACH = 4
OBSERVERS_PER_POD = 3


def test_concurrent_bidders_on_two_pods_and_every_observer_agrees_with_postgres(start_server, seeded_db, redis):
    pods = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Contested Across Pods")
    rng = random.Random(3)

    def plan() -> list[str]:
        return [f"{c // 100}.{c % 100:02d}" for c in sorted(rng.sample(range(10_001, 200_000), BIDS_EACH))]

    async def scenario():
        observers = [WsClient(f"observer-{p.name}-{i}", p.ws_url(lot["id"])) for p in pods for i in range(OBSERVERS_PER_POD)]
        bidders = [WsClient(f"bidder-{p.name}-{i:02d}", p.ws_url(lot["id"])) for p in pods for i in range(BIDDERS_PER_POD)]
        plans = {b.name: plan() for b in bidders}
        sentinel = WsClient(SENTINEL, pods[1].ws_url(lot["id"]))
        everyone = observers + bidders + [sentinel]
        await open_clients(everyone)
        try:
            for c in everyone:
                assert c.state["bid"]["last_seq"] == 0 and c.state["data"] == [], f"{c.name}: a fresh auction: {c.state}"

            async def bid(client: WsClient):
                for k, price in enumerate(plans[client.name]):
                    await asyncio.sleep(rng.random() * 0.01)
                    await client.send_bid(client.name, price, f"{client.name}-{k}")
                await client.wait_until(lambda: len(client.replies()) >= BIDS_EACH, 60,
                                        f"a reply to each of its {BIDS_EACH} bids")

            await asyncio.gather(*(bid(b) for b in bidders))
            await sentinel.bid_accepted(SENTINEL, SENTINEL_PRICE, "end")
            await asyncio.gather(*(c.wait_for(lambda m: m.get("type") == "new_bid" and m.get("bidder") == SENTINEL, 30,
                                              "the sentinel's new_bid (the last bid)") for c in everyone))
        finally:
            await close_clients(everyone)
        return observers, bidders, plans

    observers, bidders, plans = run_async(scenario(), timeout=150)
    stored = harness.history(seeded_db, lot["id"])
    prices = [Decimal(p) for _, _, p in stored]
    assert all(a < b for a, b in zip(prices, prices[1:])), (
        f"the price rule must hold across pods: stored prices must strictly increase by seq: {prices}")
    assert stored[-1][1:] == (SENTINEL, SENTINEL_PRICE), f"the sentinel must be the last stored bid: {stored[-1:]}"
    for client in observers + bidders:
        harness.check_stream(client, stored)

    by_seq = {row[0]: row for row in stored}
    accepted = 0
    for client in bidders:
        refs = [f"{client.name}-{k}" for k in range(BIDS_EACH)]
        replies = client.replies()
        assert sorted(r.get("ref") for r in replies) == sorted(refs), (
            f"{client.name} must get exactly one reply per bid, matched by ref: sent {refs}, got {replies}")
        position = {id(m): i for i, m in enumerate(client.messages)}
        for reply in replies:
            if reply["type"] == "error":
                assert reply.get("code") == "price_too_low", f"{client.name}: the only acceptable refusal here is price_too_low: {reply}"
                continue
            accepted += 1
            row = by_seq.get(reply["seq"])
            assert row is not None and row[1:] == (client.name, reply["price"]), (
                f"{client.name}: bid_accepted {reply} must match a stored row, found {row}")
            own = [m for m in client.new_bids() if m["seq"] == reply["seq"]]
            assert own and position[id(own[0])] < position[id(reply)], (
                f"{client.name}: the bidder must receive its new_bid before its bid_accepted (seq {reply['seq']}); "
                f"its messages: {[(m.get('type'), m.get('seq'), m.get('ref')) for m in client.messages]}")
    assert accepted + 1 == len(stored), (
        f"every stored bid must have been acknowledged to its bidder: {accepted} accepted + the sentinel vs {len(stored)} stored")
    pods_with_accepts = {c.name.split("-")[2] for c in bidders if any(r["type"] == "bid_accepted" for r in c.replies())}
    assert pods_with_accepts == {"a", "b"}, f"bids must have been accepted on both pods, only on: {pods_with_accepts}"


def test_a_pod_is_subscribed_to_an_auction_only_while_it_has_clients_of_it(start_server, seeded_db, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Subscription Lot")
    channel = harness.auction_channel(seeded_db, lot["id"])

    def subscribers_are(n: int):
        return lambda: redis.numsub(channel) == n

    async def scenario():
        assert redis.numsub(channel) == 0, "no pod may listen to an auction nobody follows"
        a1 = WsClient("a1", pod_a.ws_url(lot["id"]))
        await a1.open()
        await harness.eventually(subscribers_are(1), 5,
                                 f"the pod with a client must subscribe to {channel} (NUMSUB == 1; now {redis.numsub(channel)})")
        a2, b1 = WsClient("a2", pod_a.ws_url(lot["id"])), WsClient("b1", pod_b.ws_url(lot["id"]))
        await open_clients([a2, b1])
        await harness.eventually(subscribers_are(2), 5,
                                 f"each pod with clients must subscribe to {channel} exactly once (NUMSUB == 2)")

        # Traffic still flows with both subscribed.
        ack = await a1.bid_accepted("sub", "150.00", "s1")
        await b1.wait_for(lambda m: m.get("seq") == ack["seq"], 5, "pod A's new_bid on pod B")

        await a1.close()
        await asyncio.sleep(0.3)  # give a wrong unsubscribe time to happen: pod A still has a2
        assert redis.numsub(channel) == 2, "a pod must stay subscribed while it still has a client of the auction"
        await a2.close()
        await harness.eventually(subscribers_are(1), 5,
                                 f"a pod whose last client left must unsubscribe from {channel} (NUMSUB back to 1)")
        await b1.close()
        await harness.eventually(subscribers_are(0), 5,
                                 f"with no clients left on any pod nobody may be subscribed to {channel}")

        # Nothing lingers: a pod that lost its clients subscribes again for a new one.
        again = WsClient("b2", pod_b.ws_url(lot["id"]))
        await again.open()
        await harness.eventually(subscribers_are(1), 5, "a pod must subscribe again when a client comes back")
        await again.close()
        await harness.eventually(subscribers_are(0), 5, "and unsubscribe again when it leaves")

    run_async(scenario(), timeout=60)


def test_closing_an_auction_reaches_and_disconnects_the_clients_of_every_pod(start_server, seeded_db, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Closed Across Pods")

    async def scenario():
        clients = [WsClient(f"{p.name}-{i}", p.ws_url(lot["id"])) for p in (pod_a, pod_b) for i in range(2)]
        await open_clients(clients)
        try:
            ack = await clients[0].bid_accepted("alice", "150", "a")
            ack = await clients[2].bid_accepted("bob", "160", "b")
            await asyncio.gather(*(c.wait_for(lambda m: m.get("seq") == ack["seq"], 5, "bob's new_bid") for c in clients))
            result = await asyncio.to_thread(harness.run_cli, "bid", "close", str(lot["id"]), database_url=seeded_db.url)
            assert result.returncode == 0, f"bid close failed: {result.stdout}{result.stderr}"
            await asyncio.gather(*(c.wait_closed(5, "the close after bid_closed") for c in clients))
        finally:
            await close_clients(clients)
        return clients

    clients = run_async(scenario(), timeout=60)
    expected = {"type": "bid_closed", "bid_id": lot["id"], "final_price": "160.00", "winner": "bob"}
    for c in clients:
        closes = [m for m in c.messages if m.get("type") == "bid_closed"]
        assert closes == [expected], f"{c.name} must receive bid_closed exactly once, as {expected}: got {closes}"
        assert c.messages[-1] == expected, f"{c.name}: bid_closed must be the last message before the close: {c.messages[-3:]}"
        assert (c.close_code, c.close_reason) == (4003, "bid closed"), (
            f"{c.name}: after bid_closed the server must close with 4003 'bid closed', got {c.close_code} {c.close_reason!r}")

    async def reconnect(pod):
        async with ws_connect(pod.ws_url(lot["id"])) as ws:
            return await recv_until_closed(ws)

    for pod in (pod_a, pod_b):
        _, code, reason = run_async(reconnect(pod))
        assert (code, reason) == (4003, "bid closed"), f"{pod.name}: a new connection to a closed auction must get 4003, got {code} {reason!r}"
