"""The HTTP API under /api/, end to end, and the `bidding-server token` command (docs/api.md).

- GET /api/bids, /api/bids/{id}, /api/bids/{id}/history: read auctions and their history (anyone).
- POST /api/bids, /api/bids/{id}/close: create and close auctions (admin: Authorization: Bearer JWT).
- Every error is {"error":CODE,"message":TEXT} as application/json with its status.

One server (SECRET_KEY set) on one seeded database serves most of the module; tests that need a
quiet database, several pods or a Postgres outage start their own. Admin tokens are forged here
with the standard library (so a broken `token` command does not hide the API's own behaviour);
the `token` tests check the command's output and that the server accepts it.
"""
from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

import harness
from harness import TEST_SECRET_KEY, http_request, initial_state, recv_json, recv_until_closed, run_async, ws_connect

AUTH_ENV = {"SECRET_KEY": TEST_SECRET_KEY, "AUTH_REQUIRED": "false"}
AUCTION_KEYS = {"id", "name", "status", "initial_price", "current_price", "last_seq", "ends_at", "extend_window",
                "extend_by", "min_increment", "min_price", "leader", "winner", "created_at"}
ENTRY_KEYS = {"seq", "bidder", "price", "added_at"}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def api_db(seeded_db):
    """This module's database (conftest's seeded_db): 1 Vintage Camera and 2 Antique Vase open, 3 Rare Book closed."""
    return seeded_db


@pytest.fixture(scope="module")
def api(workdir, api_db):
    pool = harness.ServerPool(workdir / "servers", default_db=api_db)
    server = pool(env=AUTH_ENV, name="api")
    yield server
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def admin():
    return harness.admin_jwt()


def expect_error(reply: harness.HttpReply, status: int, code: str, what: str) -> dict:
    """The reply must be `status` with the JSON error body {"error":code,"message":...}."""
    assert reply.status == status, f"{what}: expected HTTP {status} {code}, got {reply}"
    assert reply.content_type.startswith("application/json"), (
        f"{what}: errors must be application/json so clients can parse them, got {reply.content_type!r}")
    body = reply.json()
    assert isinstance(body, dict) and body.get("error") == code, f"{what}: expected error code {code!r}, got {body}"
    assert isinstance(body.get("message"), str) and body["message"], f"{what}: the error needs a human message: {body}"
    return body


def expect_json(reply: harness.HttpReply, status: int, what: str) -> dict:
    assert reply.status == status, f"{what}: expected HTTP {status}, got {reply}"
    assert reply.content_type.startswith("application/json"), f"{what}: the API answers application/json, got {reply.content_type!r}"
    return reply.json()


def check_auction(auction: dict, what: str) -> dict:
    assert set(auction) == AUCTION_KEYS, f"{what}: an auction has exactly {sorted(AUCTION_KEYS)}, got {auction}"
    assert isinstance(auction["id"], int) and auction["id"] > 0, f"{what}: id must be a positive integer: {auction}"
    assert auction["status"] in ("open", "closed"), f"{what}: status is open or closed: {auction}"
    for key in ("initial_price", "current_price"):
        assert isinstance(auction[key], str) and harness.MONEY.match(auction[key]), (
            f"{what}: {key} must be a string with two decimals (exact money), got {auction[key]!r}")
    assert isinstance(auction["last_seq"], int) and auction["last_seq"] >= 0, f"{what}: last_seq must be an integer >= 0: {auction}"
    assert isinstance(auction["created_at"], str) and ISO_Z.match(auction["created_at"]), (
        f"{what}: created_at must be ISO 8601 UTC ending in Z: {auction['created_at']!r}")
    if auction["status"] == "open":
        assert auction["winner"] is None, f"{what}: an open auction has no winner yet: {auction}"
    else:
        assert auction["winner"] == auction["leader"], f"{what}: a closed auction's winner is its leader: {auction}"
    return auction


def check_entry(entry: dict, what: str) -> None:
    assert set(entry) == ENTRY_KEYS, f"{what}: a history entry has exactly seq, bidder, price, added_at: {entry}"
    assert isinstance(entry["seq"], int) and harness.MONEY.match(entry["price"]), f"{what}: bad entry {entry}"
    assert harness.ISO_MILLIS_Z.match(entry["added_at"]), f"{what}: added_at must be ISO 8601 UTC with ms and Z: {entry}"


def get_auction(server, bid_id) -> dict:
    return check_auction(expect_json(http_request(server, "GET", f"/api/bids/{bid_id}"), 200, f"GET /api/bids/{bid_id}"),
                         f"GET /api/bids/{bid_id}")


