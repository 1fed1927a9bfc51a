"""WebSocket identity: ws://HOST/ws/bid/{id}?token=BIDDER_TOKEN (docs/api.md, docs/protocol.md).

- With a valid bidder token, every bid of the connection is made as the token's `sub`, whatever the
  message's "name" says (it may be omitted): new_bid.bidder and the stored bidder_name are the sub.
- An expired or forged token (wrong signature, alg none, garbage) is refused after the upgrade with
  close 4001 "unauthorized" and no initial_state, whether AUTH_REQUIRED is set or not.
- AUTH_REQUIRED=true: a connection without a token is refused the same way; one with a valid token works.

Two servers share the module's seeded database: one with AUTH_REQUIRED=false (the default) and one
with AUTH_REQUIRED=true, both with the same SECRET_KEY. Tokens are forged with the standard library,
except in the test that checks the `token` command's bidder token end to end.
"""
from __future__ import annotations

import json
import time

import pytest

import harness
from harness import TEST_SECRET_KEY, bid_frame, initial_state, recv_json, recv_until_closed, run_async, ws_connect


@pytest.fixture(scope="module")
def auth_db(seeded_db):
    return seeded_db


@pytest.fixture(scope="module")
def servers(workdir, auth_db):
    pool = harness.ServerPool(workdir / "servers", default_db=auth_db)
    optional = pool(env={"SECRET_KEY": TEST_SECRET_KEY, "AUTH_REQUIRED": "false"}, name="auth-optional")
    required = pool(env={"SECRET_KEY": TEST_SECRET_KEY, "AUTH_REQUIRED": "true"}, name="auth-required")
    yield {"optional": optional, "required": required}
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def optional(servers):
    return servers["optional"]


@pytest.fixture
def required(servers):
    return servers["required"]


def with_token(url: str, token: str, **params) -> str:
    query = "&".join([f"token={token}"] + [f"{k}={v}" for k, v in params.items()])
    return f"{url}?{query}"


async def expect_bid_as(ws, frame: str, bidder: str, price: str, ref: str, what: str) -> dict:
    """Sends `frame`; the bid must be accepted as `bidder`."""
    await ws.send(frame)
    new_bid = await recv_json(ws, what=f"new_bid for {what}")
    assert new_bid.get("type") == "new_bid", f"{what}: the bid must be accepted, got {new_bid}"
    assert (new_bid["bidder"], new_bid["price"]) == (bidder, price), (
        f"{what}: the bid must be made as the token's sub {bidder!r} (anyone could otherwise bid in another's name), got {new_bid}")
    accepted = await recv_json(ws, what=f"bid_accepted for {what}")
    assert accepted == {"type": "bid_accepted", "seq": new_bid["seq"], "price": price, "ref": ref}, (
        f"{what}: the bidder must get bid_accepted after its new_bid: {accepted}")
    return new_bid


async def expect_refused(url: str, what: str) -> None:
    """The upgrade succeeds, then the server closes 4001 "unauthorized" without sending initial_state."""
    async with ws_connect(url) as ws:
        messages, code, reason = await recv_until_closed(ws)
    assert (code, reason) == (4001, "unauthorized"), (
        f"{what}: the connection must be closed with 4001 'unauthorized', got {code} {reason!r} after {messages}")
    assert not any(m.get("type") == "initial_state" for m in messages), (
        f"{what}: a refused client must not be sent the auction's state: {messages}")


# --------------------------------------------------------------------------- identity from the token

def test_the_token_names_the_bidder(optional, auth_db):
    lot = harness.create_auction(auth_db, "Token Identity Lot")
    token = harness.bidder_jwt("carol")

    async def scenario():
        async with ws_connect(with_token(optional.ws_url(lot["id"]), token)) as ws, \
                ws_connect(optional.ws_url(lot["id"])) as observer:
            state = await initial_state(ws)
            await initial_state(observer)
            assert state["bid"]["id"] == lot["id"], f"a client with a token must get the auction's initial_state: {state}"
            first = await expect_bid_as(ws, bid_frame("mallory", '"110.00"', ref="t1"), "carol", "110.00", "t1",
                                        "a bid whose name says mallory")
            seen = await recv_json(observer, what="carol's new_bid on the observer")
            assert seen == first, f"the other clients must see the token's sub as the bidder: {seen} vs {first}"
            second = await expect_bid_as(ws, '{"price":"120.00","ref":"t2"}', "carol", "120.00", "t2",
                                         "a bid without a name")
            assert await recv_json(observer, what="the nameless bid on the observer") == second
            return first, second

    first, second = run_async(scenario())
    assert harness.history(auth_db, lot["id"]) == [(first["seq"], "carol", "110.00"), (second["seq"], "carol", "120.00")], (
        "the stored bidder_name must be the token's sub (the history and the winner come from it)")


def test_the_cli_bidder_token_works(optional, auth_db):
    lot = harness.create_auction(auth_db, "CLI Bidder Lot")
    token = harness.cli_token("--bidder", "dora")

    async def scenario():
        async with ws_connect(with_token(optional.ws_url(lot["id"]), token)) as ws:
            await initial_state(ws)
            return await expect_bid_as(ws, bid_frame("someone-else", '"150.00"', ref="c1"), "dora", "150.00", "c1",
                                       "a bid with a token from `bidding-server token --bidder dora`")

    new_bid = run_async(scenario())
    assert harness.history(auth_db, lot["id"]) == [(new_bid["seq"], "dora", "150.00")]


