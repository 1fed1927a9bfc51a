"""Recovery after a reconnect: ws://.../ws/bid/{id}?since=SEQ.

initial_state.data then holds only the entries with seq > SEQ, OLDEST first, at most HISTORY_LIMIT of
them (the newest ones, with "truncated":true, when more are after SEQ), and the message carries
"since":SEQ. A malformed since is refused with HTTP 400 before the upgrade. A client that drops and
reconnects to any pod with the last seq it saw ends with exactly the history stored in Postgres.
"""
from __future__ import annotations

import asyncio

import harness
from harness import WsClient, close_clients, open_clients, run_async

ENTRY_KEYS = {"seq", "bidder", "price", "added_at"}


def since_url(server: harness.Server, bid_id: int, since, trailing_slash: bool = False) -> str:
    return f"{server.ws_url(bid_id, trailing_slash)}?since={since}"


async def state_at(url: str) -> dict:
    client = WsClient("probe", url)
    state = await client.open()
    await client.close()
    return state


def entries(state: dict) -> list[tuple[int, str, str]]:
    for entry in state["data"]:
        assert set(entry) == ENTRY_KEYS and harness.ISO_MILLIS_Z.match(entry["added_at"]), (
            f"a history entry has exactly seq, bidder, price, added_at (ISO 8601 ms Z): {entry}")
    return [(e["seq"], e["bidder"], e["price"]) for e in state["data"]]


def place_history(server: harness.Server, bid_id: int, prices: list[str]) -> None:
    async def bids():
        client = WsClient("history", server.ws_url(bid_id))
        await client.open()
        for i, price in enumerate(prices):
            await client.bid_accepted(f"h{i}", price, f"h{i}")
        await client.close()

    run_async(bids(), timeout=60)