def create(server, admin: str, name: str, initial_price=None) -> dict:
    body = {"name": name}
    if initial_price is not None:
        body["initial_price"] = initial_price
    reply = http_request(server, "POST", "/api/bids", body, token=admin)
    return check_auction(expect_json(reply, 201, f"POST /api/bids {body}"), "the created auction")


def place_bids(server, bid_id: int, bids: list[tuple[str, str]]) -> list[dict]:
    """Places the bids over one WebSocket; returns their new_bid messages."""
    async def scenario():
        async with ws_connect(server.ws_url(bid_id)) as ws:
            await initial_state(ws)
            return [(await harness.place_bid(ws, name, json.dumps(price)))[0] for name, price in bids]

    return run_async(scenario(), timeout=60)


def auction_count(db) -> int:
    return db.query("SELECT count(*) FROM bids_bid")[0][0]


# --------------------------------------------------------------------------- GET /api/bids/{id}

def test_get_a_seeded_auction(api):
    auction = get_auction(api, 1)
    assert {k: v for k, v in auction.items() if k != "created_at"} == {
        "id": 1, "name": "Vintage Camera", "status": "open", "initial_price": "100.00", "current_price": "100.00",
        "last_seq": 0, "ends_at": None, "extend_window": None, "extend_by": None, "min_increment": "0.01",
        "min_price": "100.01", "leader": None, "winner": None}, (
        f"an API user must see auction 1 as seeded (open, no bids, no leader): {auction}")
    closed = get_auction(api, 3)
    assert (closed["name"], closed["status"], closed["initial_price"], closed["leader"], closed["winner"]) == (
        "Rare Book", "closed", "150.00", None, None), f"a closed auction nobody bid on has no leader or winner: {closed}"


def test_an_auction_follows_its_bids_and_matches_the_websocket_view(api, admin):
    lot = create(api, admin, "Followed Lot", "50.00")
    bids = place_bids(api, lot["id"], [("alice", "60.10"), ("bob", "75.55")])
    auction = get_auction(api, lot["id"])
    assert (auction["current_price"], auction["last_seq"], auction["leader"], auction["winner"]) == (
        "75.55", bids[-1]["seq"], "bob", None), (
        f"a client polling the API must see the last accepted price, its seq and the leader (no winner while open): {auction}")

    async def ws_view():
        async with ws_connect(api.ws_url(lot["id"])) as ws:
            return (await initial_state(ws))["bid"]

    state = run_async(ws_view())
    assert {k: auction[k] for k in state} == state, (
        f"the API and the WebSocket initial_state must describe the auction identically: {auction} vs {state}")


@pytest.mark.parametrize("bad_id", ["987654321", "0", "-1", "abc", "1.5", "99999999999999999999"])
def test_unknown_or_invalid_auction_id_is_404(api, bad_id):
    expect_error(http_request(api, "GET", f"/api/bids/{bad_id}"), 404, "not_found",
                 f"GET /api/bids/{bad_id} (a client must be told the auction does not exist, not get a 500)")


# --------------------------------------------------------------------------- GET /api/bids

def test_list_defaults_order_and_total(api, api_db, admin):
    for i in range(3):
        create(api, admin, f"Listed Lot {i}")
    body = expect_json(http_request(api, "GET", "/api/bids"), 200, "GET /api/bids")
    assert set(body) == {"data", "limit", "offset", "total"}, f"a page has exactly data, limit, offset, total: {body}"
    ids = [row[0] for row in api_db.query("SELECT id FROM bids_bid ORDER BY id")]
    assert (body["limit"], body["offset"], body["total"]) == (20, 0, len(ids)), (
        f"the default page is limit 20, offset 0, and total counts every auction: {body['limit']} {body['offset']} {body['total']}")
    assert [a["id"] for a in body["data"]] == ids[:20], (
        f"the list must be the auctions ordered by id (a paging client would otherwise skip or repeat some): {[a['id'] for a in body['data']]}")
    for auction in body["data"]:
        check_auction(auction, "an auction in GET /api/bids")
    assert body["data"][0] == get_auction(api, body["data"][0]["id"]), "a listed auction must equal GET /api/bids/{id}"