def test_token_and_since_together(optional, auth_db):
    lot = harness.create_auction(auth_db, "Token Since Lot")
    token = harness.bidder_jwt("erin")

    async def scenario():
        async with ws_connect(optional.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            seqs = [(await harness.place_bid(ws, "anon", price))[0]["seq"] for price in ("101", "102", "103")]
        results = []
        for url in (with_token(optional.ws_url(lot["id"]), token, since=seqs[0]),
                    f"{optional.ws_url(lot['id'])}?since={seqs[0]}&token={token}"):
            async with ws_connect(url) as ws:
                state = await initial_state(ws)
                assert state.get("since") == seqs[0] and [e["seq"] for e in state["data"]] == seqs[1:], (
                    f"{url}: a reconnecting client with a token must still get only what it missed (since=): {state}")
                results.append(state)
        async with ws_connect(with_token(optional.ws_url(lot["id"]), token, since=seqs[-1])) as ws:
            await initial_state(ws)
            await expect_bid_as(ws, bid_frame("x", '"110.00"', ref="s1"), "erin", "110.00", "s1",
                                "a bid on a connection opened with since= and token=")

    run_async(scenario())


def test_without_a_token_nothing_changes_when_auth_is_optional(optional, auth_db):
    lot = harness.create_auction(auth_db, "Anonymous Lot")

    async def scenario():
        async with ws_connect(optional.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            new_bid, _ = await harness.place_bid(ws, "frank", '"130.00"')
            assert new_bid["bidder"] == "frank", f"without a token the bid's name is the bidder, as before: {new_bid}"
            await ws.send('{"price":"140.00","ref":"n1"}')
            error = await recv_json(ws, what="the reply to a nameless bid without a token")
            assert error.get("type") == "error" and error.get("code") == "invalid_message" and error.get("ref") == "n1", (
                f"without a token a bid still needs a name: {error}")

    run_async(scenario())


# --------------------------------------------------------------------------- refused tokens

BAD_TOKENS = {
    "expired": lambda: harness.make_jwt(harness.token_claims("carol", "bidder", ttl=-10)),
    "wrong signature": lambda: harness.make_jwt(harness.token_claims("carol", "bidder"),
                                                key="another-secret-key-of-32-characters!!"),
    "alg none": lambda: harness.make_jwt(harness.token_claims("carol", "bidder"), alg="none"),
    "garbage": lambda: "garbage",
    "three garbage parts": lambda: "abc.def.ghi",
    "sub changed after signing": lambda: _resigned_claims(),
    # An admin token opens the API; it is nobody's bidder identity (a leaked one must not bid).
    "admin token": lambda: harness.admin_jwt(),
    "admin token from the CLI": lambda: harness.cli_token("--admin"),
    "no role": lambda: harness.make_jwt({k: v for k, v in harness.token_claims("carol", "bidder").items()
                                         if k != "role"}),
    "a name with U+202E": lambda: harness.bidder_jwt("carol\u202e"),
}


def _resigned_claims() -> str:
    head, _, sig = harness.bidder_jwt("carol").split(".")
    claims = harness.b64url(json.dumps(harness.token_claims("mallory", "bidder")).encode())
    return f"{head}.{claims}.{sig}"


@pytest.mark.parametrize("mode", ["optional", "required"])
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused_with_4001(servers, auth_db, mode, kind):
    server = servers[mode]
    token = BAD_TOKENS[kind]()
    run_async(expect_refused(with_token(server.ws_url(1), token),
                             f"a {kind} token with AUTH_REQUIRED={'true' if mode == 'required' else 'false'} "
                             "(a stolen or made-up identity must not be used, nor silently ignored)"))


def test_an_expired_cli_token_is_refused(optional):
    token = harness.cli_token("--bidder", "gina", "--ttl", "1s")
    time.sleep(2.2)
    run_async(expect_refused(with_token(optional.ws_url(1), token), "a `token --bidder --ttl 1s` token after 2 s"))


# --------------------------------------------------------------------------- AUTH_REQUIRED=true

def test_auth_required_refuses_a_connection_without_a_token(required):
    run_async(expect_refused(required.ws_url(1), "a connection without a token when AUTH_REQUIRED=true"))
    run_async(expect_refused(required.ws_url(1, trailing_slash=True) + "?since=0",
                             "a connection with since= but no token when AUTH_REQUIRED=true"))


def test_auth_required_accepts_a_valid_bidder_token(required, optional, auth_db):
    lot = harness.create_auction(auth_db, "Required Lot")

    async def scenario():
        async with ws_connect(with_token(required.ws_url(lot["id"]), harness.bidder_jwt("hana"))) as hana, \
                ws_connect(with_token(required.ws_url(lot["id"]), harness.bidder_jwt("ivan"))) as ivan:
            state = await initial_state(hana)
            assert state["bid"]["id"] == lot["id"] and state["data"] == [], f"a token holder must get initial_state: {state}"
            await initial_state(ivan)
            first = await expect_bid_as(hana, '{"price":"101.00","ref":"r1"}', "hana", "101.00", "r1",
                                        "hana's bid with AUTH_REQUIRED=true")
            assert await recv_json(ivan, what="hana's new_bid on ivan") == first
            second = await expect_bid_as(ivan, bid_frame("hana", '"102.00"', ref="r2"), "ivan", "102.00", "r2",
                                         "ivan's bid claiming to be hana")
            assert await recv_json(hana, what="ivan's new_bid on hana") == second
            return first, second

    first, second = run_async(scenario())
    assert harness.history(auth_db, lot["id"]) == [(first["seq"], "hana", "101.00"), (second["seq"], "ivan", "102.00")], (
        "with AUTH_REQUIRED=true the stored bidders must be the tokens' subs")
