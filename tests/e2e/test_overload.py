"""More bids than the server can take: every bid still gets exactly one reply, in time, and nothing
breaks.

- Bounded queues: beyond MAX_PENDING_BIDS_PER_AUCTION (or MAX_PENDING_BIDS) undecided bids, a bid
  is answered "overloaded" at once and never stored.
- The flood that crashed both pods before: two pods, 400 observers, 40 bidders sending 250 bids/s
  each on one auction (10,000 bids/s offered, with the per-connection rate limit off) for
  FLOOD_SECONDS (60 by default). Both pods stay up and responsive (/healthz within 100 ms, new
  connections get their initial_state, another auction keeps working, memory bounded), every bid
  gets one reply within 5 s, and every observer ends still connected holding every accepted bid,
  in order (its digest equals Postgres's). Against a sanitized server (scripts/sanitize.sh:
  BIDDING_SANITIZER) the rate is divided and the time bounds multiplied by harness.SLOWDOWN.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness
from benchtool import check_bids_against_db, check_observers_against_db, read_jsonl, require_bench
from harness import WsClient, close_clients, open_clients, run_async

FLOOD_SECONDS = float(os.environ.get("BIDDING_FLOOD_SECONDS", "60"))
# Bids per second per bidder. A sanitized server (scripts/sanitize.sh) is SLOWDOWN times slower:
# it is offered SLOWDOWN times less (still far beyond the bids it can decide: the flood is the same
# overload for it), and its latency bounds are timing_bound()s.
FLOOD_RATE = round(250 / harness.SLOWDOWN)
FLOOD_REPLY_WITHIN = harness.timing_bound(5)
FLOOD_HEALTHZ_WITHIN = harness.timing_bound(0.1)
# Resident memory a pod may reach during the flood (docs/architecture.md states the bound).
FLOOD_RSS_LIMIT_KIB = 512 * 1024


def test_a_full_lane_answers_overloaded_at_once_and_stores_nothing(start_server, seeded_db):
    server = start_server(seeded_db, env={"MAX_PENDING_BIDS_PER_AUCTION": "4"})
    lot = harness.create_auction(seeded_db, "Full Lane Lot")

    async def scenario():
        clients = [WsClient(f"c{i}", server.ws_url(lot["id"])) for i in range(12)]
        await open_clients(clients)
        sent = {}
        cents = 10_000
        for k in range(10):  # pipelined: 120 bids at once, far more than 4 may wait
            for c in clients:
                cents += 1
                price = f"{cents // 100}.{cents % 100:02d}"
                ref = f"{c.name}-{k}"
                sent[ref] = (c, price, await c.send_bid(c.name, price, ref))
        replies = {}
        for ref, (c, price, at) in sent.items():
            reply = await c.wait_for(harness.is_reply(ref), 10, f"the reply to {ref}")
            replies[ref] = (c, price, reply, c.arrival[id(reply)] - at)
        await asyncio.sleep(0.5)  # a second reply to any bid would have arrived by now
        await close_clients(clients)
        return clients, replies

    clients, replies = run_async(scenario(), timeout=60)
    stored = harness.history(seeded_db, lot["id"])
    stored_bids = {(bidder, price) for _, bidder, price in stored}
    codes = {}
    for ref, (c, price, reply, took) in replies.items():
        code = reply.get("code", reply["type"])
        codes[code] = codes.get(code, 0) + 1
        assert took < 5, f"bid {ref} waited {took:.2f} s for its reply"
        if code == "overloaded":
            assert (c.name, price) not in stored_bids, f"bid {ref} was answered overloaded but is stored"
            assert reply["message"].startswith("the server is too busy"), reply
    for c in clients:
        counts = {}
        for m in c.replies():
            counts[m["ref"]] = counts.get(m["ref"], 0) + 1
        assert all(n == 1 for n in counts.values()), f"{c.name}: a bid got more than one reply: {counts}"
        harness.check_stream(c, stored)
    assert codes.get("overloaded", 0) > 0, f"120 bids at once into a lane of 4 must overflow it: {codes}"
    assert codes.get("bid_accepted", 0) > 0, codes
    overloaded_metric = harness.metric_value(harness.metrics_text(server), "bidding_bids_rejected_total",
                                             'code="overloaded"')
    assert overloaded_metric == codes["overloaded"]


# The prober stands for a kubelet or a load balancer, which run on other machines: here it shares
# two cores with the pods and the load generator, so it asks for a higher priority (when allowed)
# to measure the pods' answer rather than its own wait for a core.
HEALTHZ_PROBE = r"""
import os, signal, socket, sys, time
port = int(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    os.nice(-10)
    with open("/proc/self/autogroup", "w") as group:
        group.write("-10")
except OSError:
    pass
while True:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = sock.recv(4096)
        took = time.monotonic() - started
        print(f"ok {took}" if answer.startswith(b"HTTP/1.1 200") else f"fail {answer[:60]!r}", flush=True)
    except OSError as error:
        print(f"fail {error!r}", flush=True)
    time.sleep(0.1)
"""


class Monitor(threading.Thread):
    """Samples a pod while the flood runs: /healthz latency, a new connection's initial_state, a
    bid on another auction, resident memory."""

    def __init__(self, pod: harness.Server, auction: int, other: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.pod, self.auction, self.other, self.stop = pod, auction, other, stop
        self.healthz: list[float] = []
        self.healthz_failures: list[str] = []
        # /healthz is timed by a process of its own, so that this process's threads (and its
        # interpreter lock) add nothing to what is measured; in a session of its own, whose
        # autogroup it raises (Linux shares the CPU between autogroups, one per session, before
        # any nice value counts): otherwise it would wait behind the load tool, which runs in this
        # process's session (the kubelet's probe does not queue behind the clients).
        self.prober = subprocess.Popen([sys.executable, "-c", HEALTHZ_PROBE, str(pod.port)], stdout=subprocess.PIPE,
                                       text=True, start_new_session=True)
        self.connects: list[tuple[str, float]] = []
        self.other_bids: list[tuple[str, float]] = []
        self.rss: list[int] = []
        self.errors: list[str] = []

    def run(self) -> None:
        cents = 100_00  # each pod's monitor bids on an auction of its own
        k = 0
        while not self.stop.is_set():
            try:
                self.rss.append(harness.rss_kib(self.pod.proc.pid))
            except (OSError, AssertionError) as error:
                self.errors.append(repr(error))
            if k % 4 == 0:
                cents += 1
                try:
                    self.connects.append(asyncio.run(self._connect_and_bid(f"{cents // 100}.{cents % 100:02d}", k)))
                except Exception as error:  # noqa: BLE001
                    self.errors.append(f"connect/bid: {error!r}")
            k += 1
            self.stop.wait(0.25)
        self.prober.terminate()
        out, _ = self.prober.communicate(timeout=10)
        for line in out.splitlines():
            kind, _, value = line.partition(" ")
            if kind == "ok":
                self.healthz.append(float(value))
            elif kind == "fail":
                self.healthz_failures.append(value)

    async def _connect_and_bid(self, price: str, k: int) -> tuple[str, float]:
        started = time.monotonic()
        async with harness.ws_connect(self.pod.ws_url(self.auction), open_timeout=5) as ws:
            first = await harness.recv_json(ws, 5, what="initial_state during the flood")
            joined = time.monotonic() - started
        async with harness.ws_connect(self.pod.ws_url(self.other), open_timeout=5) as ws:
            await harness.initial_state(ws)
            sent = time.monotonic()
            await ws.send(harness.bid_frame(f"monitor-{self.pod.name}", f'"{price}"', f"m{k}"))
            while True:
                reply = await harness.recv_json(ws, 5, what="the reply to a bid on another auction")
                if reply.get("ref") == f"m{k}":
                    break
            self.other_bids.append((reply.get("code", reply["type"]), time.monotonic() - sent))
        return first.get("type", "?"), joined


def test_a_flood_on_one_hot_auction_leaves_both_pods_alive_and_every_observer_complete(
        dedicated_redis, seeded_db, start_server, tmp_path):
    bench = require_bench()
    env = {"LOG_LEVEL": "info"}  # as the scenario was run: logs at info
    pods = start_server.pods(2, seeded_db, redis=dedicated_redis, env=env)
    lot = harness.create_auction(seeded_db, "Flood Lot")
    others = [harness.create_auction(seeded_db, f"Quiet Lot Beside The Flood {i}") for i in range(2)]
    observer_report = tmp_path / "observers.jsonl"
    bid_report = tmp_path / "bids.jsonl"
    argv = [str(bench), "overload", "--url", ",".join(f"ws://127.0.0.1:{p.port}" for p in pods),
            "--auction", str(lot["id"]), "--observers", "400", "--bidders", "40", "--rate", str(FLOOD_RATE),
            "--duration", str(FLOOD_SECONDS), "--settle", str(harness.timing_bound(20)), "--threads", "2", "--quiet",
            "--reply-timeout", str(FLOOD_REPLY_WITHIN),
            "--observer-report", str(observer_report), "--bid-report", str(bid_report),
            "--pids", ",".join(str(p.proc.pid) for p in pods)]
    stop = threading.Event()
    monitors = [Monitor(p, lot["id"], other["id"], stop) for p, other in zip(pods, others)]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(harness.neutral_dir()))
    for m in monitors:
        m.start()
    try:
        out, err = proc.communicate(timeout=FLOOD_SECONDS + harness.timing_bound(120))
    finally:
        stop.set()
        for m in monitors:
            m.join(30)
        if proc.poll() is None:
            proc.kill()
    took = time.monotonic() - started
    assert proc.returncode == 0, f"bidding-bench exited {proc.returncode}:\n{err[-3000:]}"
    report = json.loads(out.strip().splitlines()[-1])
    (Path(harness.ARTIFACTS) / "flood-report.json").parent.mkdir(parents=True, exist_ok=True)
    (Path(harness.ARTIFACTS) / "flood-report.json").write_text(out)

    for pod in pods:
        assert pod.alive(), f"{pod.name} died during the flood; log tail:\n{pod.log_tail()}"
    bids = report["bids"]
    assert bids["sent"] > 0.5 * 40 * FLOOD_RATE * FLOOD_SECONDS, f"the flood was not offered as asked: {bids}"
    assert bids["unanswered"] == 0 and bids["duplicate_reply"] == 0, f"every bid gets exactly one reply: {bids}"
    assert report["reply_latency_us"]["max"] <= FLOOD_REPLY_WITHIN * 1e6, (
        f"every reply within {FLOOD_REPLY_WITHIN} s: {report['reply_latency_us']}")
    assert set(bids["replies"]) <= {"bid_accepted", "price_too_low", "overloaded"}, bids["replies"]
    observers = report["observers"]
    assert observers["connected_at_end"] == 400 and observers["closed_by_server"] == 0, (
        f"healthy readers are never the victims of the flood: {observers}")
    assert observers["anomalies"] == 0, observers
    assert report["load"]["settled"], f"every observer must catch up after the flood: {report['load']}"
    accepted = check_bids_against_db(read_jsonl(bid_report), seeded_db, [lot["id"]])
    check_observers_against_db(read_jsonl(observer_report), seeded_db, 400)
    assert accepted == bids["replies"].get("bid_accepted", 0) and accepted > 0

    summary = {
        "seconds": round(took, 1), "sent": bids["sent"], "replies": bids["replies"],
        "decided_per_second": bids.get("decided_per_second"), "reply_p99_ms": report["reply_latency_us"]["p99"] / 1000,
        "reply_max_ms": report["reply_latency_us"]["max"] / 1000,
        "max_rss_kib": {m.pod.name: max(m.rss, default=0) for m in monitors},
        "healthz_max_ms": {m.pod.name: round(max(m.healthz, default=0) * 1000, 1) for m in monitors},
        "healthz_over_bound": {m.pod.name: sum(t >= FLOOD_HEALTHZ_WITHIN for t in m.healthz) for m in monitors},
        "join_max_s": {m.pod.name: round(max((t for _, t in m.connects), default=0), 3) for m in monitors},
        "other_bid_max_s": {m.pod.name: round(max((t for _, t in m.other_bids), default=0), 3) for m in monitors},
    }
    print("flood:", json.dumps(summary))
    for m in monitors:
        name = m.pod.name
        assert not m.healthz_failures, f"{name}: /healthz failed during the flood: {m.healthz_failures[:3]}"
        slow = sorted(m.healthz)[-3:]
        assert m.healthz and max(m.healthz) < FLOOD_HEALTHZ_WITHIN, (
            f"{name}: /healthz must answer within {FLOOD_HEALTHZ_WITHIN * 1000:.0f} ms; slowest {slow}")
        assert not m.errors, f"{name}: {m.errors[:3]}"
        assert m.connects and all(kind == "initial_state" for kind, _ in m.connects), (
            f"{name}: new connections during the flood must get their initial_state: {m.connects}")
        assert m.other_bids and all(code == "bid_accepted" for code, _ in m.other_bids), (
            f"{name}: another auction keeps working during the flood: {m.other_bids}")
        assert max(m.rss) <= harness.memory_bound(FLOOD_RSS_LIMIT_KIB), f"{name}: resident memory reached {max(m.rss)} KiB"