def test_paging_walks_every_auction_once(api, api_db, admin):
    while auction_count(api_db) < 25:
        create(api, admin, "Paged Lot")
    ids = [row[0] for row in api_db.query("SELECT id FROM bids_bid ORDER BY id")]
    seen, offset = [], 0
    while True:
        body = expect_json(http_request(api, "GET", f"/api/bids?limit=7&offset={offset}"), 200, f"page at offset {offset}")
        assert (body["limit"], body["offset"], body["total"]) == (7, offset, len(ids)), f"the page must echo limit/offset and the total: {body}"
        assert len(body["data"]) <= 7, f"a page must hold at most limit auctions: {len(body['data'])}"
        if not body["data"]:
            break
        seen += [a["id"] for a in body["data"]]
        offset += 7
    assert seen == ids, f"walking the pages must list every auction exactly once, in id order: {seen} vs {ids}"
    one = expect_json(http_request(api, "GET", "/api/bids?limit=1&offset=1"), 200, "limit=1")
    assert [a["id"] for a in one["data"]] == ids[1:2], f"limit=1&offset=1 is the second auction: {one}"
    big = expect_json(http_request(api, "GET", "/api/bids?limit=100"), 200, "limit=100 (the maximum)")
    assert [a["id"] for a in big["data"]] == ids[:100], "limit=100 must be accepted"
    past = expect_json(http_request(api, "GET", f"/api/bids?offset={len(ids) + 5}"), 200, "an offset past the end")
    assert past["data"] == [] and past["total"] == len(ids), f"an offset past the end is an empty page, not an error: {past}"


def test_status_filter(api, api_db, admin):
    lot = create(api, admin, "Filter Lot")
    assert http_request(api, "POST", f"/api/bids/{lot['id']}/close", token=admin).status == 200
    for status in ("open", "closed"):
        body = expect_json(http_request(api, "GET", f"/api/bids?status={status}&limit=100"), 200, f"status={status}")
        ids = [r[0] for r in api_db.query("SELECT id FROM bids_bid WHERE status = %s ORDER BY id", (status,))]
        assert [a["id"] for a in body["data"]] == ids[:100] and body["total"] == len(ids), (
            f"status={status} must list only the {status} auctions and count them: {[a['id'] for a in body['data']]} vs {ids}")
        assert all(a["status"] == status for a in body["data"]), f"status={status} returned another status: {body['data']}"
    closed = expect_json(http_request(api, "GET", "/api/bids?status=closed&limit=100"), 200, "status=closed")
    assert {3, lot["id"]} <= {a["id"] for a in closed["data"]}, "the seeded closed auction and the one closed now must be listed"


@pytest.mark.parametrize("query", ["status=sold", "status=", "limit=0", "limit=101", "limit=abc", "limit=-1",
                                   "limit=1.5", "offset=-1", "offset=abc", "limit=20&offset=x"])
def test_list_rejects_bad_parameters(api, query):
    expect_error(http_request(api, "GET", f"/api/bids?{query}"), 400, "bad_request",
                 f"GET /api/bids?{query} (a client must learn its query is wrong instead of getting some other page)")


# --------------------------------------------------------------------------- GET /api/bids/{id}/history

def test_history_oldest_first_with_since_limit_and_has_more(api, api_db, admin):
    lot = create(api, admin, "History Lot")
    bids = place_bids(api, lot["id"], [(f"h{i}", f"{101 + i}.00") for i in range(5)])
    stored = harness.history(api_db, lot["id"])
    seqs = [b["seq"] for b in bids]

    body = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history"), 200, "the full history")
    assert set(body) == {"bid_id", "since", "limit", "data", "has_more"}, f"history has exactly bid_id, since, limit, data, has_more: {body}"
    assert (body["bid_id"], body["since"], body["limit"], body["has_more"]) == (lot["id"], 0, 100, False), (
        f"defaults are since 0 and limit 100, and nothing more is left: {body}")
    for entry in body["data"]:
        check_entry(entry, "a history entry")
    assert [(e["seq"], e["bidder"], e["price"]) for e in body["data"]] == stored, (
        f"the history must be the stored bids, oldest first: {body['data']} vs {stored}")
    assert [e for e in body["data"]] == [{k: b[k] for k in ENTRY_KEYS} for b in bids], (
        "each entry must equal the new_bid the WebSocket clients received (same seq, bidder, price, added_at)")

    page = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history?since={seqs[0]}&limit=2"), 200, "a page")
    assert ([e["seq"] for e in page["data"]], page["since"], page["limit"], page["has_more"]) == (seqs[1:3], seqs[0], 2, True), (
        f"since=SEQ&limit=2 must give the next 2 entries after SEQ and say more remain: {page}")
    rest = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history?since={seqs[2]}&limit=2"), 200, "the last page")
    assert ([e["seq"] for e in rest["data"]], rest["has_more"]) == (seqs[3:5], False), (
        f"the last page must end the history with has_more false (a client would poll forever or stop early): {rest}")
    exact = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history?limit=5"), 200, "limit = count")
    assert exact["has_more"] is False and len(exact["data"]) == 5, f"has_more must be false when the page ends exactly at the end: {exact}"
    after = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history?since={seqs[-1]}"), 200, "nothing new")
    assert (after["data"], after["has_more"]) == ([], False), f"since the last seq there is nothing: {after}"
    big = expect_json(http_request(api, "GET", f"/api/bids/{lot['id']}/history?limit=1000"), 200, "limit=1000 (the maximum)")
    assert len(big["data"]) == 5


