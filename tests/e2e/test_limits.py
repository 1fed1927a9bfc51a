"""The limits a public server puts on hostile or broken clients (docs/security.md), from outside:

- MAX_CONNECTIONS: the upgrade past it gets 503 {"error":"server_full"} with Retry-After, before
  any database work (it answers while Postgres is frozen), and the place comes back when a
  connection ends;
- MAX_OPENING_CONNECTIONS: upgrades are set up that many at a time; the others wait, unanswered,
  for their place, and one that waited longer than WS_HANDSHAKE_TIMEOUT gets 503 {"error":"busy"};
- MAX_CONNECTIONS_PER_IP: 429 {"error":"too_many_connections"} for the next upgrade from the same
  client address; another address is not affected; X-Forwarded-For counts only from a peer in
  TRUSTED_PROXIES, and then only its right-most untrusted entry;
- HTTP_HEADER_TIMEOUT: a request whose headers are not complete in time (one byte every few
  hundred milliseconds) is dropped, however steadily the bytes come;
- 414 for a request line beyond 8 KiB, 431 for headers beyond 8 KiB, 413 for a body beyond
  16 KiB, 400 for bytes that are not HTTP/1.1; each with a JSON body, then the connection closes;
- names with invisible or bidirectional-control characters are refused with invalid_name;
- a token is never written to the log, at any level;
- every refusal is counted in /metrics under its reason.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

import faults
import harness
from harness import bid_frame, initial_state, recv_json, run_async, ws_connect
from rawws import RawWsClient


# --------------------------------------------------------------------------- raw HTTP

def raw_exchange(port: int, data: bytes, *, source: str | None = None, timeout: float = 5.0) -> bytes:
    """Sends `data` and reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), f"not an HTTP/1.1 response: {raw[:300]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def upgrade_request(port: int, path: str, extra: dict[str, str] | None = None) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    headers.update(extra or {})
    return (f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def refused_upgrade(server: harness.Server, bid_id: int, *, source: str | None = None,
                    forwarded_for: str | None = None) -> tuple[int, dict[str, str], dict]:
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else None
    status, headers, body = parse_response(
        raw_exchange(server.port, upgrade_request(server.port, f"/ws/bid/{bid_id}", extra), source=source))
    assert status != 101, "this upgrade was expected to be refused"
    return status, headers, json.loads(body)


def open_ws(server: harness.Server, bid_id: int, *, source: str | None = None,
            forwarded_for: str | None = None) -> RawWsClient:
    """A WebSocket connection that got its 101 and its initial_state."""
    client = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{bid_id}", source=source)
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else None
    status = client.connect(extra)
    assert status == 101, f"the upgrade must be accepted here, got HTTP {status}"
    state = client.recv_frame().json()
    assert state["type"] == "initial_state", state
    return client


def refusals(server: harness.Server, metric: str, reason: str) -> float:
    return harness.metric_value(harness.metrics_text(server), metric, f'reason="{reason}"')


def wait_open(server: harness.Server, n: int) -> None:
    harness.wait_until(lambda: harness.metric_value(harness.metrics_text(server), "bidding_connections_open") == n,
                       5, f"bidding_connections_open == {n}")


# --------------------------------------------------------------------------- connection limits

def test_max_connections_answers_503_before_any_database_work(workdir, dedicated_postgres):
    db = harness.migrate_and_seed(dedicated_postgres.create_database())
    lot = harness.create_auction(db, "Full House Lot")
    server = harness.start_server(db.url, workdir / "max-connections", env={"MAX_CONNECTIONS": "3"})
    try:
        clients = [open_ws(server, lot["id"]) for _ in range(3)]
        text = harness.metrics_text(server)
        assert harness.metric_value(text, "bidding_connection_limit", 'scope="pod"') == 3
        # A frozen Postgres: an upgrade that needed the database would hang; this one must not.
        faults.freeze_postgres(dedicated_postgres)
        try:
            started = time.monotonic()
            status, headers, body = refused_upgrade(server, lot["id"])
            elapsed = time.monotonic() - started
        finally:
            faults.thaw_postgres(dedicated_postgres)
        assert status == 503 and body["error"] == "server_full", (status, body)
        assert "3" in body["message"], f"the message names the limit: {body}"
        assert headers.get("retry-after") == "5", headers
        assert headers.get("content-type") == "application/json", headers
        assert elapsed < 1.0, f"the refusal must not wait for the (frozen) database: {elapsed:.2f} s"
        assert refusals(server, "bidding_connections_refused_total", "max_connections") == 1
        # The place comes back when a connection ends.
        clients.pop().close()
        wait_open(server, 2)
        clients.append(open_ws(server, lot["id"]))
        for c in clients:
            c.close()
    finally:
        server.stop()


def connect_in_background(server: harness.Server, bid_id: int) -> tuple[threading.Thread, dict]:
    """An upgrade whose answer may take a while: sent from a thread of its own; the result dict
    gets the client, its status and when the answer came (or the error)."""
    out: dict = {}

    def run() -> None:
        client = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{bid_id}", timeout=30)
        out["client"] = client
        try:
            out["status"] = client.connect()
        except OSError as error:
            out["error"] = repr(error)
        out["answered"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def served_again(server: harness.Server, bid_id: int, within: float = 15.0) -> None:
    """A new connection gets its 101 and initial_state again (after a thawed Postgres, the pod may
    answer 1013 for a moment longer)."""
    deadline = time.monotonic() + within
    while True:
        client = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{bid_id}")
        try:
            assert client.connect() == 101
            frame = client.recv_frame()
            if frame.opcode == 1 and frame.json()["type"] == "initial_state":
                return
            assert (frame.opcode, frame.close_code) == (8, 1013), (frame.opcode, frame.payload)
        finally:
            client.close()
        assert time.monotonic() < deadline, "new connections still refused 1013"
        time.sleep(0.2)


def opening_gauges(server: harness.Server) -> tuple[float, float]:
    text = harness.metrics_text(server)
    return (harness.metric_value(text, "bidding_connections_opening"),
            harness.metric_value(text, "bidding_connections_waiting_to_open"))


def test_upgrades_are_set_up_max_opening_connections_at_a_time(workdir, dedicated_postgres):
    """MAX_OPENING_CONNECTIONS=1 and a frozen Postgres: the first connection gets its 101 and waits
    for its snapshot (until DB_TIMEOUT, then 1013); the second upgrade waits, unanswered, for its
    place, and is set up once the first one is: its 101 comes after the first one's close."""
    db = harness.migrate_and_seed(dedicated_postgres.create_database())
    lot = harness.create_auction(db, "One At A Time Lot")
    server = harness.start_server(db.url, workdir / "opening", env={"MAX_OPENING_CONNECTIONS": "1", "DB_TIMEOUT": "1",
                                                                         "DB_LOCK_TIMEOUT": "0.5"})
    try:
        assert harness.metric_value(harness.metrics_text(server), "bidding_connection_limit", 'scope="opening"') == 1
        faults.freeze_postgres(dedicated_postgres)
        thawed = False
        try:
            first = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{lot['id']}", timeout=10)
            assert first.connect() == 101, "the 101 is written before any database work"
            thread, second = connect_in_background(server, lot["id"])
            harness.wait_until(lambda: opening_gauges(server) == (1, 1), 5,
                               "one connection being set up and one waiting for its place", interval=0.05)
            assert "status" not in second, f"the second upgrade must wait for its place: {second}"
            close = first.recv_frame(timeout=10)
            first_closed = time.monotonic()
            assert (close.opcode, close.close_code) == (8, 1013), (close.opcode, close.close_code, close.payload)
            faults.thaw_postgres(dedicated_postgres)
            thawed = True
            thread.join(timeout=15)
            assert second.get("status") == 101, f"the waiting upgrade is set up once the first one is: {second}"
            assert second["answered"] >= first_closed - 0.05, "its 101 came only after the first one's set-up ended"
            frame = second["client"].recv_frame(timeout=10)
            # Its snapshot read: served, or 1013 while the pod still counts Postgres as down.
            assert (frame.opcode, frame.close_code) == (8, 1013) or frame.json()["type"] == "initial_state", frame
            first.close()
            second["client"].close()
        finally:
            if not thawed:
                faults.thaw_postgres(dedicated_postgres)
        harness.wait_until(lambda: opening_gauges(server) == (0, 0), 10, "no connection left being set up")
        served_again(server, lot["id"])
    finally:
        server.stop()


def test_an_upgrade_that_waits_longer_than_ws_handshake_timeout_for_its_place_gets_503_busy(workdir,
                                                                                         dedicated_postgres):
    """MAX_OPENING_CONNECTIONS=1, WS_HANDSHAKE_TIMEOUT=1 and a frozen Postgres: the place frees at
    DB_TIMEOUT (2 s, the first connection's 1013), too late for the second upgrade, which is then
    answered 503 {"error":"busy"} with Retry-After: 1 at once, counted as opening_timeout."""
    db = harness.migrate_and_seed(dedicated_postgres.create_database())
    lot = harness.create_auction(db, "Too Long A Wait Lot")
    server = harness.start_server(db.url, workdir / "opening-timeout",
                                  env={"MAX_OPENING_CONNECTIONS": "1", "WS_HANDSHAKE_TIMEOUT": "1", "DB_TIMEOUT": "2"})
    try:
        faults.freeze_postgres(dedicated_postgres)
        try:
            first = RawWsClient("127.0.0.1", server.port, f"/ws/bid/{lot['id']}", timeout=10)
            assert first.connect() == 101
            asked = time.monotonic()
            thread, second = connect_in_background(server, lot["id"])
            close = first.recv_frame(timeout=10)
            freed = time.monotonic()
            assert close.close_code == 1013, close.payload
            thread.join(timeout=10)
        finally:
            faults.thaw_postgres(dedicated_postgres)
        client = second["client"]
        assert second.get("status") == 503, second
        assert second["answered"] - freed < 1.0, "answered as soon as a place freed"
        assert second["answered"] - asked > 1.0, "it waited longer than WS_HANDSHAKE_TIMEOUT"
        assert client.response_headers.get("retry-after") == "1", client.response_headers
        length = int(client.response_headers["content-length"])
        body = client.buffer + client.sock.recv(length)
        assert json.loads(body[:length])["error"] == "busy", body
        first.close()
        client.close()
        assert refusals(server, "bidding_connections_refused_total", "opening_timeout") == 1
        # The place was given back: the next connection is set up as usual.
        harness.wait_until(lambda: opening_gauges(server) == (0, 0), 10, "no connection left being set up")
        served_again(server, lot["id"])
    finally:
        server.stop()


def test_max_connections_per_ip_counts_each_client_address(workdir, seeded_db):
    lot = harness.create_auction(seeded_db, "Per Address Lot")
    server = harness.start_server(seeded_db.url, workdir / "per-ip", env={"MAX_CONNECTIONS_PER_IP": "2"})
    try:
        mine = [open_ws(server, lot["id"], source="127.0.0.1") for _ in range(2)]
        status, headers, body = refused_upgrade(server, lot["id"], source="127.0.0.1")
        assert status == 429 and body["error"] == "too_many_connections", (status, body)
        assert "2" in body["message"] and headers.get("retry-after"), (headers, body)
        # Another address has its own count; a forged X-Forwarded-For from an untrusted peer is ignored.
        other = open_ws(server, lot["id"], source="127.0.0.2", forwarded_for="198.51.100.1")
        assert refused_upgrade(server, lot["id"], source="127.0.0.1", forwarded_for="198.51.100.2")[0] == 429, (
            "X-Forwarded-For from a peer that is not in TRUSTED_PROXIES must not change who the client is")
        assert refusals(server, "bidding_connections_refused_total", "max_connections_per_ip") == 2
        assert harness.metric_value(harness.metrics_text(server), "bidding_connection_limit",
                                    'scope="client_address"') == 2
        mine.pop().close()
        wait_open(server, 2)
        mine.append(open_ws(server, lot["id"], source="127.0.0.1"))
        for c in mine + [other]:
            c.close()
    finally:
        server.stop()


def test_forwarded_for_counts_only_behind_a_trusted_proxy(workdir, seeded_db):
    lot = harness.create_auction(seeded_db, "Behind The Proxy Lot")
    server = harness.start_server(seeded_db.url, workdir / "proxies",
                                  env={"MAX_CONNECTIONS_PER_IP": "1", "TRUSTED_PROXIES": "127.0.0.1, 127.0.0.9/32"})
    try:
        proxy = "127.0.0.1"
        a = open_ws(server, lot["id"], source=proxy, forwarded_for="203.0.113.1")
        b = open_ws(server, lot["id"], source=proxy, forwarded_for="203.0.113.2")
        assert refused_upgrade(server, lot["id"], source=proxy, forwarded_for="203.0.113.1")[0] == 429, (
            "two connections of the client 203.0.113.1 through the proxy: the second is over its limit of 1")
        # The left of the list is the client's to write: only the entry the proxy added counts.
        assert refused_upgrade(server, lot["id"], source=proxy, forwarded_for="10.9.9.9, 203.0.113.2")[0] == 429
        # Two trusted hops (127.0.0.9 and the peer): the client is the entry before them.
        assert refused_upgrade(server, lot["id"], source=proxy,
                               forwarded_for="203.0.113.1, 127.0.0.9")[0] == 429
        c = open_ws(server, lot["id"], source=proxy, forwarded_for="6.6.6.6, 203.0.113.3, 127.0.0.9")
        # An untrusted peer is itself the client, whatever it forwards.
        d = open_ws(server, lot["id"], source="127.0.0.2", forwarded_for="203.0.113.4")
        assert refused_upgrade(server, lot["id"], source="127.0.0.2", forwarded_for="203.0.113.5")[0] == 429
        for x in (a, b, c, d):
            x.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------- slow and oversized requests

def test_headers_trickled_in_are_dropped_at_http_header_timeout(workdir, seeded_db):
    server = harness.start_server(seeded_db.url, workdir / "slowloris", env={"HTTP_HEADER_TIMEOUT": "1"})
    try:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            started = time.monotonic()
            closed_at = None
            for byte in request:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic()
                    break
                sock.settimeout(0.2)
                try:
                    if sock.recv(4096) == b"":
                        closed_at = time.monotonic()
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic()
                    break
            assert closed_at is not None, "a client sending its headers one byte every 0.2 s must be dropped"
            assert 0.9 <= closed_at - started <= 2.0, (
                f"dropped after {closed_at - started:.2f} s; HTTP_HEADER_TIMEOUT is 1 s")
        assert refusals(server, "bidding_http_refused_total", "header_timeout") == 1
        # A client that sends its request in time is answered.
        status, _, body = parse_response(raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                                                   b"Connection: close\r\n\r\n"))
        assert status == 200 and json.loads(body) == {"status": "ok"}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(workdir, seeded_db):
    pool = harness.ServerPool(workdir / "servers", default_db=seeded_db)
    yield pool(env={"SECRET_KEY": harness.TEST_SECRET_KEY}, name="limits")
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.mark.parametrize("case", ["uri_too_long", "headers_too_large", "body_too_large", "malformed_request"])
def test_oversized_or_broken_requests_get_their_status(server, case):
    before = refusals(server, "bidding_http_refused_total", case)
    request, status, error = {
        "uri_too_long": (b"GET /healthz?pad=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        "headers_too_large": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                              + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 100) for i in range(90)) + b"\r\n",
                              431, "headers_too_large"),
        "body_too_large": (b"POST /api/bids HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 17000\r\n\r\n" + b"{" * 17000, 413, "payload_too_large"),
        "malformed_request": (b"HELLO THERE\r\n\r\n", 400, "bad_request"),
    }[case]
    raw = raw_exchange(server.port, request)
    got, headers, body = parse_response(raw)
    assert got == status, f"{case}: expected {status}, got {raw[:300]!r}"
    assert headers.get("content-type") == "application/json" and json.loads(body)["error"] == error, raw[:300]
    assert headers.get("connection") == "close", f"{case}: the connection closes after the refusal: {headers}"
    assert refusals(server, "bidding_http_refused_total", case) == before + 1
    assert harness.healthz_status(server.port) == 200


def test_a_request_line_just_under_the_limit_is_routed(server):
    path = "/healthz?pad=" + "x" * 7000
    status, _, _ = parse_response(raw_exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                                             "Connection: close\r\n\r\n".encode()))
    assert status == 200


