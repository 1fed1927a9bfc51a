"""The WebSocket protocol, end to end: upgrade checks, initial_state, bids and their replies, every
error code, frame limits, and closing an auction while clients are connected.

One server on one seeded database serves the module. Tests that bid create their own auction
(`bid create`), so the seeded auctions 1-3 keep their seeded state for the initial_state tests.
"""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest

import harness
from harness import bid_frame, initial_state, recv_json, recv_until_closed, run_async, ws_connect


def check_entry(entry: dict) -> None:
    assert set(entry) == {"seq", "bidder", "price", "added_at"}, f"a history entry has exactly seq, bidder, price, added_at: {entry}"
    assert isinstance(entry["seq"], int), f"seq must be an integer: {entry}"
    assert harness.MONEY.match(entry["price"]), f"prices are strings with two decimals: {entry}"
    assert harness.ISO_MILLIS_Z.match(entry["added_at"]), f"added_at must be ISO 8601 UTC with milliseconds and Z: {entry}"


def check_new_bid(message: dict, bid_id: int, bidder: str, price: str) -> None:
    assert set(message) == {"type", "bid_id", "seq", "bidder", "price", "added_at"}, (
        f"new_bid of an auction without an end, at the default increment, has its shape of old: {message}")
    assert (message["type"], message["bid_id"], message["bidder"], message["price"]) == ("new_bid", bid_id, bidder, price), (
        f"new_bid must announce {bidder} at {price} on auction {bid_id}, got {message}")
    assert isinstance(message["seq"], int) and message["seq"] > 0, f"new_bid.seq must be a positive integer: {message}"
    assert harness.ISO_MILLIS_Z.match(message["added_at"]), f"new_bid.added_at must be ISO 8601 UTC ms Z: {message}"


async def expect_error(ws, code: str, ref=None, what: str = "") -> dict:
    message = await recv_json(ws, what=f"an error reply ({code}) to {what}")
    assert message.get("type") == "error" and message.get("code") == code, (
        f"{what}: expected error {code}, got {message}")
    assert isinstance(message.get("message"), str) and message["message"], f"{what}: the error needs a message: {message}"
    assert "ref" in message and message["ref"] == ref, f"{what}: the error must echo ref {ref!r}: {message}"
    return message


# --------------------------------------------------------------------------- initial_state

@pytest.mark.parametrize("bid_id, name, price", [(1, "Vintage Camera", "100.00"), (2, "Antique Vase", "200.00")])
def test_initial_state_of_a_seeded_auction_without_bids(module_server, bid_id, name, price):
    async def scenario():
        async with ws_connect(module_server.ws_url(bid_id)) as ws:
            return await initial_state(ws)

    state = run_async(scenario())
    assert set(state) == {"type", "bid", "data", "server_time"}, f"initial_state has exactly type, bid, data, server_time: {state}"
    assert harness.ISO_MILLIS_Z.match(state["server_time"]), f"server_time must be ISO 8601 UTC ms Z: {state}"
    min_price = f"{Decimal(price) + Decimal('0.01'):.2f}"
    assert state["bid"] == {"id": bid_id, "name": name, "status": "open", "initial_price": price,
                            "current_price": price, "last_seq": 0, "ends_at": None, "extend_window": None,
                            "extend_by": None, "min_increment": "0.01",
                            "min_price": min_price}, f"initial_state.bid is wrong for auction {bid_id}: {state['bid']}"
    assert state["data"] == [], f"an auction without bids has an empty history: {state['data']}"


def test_initial_state_lists_the_history_newest_first(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "History Lot")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            for price in ("101.10", "102.20", "103.30"):
                await harness.place_bid(ws, f"bidder-{price}", price)
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            return await initial_state(ws)

    state = run_async(scenario())
    stored = harness.history(seeded_db, lot["id"])
    for entry in state["data"]:
        check_entry(entry)
    assert [(e["seq"], e["bidder"], e["price"]) for e in state["data"]] == list(reversed(stored)), (
        f"initial_state.data must be the stored history newest first: {state['data']} vs stored {stored}")
    assert state["bid"]["current_price"] == "103.30" and state["bid"]["last_seq"] == stored[-1][0], (
        f"current_price/last_seq must be those of the newest bid: {state['bid']}")


