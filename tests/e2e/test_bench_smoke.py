"""A few-second smoke run of each bidding-bench scenario against the real server, checked against
Postgres: every bid the tool reports bid_accepted is stored with its seq and price, no bid answered
overloaded/unavailable is stored, and each observer's digest (FNV-1a 64 over "SEQ," of the
new_bid messages it received) equals the one recomputed from bids_bidhistory.

test_framing_against_a_scripted_server checks the tool's own WebSocket client against a server
on a plain socket that sends what bidding-server never does (fragments, ping frames, a 200 KB
message, masked and malformed frames, bad handshakes) and records the frames the client sends.

The tool (docs/bench-tool.md) is built beside the server: harness.SERVER_BINARY.parent /
"bidding-bench". Small numbers keep the whole module around 20 s.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time

import pytest

import harness
from benchtool import BENCH, check_bids_against_db, check_observers_against_db, read_jsonl, run_bench

pytestmark = pytest.mark.skipif(
    not os.access(BENCH, os.X_OK),
    reason=f"{BENCH} is missing: build it with `cmake --build build --target bidding-bench` "
           "(or point BIDDING_SERVER at a build folder that has it)")


def test_usage_help_and_self_test():
    _, result = run_bench("--help", report=False)
    for option in ("--url", "--observers", "--pipelined", "--observer-report", "--bid-report", "--pids", "--sources"):
        assert option in result.stdout, f"--help must document {option}"
    _, result = run_bench("--self-test", report=False)
    assert "all checks passed" in result.stdout
    run_bench("nosuchscenario", expect_rc=2)
    run_bench("fanout", "--rate", "10", "--pipelined", expect_rc=2)
    run_bench("hot", "--observers", "x", expect_rc=2)
    # Nobody listening: the run cannot happen at all.
    report, _ = run_bench("idle", "--url", f"ws://127.0.0.1:{harness.free_port()}", "--connections", "3",
                          "--connect-timeout", "5", "--quiet", expect_rc=1)
    assert report["ok"] is False and report["connect"]["failed"] == 3, report


def test_idle(start_server, seeded_db):
    server = start_server(seeded_db)
    report, _ = run_bench("idle", "--url", f"ws://127.0.0.1:{server.port}", "--auction", 1, "--connections", 60,
                          "--concurrency", 20, "--hold", "0.5", "--pids", server.proc.pid, "--quiet")
    assert report["ok"] and report["server_kind"] == "bidding-server", report
    assert report["connect"]["connected"] == 60 and report["connect"]["failed"] == 0, report["connect"]
    assert report["connect"]["per_second"] > 0
    assert report["connections"]["connected_at_end"] == 60, report["connections"]
    (proc,) = report["processes"]
    assert proc["pid"] == server.proc.pid and proc["alive"], proc
    assert proc["rss_kib_before"] > 0 and proc["rss_kib_held"] > 0 and proc["rss_kib_per_connection"] is not None, proc


def test_fanout(start_server, seeded_db, tmp_path):
    server = start_server(seeded_db)
    lot = harness.create_auction(seeded_db, "Bench fanout", "10.00")
    observers_path, bids_path = tmp_path / "observers.jsonl", tmp_path / "bids.jsonl"
    report, _ = run_bench("fanout", "--url", f"ws://127.0.0.1:{server.port}", "--auction", lot["id"],
                          "--observers", 20, "--pipelined", "--window", 16, "--duration", "1.5", "--settle", 5,
                          "--pids", server.proc.pid, "--observer-report", observers_path, "--bid-report", bids_path,
                          "--quiet")
    assert report["ok"] and report["server_kind"] == "bidding-server" and report["load"]["settled"], report
    assert report["start_price"] == "10.01"
    bids = report["bids"]
    assert bids["sent"] > 0 and bids["unanswered"] == 0 and bids["duplicate_reply"] == 0, bids
    # One bidder with strictly increasing prices on a fresh auction: every bid wins.
    assert bids["replies"] == {"bid_accepted": bids["sent"]}, bids
    observers = report["observers"]
    assert observers["connected_at_end"] == 20 and observers["anomalies"] == 0, observers
    assert observers["deliveries"] == 20 * bids["sent"], observers
    assert observers["deliveries_per_second"] > 0 and report["fanout_latency_us"]["count"] == observers["deliveries"]
    assert 0 < report["fanout_latency_us"]["p50"] <= report["fanout_latency_us"]["p99"] <= report["fanout_latency_us"]["max"]
    assert report["processes"][0]["cpu_percent"] is not None
    sent = read_jsonl(bids_path)
    assert len(sent) == bids["sent"]
    assert check_bids_against_db(sent, seeded_db, [lot["id"]]) == bids["sent"]
    assert len(harness.history(seeded_db, lot["id"])) == bids["sent"]
    check_observers_against_db(read_jsonl(observers_path), seeded_db, 20)


def test_hot(start_server, seeded_db, tmp_path):
    server = start_server(seeded_db)
    lot = harness.create_auction(seeded_db, "Bench hot")
    observers_path, bids_path = tmp_path / "observers.jsonl", tmp_path / "bids.jsonl"
    report, _ = run_bench("hot", "--url", f"ws://127.0.0.1:{server.port}", "--auction", lot["id"], "--bidders", 2,
                          "--observers", 20, "--duration", "1.5", "--settle", 5, "--observer-report", observers_path,
                          "--bid-report", bids_path, "--quiet")
    assert report["ok"] and report["load"]["settled"], report
    bids = report["bids"]
    assert bids["sent"] > 0 and bids["unanswered"] == 0 and bids["duplicate_reply"] == 0, bids
    assert set(bids["replies"]) <= {"bid_accepted", "price_too_low"}, bids
    assert bids["decided"] == bids["sent"] and bids["decided_per_second"] > 0, bids
    assert report["reply_latency_us"]["count"] == bids["sent"]
    assert report["observers"]["anomalies"] == 0 and report["observers"]["connected_at_end"] == 20
    sent = read_jsonl(bids_path)
    accepted = check_bids_against_db(sent, seeded_db, [lot["id"]])
    assert accepted == bids["replies"].get("bid_accepted", 0) > 0
    assert len(harness.history(seeded_db, lot["id"])) == accepted
    assert report["observers"]["deliveries"] == 20 * accepted
    check_observers_against_db(read_jsonl(observers_path), seeded_db, 20)


def test_many_over_two_pods(start_server, seeded_db, redis, tmp_path):
    """Closed-loop bidding on three auctions at once, clients spread over two servers sharing Redis."""
    pods = start_server.pods(2, seeded_db)
    lots = [harness.create_auction(seeded_db, f"Bench many {i}") for i in range(3)]
    ids = [lot["id"] for lot in lots]
    assert ids == list(range(ids[0], ids[0] + 3)), f"the new auctions must have consecutive ids: {ids}"
    observers_path, bids_path = tmp_path / "observers.jsonl", tmp_path / "bids.jsonl"
    urls = ",".join(f"ws://127.0.0.1:{pod.port}" for pod in pods)
    report, _ = run_bench("many", "--url", urls, "--auctions", f"{ids[0]}-{ids[-1]}", "--bidders-per-auction", 2,
                          "--observers-per-auction", 4, "--threads", 2, "--duration", "1.5", "--settle", 5,
                          "--observer-report", observers_path, "--bid-report", bids_path, "--quiet")
    assert report["ok"] and report["load"]["settled"], report
    assert report["auctions"]["count"] == 3 and report["auctions"]["decided_min"] > 0, report["auctions"]
    bids = report["bids"]
    assert bids["unanswered"] == 0 and bids["duplicate_reply"] == 0 and bids["decided"] == bids["sent"], bids
    assert report["observers"]["anomalies"] == 0
    observers = read_jsonl(observers_path)
    assert {o["url"] for o in observers} == set(urls.split(",")), "observers are spread over both servers"
    accepted = check_bids_against_db(read_jsonl(bids_path), seeded_db, ids)
    assert accepted == bids["replies"].get("bid_accepted", 0) > 0
    assert sum(len(harness.history(seeded_db, i)) for i in ids) == accepted
    check_observers_against_db(observers, seeded_db, 12)


def test_overload(start_server, seeded_db, tmp_path):
    server = start_server(seeded_db)
    lot = harness.create_auction(seeded_db, "Bench overload")
    observers_path, bids_path = tmp_path / "observers.jsonl", tmp_path / "bids.jsonl"
    report, _ = run_bench("overload", "--url", f"ws://127.0.0.1:{server.port}", "--auction", lot["id"],
                          "--bidders", 4, "--rate", 100, "--observers", 20, "--duration", "1.5", "--settle", 5,
                          "--pids", server.proc.pid, "--observer-report", observers_path, "--bid-report", bids_path,
                          "--quiet")
    assert report["ok"] and report["load"]["settled"], report
    bids = report["bids"]
    # 4 bidders x 100 bids/s x 1.5 s, evenly paced.
    assert 500 <= bids["sent"] <= 700, bids
    assert bids["unanswered"] == 0 and bids["duplicate_reply"] == 0 and bids["replied"] == bids["sent"], bids
    assert bids["replies"].get("bid_accepted", 0) > bids["sent"] // 2, f"most bids of the shared counter win: {bids}"
    observers = report["observers"]
    assert observers["connected_at_end"] == 20 and observers["closed_by_server"] == 0, observers
    assert observers["anomalies"] == 0
    sent = read_jsonl(bids_path)
    assert len(sent) == bids["sent"] and len({b["price"] for b in sent}) == len(sent), "prices are unique"
    accepted = check_bids_against_db(sent, seeded_db, [lot["id"]])
    assert accepted == bids["replies"]["bid_accepted"]
    if not set(bids["replies"]) & {"in_doubt"}:
        assert len(harness.history(seeded_db, lot["id"])) == accepted
    check_observers_against_db(read_jsonl(observers_path), seeded_db, 20)


# --------------------------------------------------------------------------- the client's framing

def _frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bytes | None = None) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n, m = len(payload), 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


class ScriptedServer:
    """A WebSocket server on a plain socket playing one script per auction id (the last part of
    the path), recording every frame the client sends: (auction, opcode, masked, payload)."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.frames: list[tuple[int, int, bool, bytes]] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def wait(self) -> None:
        for t in list(self.threads):
            t.join(10)

    def client_frames(self, auction: int) -> list[tuple[int, bool, bytes]]:
        with self.lock:
            return [(op, masked, payload) for a, op, masked, payload in self.frames if a == auction]

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _read_frame(self, conn: socket.socket, auction: int) -> tuple[int, bytes] | None:
        def exact(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data
        try:
            b0, b1 = exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", exact(8))[0]
            key = exact(4) if b1 & 0x80 else b""
            payload = exact(n)
        except (EOFError, OSError):
            return None
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.frames.append((auction, b0 & 0x0F, bool(b1 & 0x80), payload))
        return b0 & 0x0F, payload

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            lines = request.decode().split("\r\n")
            auction = int(lines[0].split()[1].rstrip("/").rsplit("/", 1)[1])
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + self.GUID).encode()).digest()).decode()
            if auction == 4:
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                return
            if auction == 5:
                accept = base64.b64encode(b"not the right key!!!").decode()
            upgrade = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()
            initial = json.dumps({"type": "initial_state", "data": []}).encode()
            if auction == 1:
                # initial_state in three fragments, the first in the same segment as the 101, a
                # ping frame between fragments; a 200 KB message (64-bit length) sent in uneven
                # pieces; a binary frame; a JSON ping. Then a close 4321 once the pongs are in.
                conn.sendall(upgrade + _frame(1, initial[:10], fin=False))
                time.sleep(0.05)
                conn.sendall(_frame(9, b"hb") + _frame(0, initial[10:20], fin=False))
                conn.sendall(_frame(0, initial[20:]))
                big = _frame(1, json.dumps({"type": "note", "pad": "x" * 200_000}).encode())
                for i in range(0, len(big), 70_001):
                    conn.sendall(big[i:i + 70_001])
                    time.sleep(0.01)
                conn.sendall(_frame(2, b"\x00\x01") + _frame(1, b'{"type":"ping"}'))
                got = set()
                while got != {9, 1}:
                    frame = self._read_frame(conn, auction)
                    if frame is None:
                        return
                    got.add(9 if frame[0] == 10 else frame[0])
                conn.sendall(_frame(8, struct.pack("!H", 4321) + b"bye"))
                self._read_frame(conn, auction)  # the client's close
                return
            conn.sendall(upgrade + _frame(1, initial))
            if auction == 2:
                conn.sendall(_frame(1, b'{"type":"x"}', mask=b"abcd"))
            elif auction == 3:
                conn.sendall(bytes([0x83, 0x01, 0x78]))  # opcode 3
            while (frame := self._read_frame(conn, auction)) is not None:
                if frame[0] == 8:
                    if auction == 6:
                        conn.sendall(_frame(8, frame[1][:2]))
                    return