def test_since_on_another_pod_returns_only_the_later_entries_oldest_first(start_server, seeded_db, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Since Lot")
    place_history(pod_a, lot["id"], ["101.00", "102.00", "103.00", "104.00", "105.00", "106.00"])
    stored = harness.history(seeded_db, lot["id"])
    last = stored[-1][0]

    def check(state: dict, since: int, expected: list, what: str) -> None:
        assert state.get("type") == "initial_state" and state.get("since") == since, (
            f"{what}: initial_state must carry \"since\":{since}: {state}")
        assert state.get("truncated", False) is False, f"{what}: nothing was left out, so no \"truncated\":true: {state}"
        assert entries(state) == expected, (
            f"{what}: data must hold exactly the stored entries with seq > {since}, oldest first: "
            f"{entries(state)} vs stored {expected}")
        assert state["bid"]["last_seq"] == last and state["bid"]["current_price"] == "106.00", (
            f"{what}: bid.last_seq/current_price are still those of the newest bid: {state['bid']}")

    async def scenario():
        k = stored[1][0]
        check(await state_at(since_url(pod_b, lot["id"], k)), k, stored[2:], f"since={k} on pod B")
        check(await state_at(since_url(pod_b, lot["id"], k, trailing_slash=True)), k, stored[2:],
              f"since={k} on pod B with a trailing slash")
        check(await state_at(since_url(pod_a, lot["id"], 0)), 0, stored, "since=0")
        check(await state_at(since_url(pod_b, lot["id"], last)), last, [], "since = the last seq")
        check(await state_at(since_url(pod_b, lot["id"], last + 1000)), last + 1000, [], "since beyond the last seq")

        # Without since: as before (newest first, no "since" key).
        plain = await state_at(pod_b.ws_url(lot["id"]))
        assert "since" not in plain and not plain.get("truncated"), f"without since there is no \"since\" key: {plain}"
        assert entries(plain) == list(reversed(stored)), f"without since, data is newest first: {plain['data']}"

        # A client that asked for since=last follows new bids normally.
        follower = WsClient("follower", since_url(pod_b, lot["id"], last))
        await follower.open()
        bidder = WsClient("bidder", pod_a.ws_url(lot["id"]))
        await bidder.open()
        ack = await bidder.bid_accepted("late", "107.00", "late")
        await follower.wait_for(lambda m: m.get("type") == "new_bid" and m.get("seq") == ack["seq"], 5,
                                "the new_bid placed on pod A after connecting with since")
        await close_clients([follower, bidder])
        assert follower.seqs() == [ack["seq"]], f"after a since initial_state, new bids arrive once each: {follower.seqs()}"

    run_async(scenario(), timeout=60)


def test_since_with_more_entries_than_history_limit_keeps_the_newest_and_says_truncated(start_server, seeded_db, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db, env={"HISTORY_LIMIT": "3"})
    lot = harness.create_auction(seeded_db, "Truncated Lot")
    place_history(pod_a, lot["id"], ["101.00", "102.00", "103.00", "104.00", "105.00", "106.00"])
    stored = harness.history(seeded_db, lot["id"])

    async def scenario():
        for since, truncated in ((stored[0][0], True), (0, True), (stored[2][0], False), (stored[3][0], False)):
            state = await state_at(since_url(pod_b, lot["id"], since))
            expected = [row for row in stored if row[0] > since][-3:]
            assert state.get("since") == since, f"since={since}: initial_state must carry \"since\":{since}: {state}"
            assert entries(state) == expected, (
                f"since={since} with HISTORY_LIMIT=3: data must hold the 3 NEWEST entries after {since}, oldest first: "
                f"{entries(state)} vs {expected}")
            if truncated:
                assert state.get("truncated") is True, (
                    f"since={since}: more than HISTORY_LIMIT entries follow, so initial_state must say \"truncated\":true: {state}")
            else:
                assert state.get("truncated", False) is False, (
                    f"since={since}: at most HISTORY_LIMIT entries follow, so \"truncated\" must be absent or false: {state}")

    run_async(scenario(), timeout=60)


MALFORMED = ["abc", "-1", "1.5", "", "12abc", "0x10", "%20"]


def test_a_malformed_since_is_refused_with_400(start_server, seeded_db, redis):
    pod_a, = start_server.pods(1, seeded_db)
    lot = harness.create_auction(seeded_db, "Malformed Since Lot")

    async def scenario():
        return {value: await harness.handshake_status(since_url(pod_a, lot["id"], value)) for value in MALFORMED}

    statuses = run_async(scenario(), timeout=60)
    wrong = {value: status for value, status in statuses.items() if status != 400}
    assert not wrong, (f"a since that is not a non-negative integer must be refused with HTTP 400 before the upgrade; "
                       f"got (value: status) {wrong}")
    assert run_async(harness.handshake_status(since_url(pod_a, lot["id"], 7))) == 101, "since=7 is well formed"


def test_a_client_that_drops_and_resumes_on_the_other_pod_ends_with_the_stored_history(start_server, seeded_db, redis):
    pod_a, pod_b = start_server.pods(2, seeded_db)
    lot = harness.create_auction(seeded_db, "Resume Lot")
    ticker = harness.PriceTicker()

    async def scenario():
        bidders = [WsClient("bidder-a", pod_a.ws_url(lot["id"])), WsClient("bidder-b", pod_b.ws_url(lot["id"]))]
        watcher = WsClient("watcher-first", pod_a.ws_url(lot["id"]))
        await open_clients(bidders + [watcher])
        stop = asyncio.Event()
        records: list[harness.BidRecord] = []
        loops = [asyncio.ensure_future(harness.bid_loop(b, ticker, stop, records, pause=0.01)) for b in bidders]
        resumed = None
        try:
            await watcher.wait_until(lambda: len(watcher.seqs()) >= 5, 15, "5 new_bids before the drop")
            await watcher.drop()
            last_seen = watcher.last_seq
            accepted_at_drop = sum(r.accepted for r in records)
            await bidders[0].wait_until(lambda: sum(r.accepted for r in records) >= accepted_at_drop + 4, 15,
                                        "4 more accepted bids while the watcher is away")

            resumed = WsClient("watcher-resumed", since_url(pod_b, lot["id"], last_seen))
            await resumed.open()
            await resumed.wait_until(lambda: len(resumed.seqs()) >= 3, 15, "3 new_bids after resuming")
            stop.set()
            await asyncio.gather(*loops)
            await bidders[0].bid_accepted("sentinel", "999999.00", "end")
            await resumed.wait_for(lambda m: m.get("bidder") == "sentinel", 10, "the sentinel's new_bid")
        finally:
            stop.set()
            await asyncio.wait(loops, timeout=10)
            await close_clients(bidders + [watcher] + ([resumed] if resumed else []))
        return watcher, resumed, last_seen, records

    watcher, resumed, last_seen, records = run_async(scenario(), timeout=90)
    stored = harness.history(seeded_db, lot["id"])
    harness.check_acknowledged_are_stored(records, stored)
    state = resumed.state
    assert state.get("since") == last_seen, f"the resumed initial_state must carry \"since\":{last_seen}: {state}"
    data_seqs = [e["seq"] for e in state["data"]]
    assert data_seqs == sorted(data_seqs) and all(s > last_seen for s in data_seqs), (
        f"since={last_seen}: data must be the entries after it, oldest first: {data_seqs}")
    combined = watcher.seqs() + data_seqs + resumed.seqs()
    expected = [row[0] for row in stored if row[0] > watcher.state["bid"]["last_seq"]]
    assert combined == expected, (
        "a client that reconnects with since=<last seq it saw> and appends data then new_bids must end with exactly the "
        f"stored history: got {len(combined)} entries (duplicates {len(combined) - len(set(combined))}, missing "
        f"{sorted(set(expected) - set(combined))}, unexpected {sorted(set(combined) - set(expected))}, in order: "
        f"{combined == sorted(combined)})")
    harness.check_stream(resumed, stored)