def test_history_limit_caps_initial_state(start_server, seeded_db):
    server = start_server(seeded_db, env={"HISTORY_LIMIT": "3"})
    lot = harness.create_auction(seeded_db, "Limited Lot")

    async def scenario():
        async with ws_connect(server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            for price in (101, 102, 103, 104, 105):
                await harness.place_bid(ws, "lim", price)
        async with ws_connect(server.ws_url(lot["id"])) as ws:
            return await initial_state(ws)

    state = run_async(scenario())
    assert [e["price"] for e in state["data"]] == ["105.00", "104.00", "103.00"], (
        f"with HISTORY_LIMIT=3 initial_state must hold the 3 newest bids, newest first: {state['data']}")
    seqs = [e["seq"] for e in state["data"]]
    assert seqs == sorted(seqs, reverse=True) and state["bid"]["last_seq"] == seqs[0], f"seqs must descend: {state}"


def test_trailing_slash_is_accepted(module_server):
    async def scenario():
        async with ws_connect(module_server.ws_url(1, trailing_slash=True)) as ws:
            return await initial_state(ws)

    assert run_async(scenario())["bid"]["id"] == 1, "/ws/bid/1/ must reach auction 1"


# --------------------------------------------------------------------------- upgrade checks

def host_url(server, host: str, bid_id=1) -> str:
    return f"ws://{host}/ws/bid/{bid_id}"


def status(server, host: str | None = None, origin: str | None = None, bid_id=1) -> int:
    """The upgrade status for a given Host header (the TCP connection always goes to the server)."""
    url = host_url(server, host, bid_id) if host else server.ws_url(bid_id)
    kwargs = {"host": "127.0.0.1", "port": server.port} if host else {}
    if origin:
        kwargs["origin"] = origin
    return run_async(harness.handshake_status(url, **kwargs), timeout=20)


def test_disallowed_host_is_rejected_with_403(module_server):
    assert status(module_server, host=f"evil.example.com:{module_server.port}") == 403, (
        "a Host outside ALLOWED_HOSTS must be refused with HTTP 403")


def test_disallowed_origin_is_rejected_with_403(module_server):
    assert status(module_server, origin="http://evil.example.com") == 403, (
        "an Origin whose host is outside ALLOWED_HOSTS must be refused with HTTP 403")


@pytest.mark.parametrize("host, origin", [
    (None, "http://localhost:3000"),
    (None, "https://127.0.0.1"),
    ("localhost", None),
    ("LOCALHOST:8000", None),
])
def test_allowed_host_and_origin_pass(module_server, host, origin):
    assert status(module_server, host=host, origin=origin) == 101, (
        f"Host {host!r} / Origin {origin!r} are allowed by the default ALLOWED_HOSTS and must upgrade")


def test_subdomain_pattern_in_allowed_hosts(start_server, seeded_db):
    server = start_server(seeded_db, env={"ALLOWED_HOSTS": ".example.com,127.0.0.1"})
    port = server.port
    assert status(server, host=f"api.example.com:{port}") == 101, ".example.com must allow its subdomains"
    assert status(server, host="example.com") == 101, ".example.com must allow example.com itself"
    assert status(server, origin="https://app.example.com") == 101, ".example.com must allow subdomain Origins"
    assert status(server, host="badexample.com") == 403, ".example.com must not allow badexample.com"
    assert status(server, origin="http://example.com.evil.org") == 403, ".example.com must not match a suffix trick"
    assert status(server, host="localhost") == 403, "localhost is not in this ALLOWED_HOSTS"


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "99999999999999999999", "1.5"])
def test_bad_auction_id_is_404(module_server, bad_id):
    assert status(module_server, bid_id=bad_id) == 404, f"/ws/bid/{bad_id} is not a valid auction id: HTTP 404 expected"


def test_unknown_auction_closes_with_4004(module_server):
    async def scenario():
        async with ws_connect(module_server.ws_url(987654321)) as ws:
            return await recv_until_closed(ws)

    messages, code, reason = run_async(scenario())
    assert (code, reason) == (4004, "bid not found"), f"an unknown auction must close with 4004 'bid not found', got {code} {reason!r}"
    assert not any(m.get("type") == "initial_state" for m in messages), f"no initial_state for an unknown auction: {messages}"