def test_history_of_an_auction_without_bids(api):
    body = expect_json(http_request(api, "GET", "/api/bids/2/history"), 200, "history of auction 2")
    assert (body["bid_id"], body["data"], body["has_more"]) == (2, [], False), f"an auction without bids has an empty history: {body}"


@pytest.mark.parametrize("query", ["since=-1", "since=abc", "since=1.5", "limit=0", "limit=1001", "limit=abc"])
def test_history_rejects_bad_parameters(api, query):
    expect_error(http_request(api, "GET", f"/api/bids/1/history?{query}"), 400, "bad_request",
                 f"GET /api/bids/1/history?{query}")


@pytest.mark.parametrize("bad_id", ["987654321", "0", "abc"])
def test_history_of_an_unknown_auction_is_404(api, bad_id):
    expect_error(http_request(api, "GET", f"/api/bids/{bad_id}/history"), 404, "not_found",
                 f"GET /api/bids/{bad_id}/history (an empty list would hide that the auction does not exist)")


# --------------------------------------------------------------------------- POST /api/bids

def test_create_an_auction(api, api_db, admin):
    reply = http_request(api, "POST", "/api/bids", {"name": "Lamp", "initial_price": "25.00"}, token=admin)
    auction = check_auction(expect_json(reply, 201, "POST /api/bids"), "the created auction")
    assert {k: v for k, v in auction.items() if k not in ("id", "created_at")} == {
        "name": "Lamp", "status": "open", "initial_price": "25.00", "current_price": "25.00", "last_seq": 0,
        "ends_at": None, "extend_window": None, "extend_by": None, "min_increment": "0.01", "min_price": "25.01",
        "leader": None, "winner": None}, f"a new auction is open at its initial price, with no bids: {auction}"
    assert reply.headers.get("Location") == f"/api/bids/{auction['id']}", (
        f"201 must carry Location: /api/bids/{{id}} so the client can find what it made, got {reply.headers.get('Location')!r}")
    assert get_auction(api, auction["id"]) == auction, "GET on the Location must return the created auction"
    assert api_db.query("SELECT name, initial_price::text, status FROM bids_bid WHERE id = %s", (auction["id"],)) == [
        ("Lamp", "25.00", "open")], "the auction must be stored in bids_bid"

    async def bid_on_it():
        async with ws_connect(api.ws_url(auction["id"])) as ws:
            state = await initial_state(ws)
            new_bid, _ = await harness.place_bid(ws, "first", '"25.01"')
            return state, new_bid

    state, new_bid = run_async(bid_on_it())
    assert state["bid"]["name"] == "Lamp" and new_bid["price"] == "25.01", (
        f"bidders must be able to join and bid on an auction created through the API: {state} {new_bid}")


@pytest.mark.parametrize("price, expected", [(None, "100.00"), (25.5, "25.50"), (7, "7.00"), ("0.01", "0.01"),
                                             ("99999999.99", "99999999.99"), (99999999.99, "99999999.99")])
def test_initial_price_forms(api, admin, price, expected):
    auction = create(api, admin, "Priced Lot", price)
    assert (auction["initial_price"], auction["current_price"]) == (expected, expected), (
        f"initial_price {price!r} must become {expected} (omitted means 100.00): {auction}")


