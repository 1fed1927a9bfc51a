"""The operator's HTTP endpoints on APP_PORT: /healthz, /readyz, /version, /metrics, and the
container health check command.

/readyz must follow what a load balancer needs to know: ready while Postgres answers and the pod is
not draining; 503 with the reasons otherwise. Redis is not a condition (every pod loses it at once),
but its state is in the body: "redis":"ok" or "unavailable".
"""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import harness
from harness import run_async


def http_get(server: harness.Server, path: str, timeout: float = 3.0) -> tuple[int, str, str]:
    """(status, content type, body) of GET path on the server."""
    try:
        with urllib.request.urlopen(f"{server.http_url}{path}", timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def wait_status(server: harness.Server, path: str, status: int, timeout: float, what: str) -> str:
    last = None

    def check():
        nonlocal last
        last = http_get(server, path)
        return last[0] == status

    try:
        harness.wait_until(check, timeout, what)
    except TimeoutError:
        raise AssertionError(f"{what}: {path} still answers {last} after {timeout} s") from None
    return last[2]


SLACK = 0.5  # the test's own polling and scheduling on a 2-core machine


def wait_until_body(server: harness.Server, path: str, predicate, timeout: float, what: str) -> dict:
    """Polls GET path until its JSON body satisfies `predicate`."""
    last = None

    def check():
        nonlocal last
        last = http_get(server, path)
        try:
            return predicate(json.loads(last[2]))
        except ValueError:
            return False

    try:
        harness.wait_until(check, timeout, what)
    except TimeoutError:
        raise AssertionError(f"{what}: {path} still answers {last} after {timeout} s") from None
    return json.loads(last[2])


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"/metrics must expose {name}{{{labels}}}; got:\n{text[:2000]}"
    return float(match.group(1))


def test_health_version_and_ready_with_postgres_and_redis(start_server, seeded_db, redis):
    server = start_server(seeded_db, use_redis=True, env={"APP_NAME": "auction-house", "APP_VERSION": "9.8.7"})
    status, _, body = http_get(server, "/healthz")
    assert status == 200, f"liveness must be 200 while serving, got {status} {body}"
    body = wait_status(server, "/readyz", 200, 10, "a pod with Postgres and Redis up must become ready")
    assert json.loads(body)["status"] == "ready"
    status, ctype, body = http_get(server, "/version")
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(body) == {"name": "auction-house", "version": "9.8.7", "env": "test"}, (
        f"/version must report APP_NAME, APP_VERSION and ENV, got {body}")


def raw_request(server: harness.Server, target: str, upgrade: bool = False) -> tuple[int, str]:
    """(status, body) of a GET whose request target is sent byte for byte (no client re-encodes it)."""
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    if upgrade:
        head += ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall((head + "Connection: close\r\n\r\n" if not upgrade else head + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        header, _, body = data.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = re.search(rb"(?im)^content-length: *([0-9]+)", header)
        while length and len(body) < int(length.group(1)):
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
    return status, body.decode(errors="replace")


def test_targets_are_read_by_boost_url_query_values_decoded_and_unparsable_ones_are_400(start_server, seeded_db):
    server = start_server(seeded_db)
    for target, upgrade in [("/healthz?x=%zz", False), ("/healthz#top", False), ("/api/bids?status=%zz", False),
                            ("/bid/1?x=%4", False), ("/ws/bid/1?since=%zz", True), ("/ws/bid/1?token=%4", True),
                            ("/ws/bid/1#x", True), ("/a|b", False), ("*", False)]:
        status, body = raw_request(server, target, upgrade)
        assert status == 400 and json.loads(body).get("error") == "bad_request", (
            f"GET {target}{' (upgrade)' if upgrade else ''}: a target that is not a path and query (RFC 3986) must "
            f"get 400 bad_request, got {status} {body}")
    assert raw_request(server, "/healthz?x=%41")[0] == 200
    assert raw_request(server, "/api/bids?status=op%65n&limit=%32")[0] == 200, "query values are percent-decoded"
    assert raw_request(server, "/ws/bid/1?since=%35", upgrade=True)[0] == 101, "since=%35 is since=5"
    assert raw_request(server, "/ws/bid/1?since=%20", upgrade=True)[0] == 400, "a decoded space is not a since"


def test_metrics_count_connections_messages_and_bids(start_server, seeded_db):
    server = start_server(seeded_db)
    lot = harness.create_auction(seeded_db, "Metrics Lot")

    async def scenario():
        async with harness.ws_connect(server.ws_url(lot["id"])) as ws:
            await harness.initial_state(ws)
            await harness.place_bid(ws, "meter", "150.00", ref="m1")
            await ws.send(harness.bid_frame("meter", "120.00", "m2"))
            reply = await harness.recv_json(ws, what="the price_too_low reply")
            assert reply["code"] == "price_too_low"
            status, ctype, text = http_get(server, "/metrics")
            assert status == 200 and ctype.startswith("text/plain"), f"/metrics must be Prometheus text, got {ctype}"
            return text

    text = run_async(scenario(), timeout=30)
    assert metric(text, "bidding_connections_open") >= 1, "the open connection must be counted"
    assert metric(text, "bidding_auction_connections", f'bid_id="{lot["id"]}"') == 1, (
        "connections per auction must show the one client of the lot")
    assert metric(text, "bidding_bids_accepted_total") >= 1
    assert metric(text, "bidding_bids_rejected_total", 'code="price_too_low"') >= 1, (
        "rejections must be counted by error code")
    assert metric(text, "bidding_messages_in_total") >= 2
    assert metric(text, "bidding_messages_out_total") >= 4  # initial_state, new_bid, bid_accepted, error
    assert metric(text, "bidding_bid_decision_seconds_count") >= 2, "every decided bid must be timed"
    assert metric(text, "bidding_fanout_seconds_count") >= 1
    assert metric(text, "bidding_postgres_up") == 1
    assert metric(text, "bidding_draining") == 0
    for line in text.splitlines():
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", line), (
            f"not a Prometheus sample line: {line!r}")


def test_readyz_follows_postgres_and_redis_outages(start_server, dedicated_postgres, dedicated_redis):
    db = harness.migrate_and_seed(dedicated_postgres.create_database())
    server = start_server(db, redis=dedicated_redis)
    wait_status(server, "/readyz", 200, 10, "the pod must be ready")

    assert wait_until_body(server, "/readyz", lambda b: b.get("redis") == "ok", 10, "Redis connected") == {
        "status": "ready", "postgres": "ok", "redis": "ok"}

    # Every pod loses Redis at once: they stay in the load balancer, and say what is missing.
    dedicated_redis.kill()
    killed = time.monotonic()
    wait_until_body(server, "/readyz", lambda b: b.get("redis") == "unavailable", 3 + SLACK,
                    "/readyz must report redis unavailable within 3 s of Redis going away")
    status, _, body = http_get(server, "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "postgres": "ok", "redis": "unavailable"}, (
        f"a pod cut from Redis still serves its clients: /readyz must stay 200 ({status} {body})")
    assert metric(http_get(server, "/metrics")[2], "bidding_redis_connected") == 0
    print(f"redis reported unavailable {time.monotonic() - killed:.2f} s after the kill")
    assert http_get(server, "/healthz")[0] == 200, "a Redis outage must not fail liveness (no restart loop)"
    dedicated_redis.restart()
    wait_until_body(server, "/readyz", lambda b: b.get("redis") == "ok", 10, "redis ok again once Redis is back")
    assert metric(http_get(server, "/metrics")[2], "bidding_redis_connected") == 1

    dedicated_postgres.halt("fast")
    try:
        body = wait_status(server, "/readyz", 503, 10, "a pod without Postgres must leave the load balancer")
        assert "postgres unreachable" in json.loads(body)["reasons"], body
        assert json.loads(body)["postgres"] == "unavailable", body
        assert http_get(server, "/healthz")[0] == 200, "a Postgres outage must not fail liveness"
    finally:
        dedicated_postgres.resume()
    wait_status(server, "/readyz", 200, 10, "the pod must be ready again once Postgres is back")


def test_readyz_is_503_while_draining(start_server, seeded_db):
    server = start_server(seeded_db, env={"DRAIN_TIMEOUT": "3"})
    lot = harness.create_auction(seeded_db, "Drain Ready Lot")

    async def scenario():
        # An open connection keeps the drain going long enough to observe /readyz during it.
        async with harness.ws_connect(server.ws_url(lot["id"])) as ws:
            await harness.initial_state(ws)
            server.exit_expected = True
            server.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 2
            seen = []
            while time.monotonic() < deadline:
                try:
                    seen.append(http_get(server, "/readyz", timeout=0.5))
                except OSError:
                    return None  # the listener is closed: no new client can arrive either
                if seen[-1][0] == 503:
                    return seen[-1]
            return seen[-1] if seen else None  # still 200 after 2 s: the drain did not show

    last = run_async(scenario(), timeout=20)
    assert last is None or (last[0] == 503 and "draining" in last[2]), (
        f"a draining pod must answer /readyz 503 (or refuse connections), got {last}")


def test_healthcheck_command(start_server, seeded_db):
    server = start_server(seeded_db)
    env = harness.clean_env({"APP_PORT": str(server.port), "DATABASE_URL": seeded_db.url, "ENV": "test"})
    ok = subprocess.run([str(harness.require_binary()), "healthcheck"], env=env, capture_output=True, timeout=10)
    assert ok.returncode == 0, f"healthcheck must succeed against a serving pod: {ok.stderr!r}"
    env["APP_PORT"] = str(harness.free_port())
    down = subprocess.run([str(harness.require_binary()), "healthcheck"], env=env, capture_output=True, timeout=10)
    assert down.returncode == 1, "healthcheck must fail when nothing answers on APP_PORT"
