"""Running bidding-bench (bench/, docs/bench-tool.md) from the end-to-end tests, and checking
what it reports against Postgres: every bid it saw acknowledged is stored with its seq and price,
no bid answered overloaded/unavailable is stored, and each observer's digest (FNV-1a 64 over
"SEQ," of the new_bid messages it received) equals the one recomputed from bids_bidhistory.
"""
from __future__ import annotations

import bisect
import json
import os
import subprocess
from pathlib import Path

import pytest

import harness

# Beside the server, unless BIDDING_BENCH names it (a sanitizer build of the server, say).
BENCH = Path(os.environ.get("BIDDING_BENCH") or harness.SERVER_BINARY.parent / "bidding-bench")



def require_bench() -> Path:
    """The tool's path; the test fails (not skips) when it was not built: CI builds it."""
    if not os.access(BENCH, os.X_OK):
        pytest.fail(f"{BENCH} is missing: build it with `cmake --build build --target bidding-bench`")
    return BENCH

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def fnv_digest(seqs) -> str:
    h = FNV_OFFSET
    for seq in seqs:
        for byte in f"{seq},".encode():
            h ^= byte
            h = (h * FNV_PRIME) & MASK64
    return f"{h:016x}"


def run_bench(*args, expect_rc: int = 0, report: bool = True,
              timeout: float = 60) -> tuple[dict | None, subprocess.CompletedProcess]:
    """Runs bidding-bench; returns (its one JSON line, or None when `report` is False or the exit
    code is 2, and the completed process)."""
    argv = [str(BENCH), *map(str, args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                            cwd=str(harness.neutral_dir()))
    assert result.returncode == expect_rc, (
        f"`{' '.join(argv)}` exited with {result.returncode}, expected {expect_rc}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if expect_rc == 2 or not report:
        return None, result
    assert len(lines) == 1, f"bidding-bench must print exactly one line on stdout, printed:\n{result.stdout}"
    return json.loads(lines[0]), result


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_bids_against_db(bids: list[dict], db: harness.Database, auctions: list[int]) -> int:
    """Every bid_accepted is stored with its seq, bidder and price; no bid answered overloaded or
    unavailable is stored. Returns how many were accepted."""
    stored = {}
    for auction in auctions:
        for seq, bidder, price in harness.history(db, auction):
            stored[seq] = (auction, bidder, price)
    stored_pairs = {(a, b, p) for a, b, p in stored.values()}
    accepted = 0
    for bid in bids:
        if bid["reply"] == "bid_accepted":
            accepted += 1
            assert bid["seq"] in stored, f"bid {bid} was acknowledged but seq {bid['seq']} is not in bids_bidhistory"
            assert stored[bid["seq"]] == (bid["auction"], bid["bidder"], bid["price"]), (
                f"bid {bid} was acknowledged but the stored row is {stored[bid['seq']]}")
        elif bid["reply"] in ("overloaded", "unavailable"):
            assert (bid["auction"], bid["bidder"], bid["price"]) not in stored_pairs, (
                f"bid {bid} was answered {bid['reply']} (not stored) but a row with its bidder and price exists")
    return accepted


def check_observers_against_db(observers: list[dict], db: harness.Database, expected_count: int) -> None:
    """Each observer got exactly the stored history after its initial_state, in order, to the end."""
    assert len(observers) == expected_count, f"--observer-report must have one line per observer: {len(observers)}"
    histories: dict[int, list[int]] = {}
    # Observers of one auction mostly share their (initial_last_seq, last_seq): the expected
    # count and digest are computed once per distinct range (a flood stores 10^5 bids and more).
    expected_of: dict[tuple[int, int, int], tuple[int, str]] = {}
    for obs in observers:
        assert obs["connected"], f"observer did not connect: {obs}"
        assert obs["key"] == "seq" and obs["anomalies"] == 0 and not obs["closed"], obs
        seqs = histories.setdefault(obs["auction"], [row[0] for row in harness.history(db, obs["auction"])])
        after = obs["initial_last_seq"]
        upto = obs["last_seq"] if obs["last_seq"] is not None else after
        key = (obs["auction"], after, upto)
        if key not in expected_of:
            expected = seqs[bisect.bisect_right(seqs, after):bisect.bisect_right(seqs, upto)]
            expected_of[key] = (len(expected), fnv_digest(expected))
        count, digest = expected_of[key]
        assert obs["count"] == count, f"observer {obs} got {obs['count']} new_bid, the database has {count}"
        assert obs["digest"] == digest, f"observer {obs}: digest differs from the stored history"
        assert upto == (seqs[-1] if seqs else after), (
            f"observer {obs} did not reach the auction's last stored seq {seqs[-1] if seqs else None}")