@pytest.mark.parametrize("body, code", [
    ("not json", "invalid_json"),
    ('{"name":"Lamp"', "invalid_json"),
    ("", "invalid_json"),
    (b'{"name":"\xff\xfe"}', "invalid_json"),
    ("[1,2]", "bad_request"),
    ('"Lamp"', "bad_request"),
    ("42", "bad_request"),
    ("null", "bad_request"),
    ('{"name":5}', "bad_request"),
    ('{"name":["Lamp"]}', "bad_request"),
    ('{"name":"Lamp","initial_price":true}', "bad_request"),
    ('{"name":"Lamp","initial_price":[25]}', "bad_request"),
    ('{"name":"Lamp","initial_price":{"amount":25}}', "bad_request"),
    ('{"name":""}', "invalid_name"),
    ('{"name":"   "}', "invalid_name"),
    (json.dumps({"name": "x" * 256}), "invalid_name"),
    (json.dumps({"name": "Lamp\nShade"}), "invalid_name"),
    (json.dumps({"name": "Lamp\u0001"}), "invalid_name"),
    ('{"name":"Lamp","initial_price":0}', "invalid_price"),
    ('{"name":"Lamp","initial_price":"0.00"}', "invalid_price"),
    ('{"name":"Lamp","initial_price":-5}', "invalid_price"),
    ('{"name":"Lamp","initial_price":"abc"}', "invalid_price"),
    ('{"name":"Lamp","initial_price":"NaN"}', "invalid_price"),
    ('{"name":"Lamp","initial_price":100000000}', "invalid_price"),
    ('{"name":"Lamp","initial_price":"99999999.995"}', "invalid_price"),
    ('{"name":"Lamp","initial_price":1e20}', "invalid_price"),
])
def test_create_rejects_bad_bodies_and_stores_nothing(api, api_db, admin, body, code):
    before = auction_count(api_db)
    expect_error(http_request(api, "POST", "/api/bids", body, token=admin), 400, code, f"POST /api/bids with {body[:60]!r}")
    assert auction_count(api_db) == before, f"a refused POST ({code}) must not create an auction"


def test_create_accepts_a_255_character_name(api, admin):
    name = "n" * 255
    assert create(api, admin, name)["name"] == name, "a 255-character name is the longest allowed and must be kept whole"


def test_create_without_a_name_is_refused(api, api_db, admin):
    # The contract does not say whether a missing name is a type error or a bad name: either code, but 400.
    before = auction_count(api_db)
    reply = http_request(api, "POST", "/api/bids", {"initial_price": "10.00"}, token=admin)
    assert reply.status == 400 and reply.json().get("error") in ("bad_request", "invalid_name"), (
        f"an auction without a name must be refused: {reply}")
    assert auction_count(api_db) == before


def test_body_over_16_kib_is_413(api, api_db, admin):
    before = auction_count(api_db)
    body = json.dumps({"name": "Big", "initial_price": "10.00", "padding": "x" * (17 * 1024)})
    expect_error(http_request(api, "POST", "/api/bids", body, token=admin), 413, "payload_too_large",
                 "a 17 KiB body (the server must not buffer unbounded bodies)")
    assert auction_count(api_db) == before, "an oversized body must not create an auction"
    assert http_request(api, "GET", "/healthz").status == 200, "the server must keep serving after an oversized body"


# --------------------------------------------------------------------------- admin authentication

BAD_TOKENS = {
    "wrong signature": lambda: harness.make_jwt(harness.token_claims("admin", "admin"), key="another-secret-key-of-32-characters!!"),
    "alg none": lambda: harness.make_jwt(harness.token_claims("admin", "admin"), alg="none"),
    "alg none, signature kept": lambda: harness.make_jwt(harness.token_claims("admin", "admin"), header={"alg": "none", "typ": "JWT"}),
    "alg HS512": lambda: harness.make_jwt(harness.token_claims("admin", "admin"), alg="HS512"),
    "expired": lambda: harness.make_jwt(harness.token_claims("admin", "admin", ttl=-10)),
    "exp is now": lambda: harness.make_jwt({"sub": "admin", "role": "admin", "iat": int(time.time()) - 60, "exp": int(time.time())}),
    "no exp": lambda: harness.make_jwt({"sub": "admin", "role": "admin", "iat": int(time.time())}),
    "garbage": lambda: "not-a-token",
    "three garbage parts": lambda: "abc.def.ghi",
    "claims tampered after signing": lambda: _tampered(),
    "empty signature": lambda: harness.admin_jwt().rsplit(".", 1)[0] + ".",
}


def _tampered() -> str:
    head, _, sig = harness.bidder_jwt("mallory").split(".")
    claims = harness.b64url(json.dumps(harness.token_claims("mallory", "admin")).encode())
    return f"{head}.{claims}.{sig}"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Token abc", "bearer"])
def test_missing_or_malformed_authorization_is_401(api, api_db, header):
    before = auction_count(api_db)
    headers = {} if header is None else {"Authorization": header}
    reply = http_request(api, "POST", "/api/bids", {"name": "Intruder"}, headers=headers)
    expect_error(reply, 401, "unauthorized", f"POST /api/bids with Authorization {header!r}")
    assert (reply.headers.get("WWW-Authenticate") or "").startswith("Bearer"), (
        f"401 must carry WWW-Authenticate: Bearer (how a client learns which scheme to use), got {reply.headers.get('WWW-Authenticate')!r}")
    assert auction_count(api_db) == before, "an unauthenticated POST must not create an auction"


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_invalid_tokens_are_401(api, api_db, kind):
    token = BAD_TOKENS[kind]()
    before = auction_count(api_db)
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Forged"}, token=token), 401, "unauthorized",
                 f"POST /api/bids with a token ({kind}) (anyone could otherwise create auctions)")
    assert auction_count(api_db) == before, f"a {kind} token must not create an auction"
    lot = 2
    expect_error(http_request(api, "POST", f"/api/bids/{lot}/close", token=token), 401, "unauthorized",
                 f"POST /api/bids/{lot}/close with a token ({kind}) (anyone could otherwise end auctions)")
    assert get_auction(api, lot)["status"] == "open", f"a {kind} token must not close an auction"