@pytest.fixture
def scripted_server():
    server = ScriptedServer()
    yield server
    server.close()


def test_framing_against_a_scripted_server(scripted_server):
    """The tool's own WebSocket client: fragments with a control frame between them, a 200 KB
    message across reads, masked pongs and closes, server close codes, protocol errors (a masked
    server frame, a bad opcode) answered with a masked close 1002 and counted, handshake failures."""
    srv = scripted_server
    url = f"ws://127.0.0.1:{srv.port}"

    def idle(auction: int, expect_rc: int = 0) -> dict:
        report, _ = run_bench("idle", "--url", url, "--auction", auction, "--connections", 3, "--hold", "0.5",
                              "--connect-timeout", 10, "--quiet", expect_rc=expect_rc)
        return report

    report = idle(1)
    srv.wait()
    assert report["connect"]["connected"] == 3, report["connect"]
    assert report["connections"]["closed_by_server"] == 3 and report["connections"]["close_codes"] == {"4321": 3}, report
    assert report["messages"] == {"received": 12, "bytes": report["messages"]["bytes"], "malformed": 0, "pings": 3,
                                  "binary": 3, "protocol_errors": 0}, report["messages"]
    assert report["messages"]["bytes"] > 3 * 200_000
    frames = srv.client_frames(1)
    assert all(masked for _, masked, _ in frames), f"every client frame is masked: {frames}"
    assert sorted(frames) == sorted([(10, True, b"hb"), (1, True, b'{"type":"pong"}'),
                                     (8, True, struct.pack("!H", 4321))] * 3), frames

    for auction in (2, 3):
        report = idle(auction)
        srv.wait()
        assert report["connections"]["close_codes"] == {"error": 3}, report["connections"]
        assert report["messages"]["protocol_errors"] == 3, report["messages"]
        assert srv.client_frames(auction) == [(8, True, struct.pack("!H", 1002))] * 3

    report = idle(4, expect_rc=1)
    assert report["connect"]["failures"] == {"handshake: HTTP 503": 3}, report["connect"]
    report = idle(5, expect_rc=1)
    assert report["connect"]["failures"] == {"handshake: 101 response with a wrong or missing Sec-WebSocket-Accept": 3}

    # The end of the run closes with a masked 1000; the server's answer ends the connection.
    report = idle(6)
    srv.wait()
    assert report["connections"]["connected_at_end"] == 3 and report["connections"]["closed_by_server"] == 0
    assert srv.client_frames(6) == [(8, True, struct.pack("!H", 1000))] * 3
