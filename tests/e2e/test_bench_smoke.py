"""A few-second smoke run of each bidding-bench scenario against the real server, checked against
Postgres: every bid the tool reports bid_accepted is stored with its seq and price, no bid answered
overloaded/unavailable is stored, and each observer's digest (FNV-1a 64 over "SEQ," of the
new_bid messages it received) equals the one recomputed from bids_bidhistory.

The tool (docs/bench-tool.md) is built beside the server: harness.SERVER_BINARY.parent /
"bidding-bench". Small numbers keep the whole module around 20 s.
"""
from __future__ import annotations

import os

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