def test_a_bidder_token_is_403(api, api_db):
    token = harness.bidder_jwt("bob")
    before = auction_count(api_db)
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Not Yours"}, token=token), 403, "forbidden",
                 "POST /api/bids with a valid bidder token (authenticated but not allowed)")
    expect_error(http_request(api, "POST", "/api/bids/2/close", token=token), 403, "forbidden",
                 "POST /api/bids/2/close with a valid bidder token")
    assert auction_count(api_db) == before and get_auction(api, 2)["status"] == "open", "a bidder must change nothing"
    other_role = harness.make_jwt(harness.token_claims("admin", "auditor"))
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Not Yours"}, token=other_role), 403, "forbidden",
                 "a valid token with sub admin but role auditor: the role decides, not the name")


def test_auth_is_checked_before_the_body(api, api_db):
    """Without a valid token a client learns nothing about its body: 401 comes first."""
    expect_error(http_request(api, "POST", "/api/bids", "not json"), 401, "unauthorized", "POST with a bad body and no token")
    expect_error(http_request(api, "POST", "/api/bids/987654321/close"), 401, "unauthorized",
                 "closing an unknown auction without a token must not reveal that it does not exist")


# --------------------------------------------------------------------------- the token command

def test_token_admin_prints_a_valid_hs256_jwt(api, api_db):
    before = int(time.time())
    token = harness.cli_token("--admin")
    after = int(time.time())
    header, claims, _ = harness.decode_jwt(token)
    assert header == {"alg": "HS256", "typ": "JWT"}, f"the token header must be exactly HS256/JWT: {header}"
    assert set(claims) == {"sub", "role", "iat", "exp"} and (claims["sub"], claims["role"]) == ("admin", "admin"), (
        f"an admin token carries sub admin, role admin, iat, exp: {claims}")
    assert before - 1 <= claims["iat"] <= after + 1 and claims["exp"] - claims["iat"] == 3600, (
        f"iat is now and the default lifetime is 1 h: {claims}")
    assert harness.jwt_signature_ok(token), "the token must be HMAC-SHA256-signed with SECRET_KEY"
    lot = create(api, token, "CLI Token Lot")
    assert lot["name"] == "CLI Token Lot", "the server must accept the admin token the CLI prints"