def test_closed_auction_closes_with_4003(module_server):
    async def scenario():
        async with ws_connect(module_server.ws_url(3)) as ws:  # Rare Book, seeded closed
            return await recv_until_closed(ws)

    _, code, reason = run_async(scenario())
    assert (code, reason) == (4003, "bid closed"), f"a closed auction must close with 4003 'bid closed', got {code} {reason!r}"


# --------------------------------------------------------------------------- bids

def test_accepted_bid_reaches_every_client_and_the_sender_gets_bid_accepted(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Two Clients Lot")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as alice, \
                ws_connect(module_server.ws_url(lot["id"])) as bob:
            await initial_state(alice)
            await initial_state(bob)

            await alice.send(json.dumps({"name": "alice", "price": "123.67", "ref": "r1"}))
            first = await recv_json(alice, what="new_bid for alice's bid")
            second = await recv_json(alice, what="bid_accepted for alice's bid")
            check_new_bid(first, lot["id"], "alice", "123.67")
            assert second == {"type": "bid_accepted", "seq": first["seq"], "price": "123.67", "ref": "r1"}, (
                f"the sender must get new_bid and then bid_accepted echoing ref: {first}, {second}")
            seen_by_bob = await recv_json(bob, what="new_bid for alice's bid on the observer")
            assert seen_by_bob == first, f"the other client must get the same new_bid: {seen_by_bob} vs {first}"

            await bob.send('{"type":"bid","name":"bob","price":130}')
            bob_new = await recv_json(bob, what="new_bid for bob's bid")
            bob_ack = await recv_json(bob, what="bid_accepted for bob's bid")
            check_new_bid(bob_new, lot["id"], "bob", "130.00")
            assert bob_new["seq"] > first["seq"], "seq must increase"
            assert bob_ack == {"type": "bid_accepted", "seq": bob_new["seq"], "price": "130.00", "ref": None}, (
                f"bid_accepted must carry ref null when the bid had none: {bob_ack}")
            assert await recv_json(alice, what="new_bid for bob's bid on alice") == bob_new
            return first, bob_new

    first, second = run_async(scenario())
    assert harness.history(seeded_db, lot["id"]) == [(first["seq"], "alice", "123.67"), (second["seq"], "bob", "130.00")], (
        "accepted bids must be stored with seq = bids_bidhistory.id")


def test_capitalized_price_key_and_string_prices(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Price Key Lot")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            await ws.send(bid_frame("cap", '"150.5"', ref="P", key="Price"))
            new_bid = await recv_json(ws, what="new_bid for a bid with 'Price'")
            ack = await recv_json(ws, what="bid_accepted for a bid with 'Price'")
            assert new_bid["price"] == "150.50" and ack["price"] == "150.50" and ack["ref"] == "P", (
                f"'Price' (capitalized) with a string price must be accepted: {new_bid} {ack}")
            _, ack = await harness.place_bid(ws, "str", '"160.25"')
            assert ack["price"] == "160.25", f"a numeric string price must be accepted: {ack}"

    run_async(scenario())


def test_prices_are_exact_decimals_rounded_half_up(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Rounding Lot", initial_price="1.00")
    # Raw JSON numbers, never through a Python float: 1.005 and 2.675 are below .5 as doubles.
    cases = [("1.005", "1.01"), ("2.675", "2.68"), ('"2.685"', "2.69"), ("3.004", "3.00"),
             ("1.05e1", "10.50"), ("11", "11.00"), ("112233.444", "112233.44")]

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            for raw, expected in cases:
                new_bid, ack = await harness.place_bid(ws, "a", raw)  # sends '{"name":"a","price":RAW}'
                assert new_bid.get("price") == expected and ack.get("price") == expected, (
                    f"price {raw} must be rounded half up to {expected}: {new_bid} {ack}")

    run_async(scenario())
    assert [h[2] for h in harness.history(seeded_db, lot["id"])] == [e for _, e in cases], "stored prices must be the rounded ones"


def test_every_rejection_gets_its_error_code_and_the_connection_stays_open(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Errors Lot")  # current price 100.00
    long_name = "x" * 256
    cases = [
        # (frame, code, ref echoed)
        ("not json{", "invalid_json", None),
        ('{"name":"a","price":', "invalid_json", None),
        ("[1,2]", "invalid_message", None),
        ('"just a string"', "invalid_message", None),
        ("42", "invalid_message", None),
        ('{"price":150,"ref":"m1"}', "invalid_message", "m1"),
        ('{"name":"a","ref":"m2"}', "invalid_message", "m2"),
        ('{"name":"a","price":true,"ref":"m3"}', "invalid_message", "m3"),
        ('{"name":"a","price":null}', "invalid_message", None),
        ('{"name":"a","price":[150]}', "invalid_message", None),
        ('{"name":5,"price":150}', "invalid_message", None),
        ('{"name":"","price":150,"ref":"n1"}', "invalid_name", "n1"),
        ('{"name":"   ","price":150}', "invalid_name", None),
        (bid_frame(long_name, 150, ref="n3"), "invalid_name", "n3"),
        ('{"name":"a","price":"abc","ref":"p1"}', "invalid_price", "p1"),
        ('{"name":"a","price":0}', "invalid_price", None),
        ('{"name":"a","price":-1}', "invalid_price", None),
        ('{"name":"a","price":0.004}', "invalid_price", None),
        ('{"name":"a","price":1e20}', "invalid_price", None),
        ('{"name":"a","price":"100000000.00"}', "invalid_price", None),
        ('{"name":"a","price":99999999.995}', "invalid_price", None),
        ('{"name":"a","price":100,"ref":"t1"}', "price_too_low", "t1"),
        ('{"name":"a","price":"99.99"}', "price_too_low", None),
    ]

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws, \
                ws_connect(module_server.ws_url(lot["id"])) as observer:
            await initial_state(ws)
            await initial_state(observer)
            for frame, code, ref in cases:
                await ws.send(frame)
                error = await expect_error(ws, code, ref, what=f"the frame {frame[:60]!r}")
                if code == "price_too_low":
                    assert error.get("current_price") == "100.00" and error["message"] == "Bid must be higher than 100.00", (
                        f"price_too_low must say 'Bid must be higher than 100.00' and carry current_price: {error}")
            await ws.send(b'{"name":"a","price":150}')
            await expect_error(ws, "unsupported", None, what="a binary frame")

            # Still open after all of that: a valid bid goes through, and the observer saw none of the errors.
            _, ack = await harness.place_bid(ws, "survivor", "150", ref="ok")
            assert ack["ref"] == "ok"
            seen = await recv_json(observer, what="the survivor's new_bid on the observer")
            assert seen.get("type") == "new_bid" and seen.get("bidder") == "survivor", (
                f"rejected bids must not reach other clients; the observer's next message was {seen}")

    run_async(scenario(), timeout=60)


def test_price_too_low_carries_the_current_price(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Too Low Lot")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            await harness.place_bid(ws, "bk", "123.66")
            for price in ("123.66", "123.655", "50"):
                await ws.send(bid_frame("late", price, ref="low"))
                error = await expect_error(ws, "price_too_low", "low", what=f"a bid of {price} under 123.66")
                assert error.get("current_price") == "123.66" and error["message"] == "Bid must be higher than 123.66", (
                    f"price_too_low must name the current price 123.66: {error}")
            _, ack = await harness.place_bid(ws, "bk", "123.67")
            assert ack["price"] == "123.67"

    run_async(scenario())


def test_bid_on_an_auction_closed_in_the_database_is_rejected(module_server, seeded_db):
    """An auction closed behind the server's back (e.g. in the Django admin) must not take bids."""
    lot = harness.create_auction(seeded_db, "Admin Closed Lot")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            seeded_db.execute("UPDATE bids_bid SET status = 'closed' WHERE id = %s", (lot["id"],))
            await ws.send(bid_frame("late", 150, ref="c1"))
            message = await recv_json(ws, what="the reply to a bid on a closed auction")
            assert message.get("type") in ("error", "bid_closed"), f"a bid on a closed auction must be refused: {message}"
            if message["type"] == "error":
                assert message["code"] == "bid_closed" and message["ref"] == "c1", f"expected error bid_closed: {message}"

    run_async(scenario())
    assert harness.history(seeded_db, lot["id"]) == [], "no bid may be stored on a closed auction"


def test_frame_over_max_message_bytes_closes_with_1009(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Big Frame Lot")

    def frame_of(size: int) -> str:
        head, tail = '{"name":"', '","price":150}'
        return head + "x" * (size - len(head) - len(tail)) + tail

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            await ws.send(frame_of(4096))  # exactly the limit: answered, not closed
            await expect_error(ws, "invalid_name", None, what="a 4096-byte frame with a 4000-character name")
            await ws.send(frame_of(5000))
            return await recv_until_closed(ws)

    _, code, _ = run_async(scenario())
    assert code == 1009, f"a frame over MAX_MESSAGE_BYTES (4096) must close the connection with 1009, got {code}"


def test_closing_an_auction_notifies_and_disconnects_every_client(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Closing Lot")

    async def scenario():
        clients = [await ws_connect(module_server.ws_url(lot["id"])) for _ in range(3)]
        try:
            for ws in clients:
                await initial_state(ws)
            await harness.place_bid(clients[0], "first", "150")
            for ws in (clients[1], clients[2]):
                await recv_json(ws, what="new_bid of the first bid")
            await harness.place_bid(clients[1], "carol", "175.5")
            for ws in (clients[0], clients[2]):
                await recv_json(ws, what="new_bid of carol's bid")
            results = [asyncio.ensure_future(recv_until_closed(ws, timeout=10)) for ws in clients]
            close_times = []
            for ws, fut in zip(clients, results):
                fut.add_done_callback(lambda _f: close_times.append(time.monotonic()))
            result = await asyncio.to_thread(harness.run_cli, "bid", "close", str(lot["id"]), database_url=seeded_db.url)
            closed_at = time.monotonic()
            assert result.returncode == 0, f"bid close failed: {result.stdout}{result.stderr}"
            outcomes = await asyncio.gather(*results)
            return outcomes, [t - closed_at for t in close_times]
        finally:
            for ws in clients:
                await ws.close()

    outcomes, delays = run_async(scenario())
    expected = {"type": "bid_closed", "bid_id": lot["id"], "final_price": "175.50", "winner": "carol"}
    for messages, code, reason in outcomes:
        assert expected in messages, f"every client must get {expected} when the auction closes, got {messages}"
        assert (code, reason) == (4003, "bid closed"), f"after bid_closed the server must close with 4003 'bid closed', got {code} {reason!r}"
    assert max(delays) <= 1.0, f"clients must be disconnected within 1 s of `bid close`, took {max(delays):.2f} s"

    async def reconnect():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            return await recv_until_closed(ws)

    _, code, reason = run_async(reconnect())
    assert (code, reason) == (4003, "bid closed"), f"a new connection to a closed auction must get 4003, got {code} {reason!r}"


def test_closing_an_auction_without_bids_has_no_winner(module_server, seeded_db):
    lot = harness.create_auction(seeded_db, "Unsold Lot", initial_price="42.00")

    async def scenario():
        async with ws_connect(module_server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            result = await asyncio.to_thread(harness.run_cli, "bid", "close", str(lot["id"]), database_url=seeded_db.url)
            assert result.returncode == 0, f"bid close failed: {result.stdout}{result.stderr}"
            return await recv_until_closed(ws)

    messages, code, _ = run_async(scenario())
    assert {"type": "bid_closed", "bid_id": lot["id"], "final_price": "42.00", "winner": None} in messages, (
        f"closing an auction without bids must announce the initial price and winner null: {messages}")
    assert code == 4003


# --------------------------------------------------------------------------- database outage

def test_bid_while_postgres_is_down_gets_unavailable_and_the_connection_stays_open(start_server):
    pg = harness.Postgres().start()
    try:
        db = harness.migrate_and_seed(pg.create_database())
        server = start_server(db)

        async def scenario():
            async with ws_connect(server.ws_url(1)) as ws:
                await initial_state(ws)
                await asyncio.to_thread(pg.stop)
                await ws.send(bid_frame("down", 150, ref="u1"))
                message = await recv_json(ws, timeout=20, what="the reply to a bid while Postgres is down")
                assert message.get("type") == "error" and message.get("code") == "unavailable" and message.get("ref") == "u1", (
                    f"a bid that cannot be stored must be answered with error 'unavailable': {message}")
                await ws.send('{"type":"pong"}')
                await ws.send(bid_frame("down", '"abc"'))
                await expect_error(ws, "invalid_price", None, what="a bad bid after the outage")

        run_async(scenario(), timeout=60)
    finally:
        pg.stop()