# --------------------------------------------------------------------------- names shown to everybody

@pytest.mark.parametrize("name", ["ali\u200bce", "\u202eecila", "bob\u200d", "\u2066eve\u2069", "x\ufeff",
                                  "\u3164", "\u3000 \u2003"])
def test_invisible_or_bidi_names_are_refused(server, seeded_db, name):
    lot = harness.create_auction(seeded_db, "Name Check Lot")

    async def scenario():
        async with ws_connect(server.ws_url(lot["id"])) as ws:
            await initial_state(ws)
            await ws.send(bid_frame(name, '"150.00"', ref="n1"))
            return await recv_json(ws, what="the reply to a bid with a hidden character in its name")

    reply = run_async(scenario())
    assert reply.get("type") == "error" and reply.get("code") == "invalid_name" and reply.get("ref") == "n1", reply
    assert harness.history(seeded_db, lot["id"]) == []
    created = harness.http_request(server, "POST", "/api/bids", {"name": name, "initial_price": "5.00"},
                                   token=harness.admin_jwt())
    assert created.status == 400 and created.json()["error"] == "invalid_name", created


# --------------------------------------------------------------------------- tokens stay out of the log

def test_no_token_in_the_log_at_trace_level(workdir, seeded_db):
    lot = harness.create_auction(seeded_db, "Quiet Log Lot")
    server = harness.start_server(seeded_db.url, workdir / "quiet-log",
                                  env={"LOG_LEVEL": "trace", "SECRET_KEY": harness.TEST_SECRET_KEY})
    try:
        good = harness.bidder_jwt("tracy")
        admin = harness.admin_jwt()
        forged = harness.make_jwt(harness.token_claims("mallory", "bidder"), key="another-key-of-thirty-two-chars!!")

        async def scenario():
            async with ws_connect(f"{server.ws_url(lot['id'])}?token={good}") as ws:
                await initial_state(ws)
                await ws.send('{"price":"110.00","ref":"q"}')
                await recv_json(ws, what="new_bid")
            for token in (forged, admin):
                async with ws_connect(f"{server.ws_url(lot['id'])}?token={token}") as ws:
                    await harness.recv_until_closed(ws)

        run_async(scenario())
        # Refused upgrades (404, 403, 400) with a token in their query.
        for path in (f"/ws/bid/0?token={good}", f"/ws/bid/{lot['id']}?since=x&token={good}"):
            raw_exchange(server.port, upgrade_request(server.port, path))
        raw_exchange(server.port, upgrade_request(server.port, f"/ws/bid/{lot['id']}?token={good}",
                                                  {"Origin": "http://evil.example"}))
        harness.http_request(server, "GET", f"/api/bids?token={admin}", token=admin)
        harness.http_request(server, "DELETE", "/api/bids/999999", token=admin)
        server.stop()
        log = server.log_text()
        assert "trace" in log.lower() or "debug" in log.lower(), "the log must be at trace level for this test"
        for name, token in (("bidder", good), ("admin", admin), ("forged", forged)):
            for part in [token] + token.split("."):
                if len(part) >= 16:
                    assert part not in log, f"the {name} token (or a part of it) appears in the log"
        assert not re.search(r"token=[A-Za-z0-9_-]{8,}", log), "a ?token= value appears in the log"
    finally:
        server.stop()