@pytest.mark.parametrize("ttl, seconds", [("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800)])
def test_token_ttl(ttl, seconds):
    _, claims, _ = harness.decode_jwt(harness.cli_token("--admin", "--ttl", ttl))
    assert claims["exp"] - claims["iat"] == seconds, f"--ttl {ttl} must give exp = iat + {seconds}: {claims}"


def test_token_bidder(api, api_db):
    token = harness.cli_token("--bidder", "carol", "--ttl", "15m")
    header, claims, _ = harness.decode_jwt(token)
    assert header == {"alg": "HS256", "typ": "JWT"} and harness.jwt_signature_ok(token)
    assert (claims["sub"], claims["role"], claims["exp"] - claims["iat"]) == ("carol", "bidder", 900), (
        f"a bidder token carries sub NAME and role bidder: {claims}")
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Nope"}, token=token), 403, "forbidden",
                 "the server must refuse admin actions to a CLI bidder token")


def test_token_expires(api):
    token = harness.cli_token("--admin", "--ttl", "1s")
    time.sleep(2.2)
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Too Late"}, token=token), 401, "unauthorized",
                 "an admin token past its --ttl must be refused (a leaked token would otherwise work forever)")


def test_token_signed_with_another_key_is_refused(api):
    token = harness.cli_token("--admin", key="a-different-secret-key-0123456789abcdef")
    expect_error(http_request(api, "POST", "/api/bids", {"name": "Other Key"}, token=token), 401, "unauthorized",
                 "a token signed with another SECRET_KEY")


def test_token_without_secret_key_is_a_usage_error():
    result = harness.run_cli("token", "--admin", env={"SECRET_KEY": None})
    assert result.returncode == 2, f"`token` without SECRET_KEY must exit 2 (configuration error), got {result.returncode}"
    assert "SECRET_KEY" in result.stderr, f"the message must name SECRET_KEY: {result.stderr!r}"
    assert result.stdout.strip() == "", f"no token may be printed without a key: {result.stdout!r}"


@pytest.mark.parametrize("args", [[], ["--admin", "--ttl", "5x"], ["--admin", "--ttl"], ["--bidder"]])
def test_token_bad_usage_exits_2(args):
    result = harness.run_cli("token", *args, env={"SECRET_KEY": TEST_SECRET_KEY})
    assert result.returncode == 2 and result.stdout.strip() == "", (
        f"`token {' '.join(args)}` is bad usage: exit 2 and no token, got {result.returncode} {result.stdout!r} {result.stderr!r}")


def test_help_lists_the_token_command():
    result = harness.run_cli("--help")
    assert "token" in result.stdout, f"--help must list the token command: {result.stdout}"


# --------------------------------------------------------------------------- POST /api/bids/{id}/close

def test_close_notifies_clients_and_reports_the_winner(api, api_db, admin):
    lot = create(api, admin, "Closed By API Lot")

    async def scenario():
        clients = [await ws_connect(api.ws_url(lot["id"])) for _ in range(2)]
        try:
            for ws in clients:
                await initial_state(ws)
            await harness.place_bid(clients[0], "ann", '"110.00"')
            await harness.place_bid(clients[0], "bk", '"123.66"')
            for _ in range(2):
                await recv_json(clients[1], what="the observer's new_bid")
            endings = [asyncio.ensure_future(recv_until_closed(ws, timeout=10)) for ws in clients]
            reply = await asyncio.to_thread(http_request, api, "POST", f"/api/bids/{lot['id']}/close", None, token=admin)
            return reply, await asyncio.gather(*endings)
        finally:
            for ws in clients:
                await ws.close()

    reply, endings = run_async(scenario())
    body = expect_json(reply, 200, "POST /api/bids/{id}/close")
    assert body == {"id": lot["id"], "status": "closed", "final_price": "123.66", "winner": "bk"}, (
        f"closing must report the final price and the winner (the last accepted bidder): {body}")
    expected = {"type": "bid_closed", "bid_id": lot["id"], "final_price": "123.66", "winner": "bk"}
    for messages, code, reason in endings:
        assert expected in messages, f"every connected client must be told the auction closed: {messages}"
        assert (code, reason) == (4003, "bid closed"), f"then closed with 4003 'bid closed', got {code} {reason!r}"
    auction = get_auction(api, lot["id"])
    assert (auction["status"], auction["current_price"], auction["leader"], auction["winner"]) == ("closed", "123.66", "bk", "bk"), (
        f"after closing, the auction reads closed with its winner: {auction}")
    assert api_db.query("SELECT status FROM bids_bid WHERE id = %s", (lot["id"],)) == [("closed",)]
    expect_error(http_request(api, "POST", f"/api/bids/{lot['id']}/close", token=admin), 409, "already_closed",
                 "closing twice (a retrying admin must learn it is already done, not see a second winner)")


def test_close_without_bids_has_no_winner(api, admin):
    lot = create(api, admin, "Unsold API Lot", "42.00")
    body = expect_json(http_request(api, "POST", f"/api/bids/{lot['id']}/close", token=admin), 200, "close")
    assert body == {"id": lot["id"], "status": "closed", "final_price": "42.00", "winner": None}, (
        f"an auction nobody bid on closes at its initial price with winner null: {body}")


def test_close_unknown_or_closed(api, admin):
    for bad_id in ("987654321", "0", "abc"):
        expect_error(http_request(api, "POST", f"/api/bids/{bad_id}/close", token=admin), 404, "not_found",
                     f"closing the unknown auction {bad_id}")
    expect_error(http_request(api, "POST", "/api/bids/3/close", token=admin), 409, "already_closed",
                 "closing the seeded closed auction 3")


def test_close_reaches_the_clients_of_every_pod(start_server, postgres, redis):
    db = harness.migrate_and_seed(postgres.create_database())
    pod_a, pod_b = start_server.pods(2, db, env=AUTH_ENV)
    lot = create(pod_a, harness.admin_jwt(), "Two Pods Close Lot")

    async def scenario():
        async with ws_connect(pod_a.ws_url(lot["id"])) as on_a, ws_connect(pod_b.ws_url(lot["id"])) as on_b:
            await initial_state(on_a)
            await initial_state(on_b)
            await harness.place_bid(on_b, "remote", '"150.00"')
            await recv_json(on_a, what="pod B's new_bid on pod A")
            endings = [asyncio.ensure_future(recv_until_closed(ws, timeout=10)) for ws in (on_a, on_b)]
            reply = await asyncio.to_thread(http_request, pod_a, "POST", f"/api/bids/{lot['id']}/close", None,
                                            token=harness.admin_jwt())
            return reply, await asyncio.gather(*endings)

    reply, endings = run_async(scenario(), timeout=60)
    assert expect_json(reply, 200, "close on pod A")["winner"] == "remote"
    expected = {"type": "bid_closed", "bid_id": lot["id"], "final_price": "150.00", "winner": "remote"}
    for pod, (messages, code, reason) in zip("AB", endings):
        assert expected in messages and code == 4003, (
            f"a client on pod {pod} must get bid_closed and close 4003 when the auction is closed through pod A: "
            f"{messages} {code} {reason!r}")


# --------------------------------------------------------------------------- methods, paths, hosts

@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/bids/1", {"GET"}),
    ("PUT", "/api/bids/1", {"GET"}),
    ("POST", "/api/bids/1", {"GET"}),
    ("PUT", "/api/bids", {"GET", "POST"}),
    ("DELETE", "/api/bids", {"GET", "POST"}),
    ("GET", "/api/bids/1/close", {"POST"}),
    ("DELETE", "/api/bids/1/close", {"POST"}),
    ("POST", "/api/bids/1/history", {"GET"}),
])
def test_wrong_method_is_405_with_allow(api, method, path, allowed):
    reply = http_request(api, method, path)
    expect_error(reply, 405, "method_not_allowed", f"{method} {path}")
    allow = {m.strip().upper() for m in (reply.headers.get("Allow") or "").split(",") if m.strip()}
    assert allowed <= allow and method not in allow, (
        f"{method} {path}: the Allow header must list the methods that work ({sorted(allowed)}), got {reply.headers.get('Allow')!r}")
    assert get_auction(api, 1)["status"] == "open", "a refused method must change nothing"


@pytest.mark.parametrize("path", ["/api/nothing", "/api/bids/1/nothing", "/api/bids/1/close/again", "/api/bid",
                                  "/api/bids/abc/history", "/api/bids/1/history/2"])
def test_unknown_api_path_is_404(api, path):
    expect_error(http_request(api, "GET", path), 404, "not_found", f"GET {path}")


def test_disallowed_host_is_400(api, admin, api_db):
    before = auction_count(api_db)
    for method, path, body in (("GET", "/api/bids", None), ("GET", "/api/bids/1", None), ("GET", "/api/bids/1/history", None),
                               ("POST", "/api/bids", {"name": "Evil"})):
        expect_error(http_request(api, method, path, body, token=admin, host=f"evil.example.com:{api.port}"), 400,
                     "bad_request", f"{method} {path} with Host evil.example.com (DNS rebinding protection)")
    assert auction_count(api_db) == before, "a request for a disallowed host must not create anything"
    ok = http_request(api, "GET", "/api/bids/1", host=f"localhost:{api.port}")
    assert ok.status == 200, f"an allowed Host (localhost) must be served: {ok}"


# --------------------------------------------------------------------------- database outage

def test_database_unreachable_is_503(start_server, dedicated_postgres):
    db = harness.migrate_and_seed(dedicated_postgres.create_database())
    server = start_server(db, env=AUTH_ENV)
    admin = harness.admin_jwt()
    assert http_request(server, "GET", "/api/bids/1").status == 200
    requests = [("GET", "/api/bids", None), ("GET", "/api/bids/1", None), ("GET", "/api/bids/1/history", None),
                ("POST", "/api/bids", {"name": "During Outage"}), ("POST", "/api/bids/1/close", None)]
    dedicated_postgres.halt("fast")
    try:
        for method, path, body in requests:
            reply = http_request(server, method, path, body, token=admin, timeout=30)
            expect_error(reply, 503, "unavailable",
                         f"{method} {path} while Postgres is down (a client must know to retry, not see a 500 or a wrong 404)")
        assert http_request(server, "GET", "/healthz").status == 200, "the server must keep serving while Postgres is down"
    finally:
        dedicated_postgres.resume()
    harness.wait_until(lambda: http_request(server, "GET", "/api/bids/1").status == 200, 20,
                       "GET /api/bids/1 answering 200 once Postgres is back")
    auction = get_auction(server, 1)
    assert auction["status"] == "open", f"the close attempted during the outage must not have happened: {auction}"
    assert db.query("SELECT count(*) FROM bids_bid WHERE name = 'During Outage'")[0][0] == 0, (
        "the create attempted during the outage (answered 503) must not have stored anything")
