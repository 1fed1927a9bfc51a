"""scripts/bench.py, the side-by-side benchmark script (docs/benchmarks.md), run for a second or
two: it starts its own durable Postgres, Redis and pods, runs bidding-bench against them and,
where the yardstick's sources are (../shared/yardstick or BIDDING_YARDSTICK), against the
yardstick too, and prints one JSON line with both results and their ratio."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import benchtool
import harness

SCRIPT = harness.ROOT / "scripts" / "bench.py"
YARDSTICK = Path(os.environ.get("BIDDING_YARDSTICK") or harness.ROOT.parent / "shared" / "yardstick")


def run_script(*args: str, expect_rc: int = 0, timeout: float = 170) -> tuple[dict | None, str]:
    env = dict(os.environ, BIDDING_SERVER=str(harness.require_binary()), BIDDING_BENCH=str(benchtool.require_bench()))
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                            env=env, stdin=subprocess.DEVNULL, cwd=str(harness.neutral_dir()))
    assert result.returncode == expect_rc, (
        f"scripts/bench.py {' '.join(args)} exited {result.returncode}, expected {expect_rc}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if expect_rc != 0:
        return None, result.stderr
    assert len(lines) == 1, f"scripts/bench.py must print exactly one line on stdout:\n{result.stdout}"
    return json.loads(lines[0]), result.stderr


def test_fanout_against_the_server_and_the_yardstick_with_their_ratio():
    report, err = run_script("fanout", "--", "--observers", "20", "--duration", "1", "--settle", "5", "--quiet")
    server = report["server"]
    assert report["scenario"] == "fanout" and report["pods"] == 1
    assert server["server_kind"] == "bidding-server" and server["ok"], server
    observers = server["observers"]
    assert observers["connected_at_end"] == 20 and observers["anomalies"] == 0, observers
    assert observers["deliveries_per_second"] > 0 and server["load"]["settled"], server["load"]
    assert server["postgres_cpu_percent"] >= 0
    if (YARDSTICK / "CMakeLists.txt").is_file():
        relay = report["yardstick"]
        assert relay is not None and relay["server_kind"] != "bidding-server", relay
        assert relay["observers"]["deliveries_per_second"] > 0
        expected = server["observers"]["deliveries_per_second"] / relay["observers"]["deliveries_per_second"]
        assert abs(report["ratio"]["deliveries/s"] - expected) <= 0.001 + 0.001 * expected, report["ratio"]
        assert "ratio" in err and "deliveries/s" in err
    else:
        assert report["yardstick"] is None and report["ratio"] == {}
        assert "no yardstick" in err


def test_a_bidding_scenario_on_two_pods_measures_the_server_alone():
    report, err = run_script("hot", "--pods", "2", "--", "--bidders", "2", "--observers", "4", "--duration", "1",
                             "--settle", "5", "--quiet")
    server = report["server"]
    assert report["pods"] == 2 and report["yardstick"] is None
    # Both pods were measured, and the tool's clients were spread over them.
    assert len(server["processes"]) == 2 and all(p["alive"] for p in server["processes"]), server["processes"]
    assert len(server["config"]["urls"]) == 2
    bids = server["bids"]
    assert bids["decided"] > 0 and bids["unanswered"] == 0 and bids["duplicate_reply"] == 0, bids
    assert server["observers"]["anomalies"] == 0
    assert report["ratio"] == {} and "decided/s" in err


def test_an_unknown_scenario_is_a_usage_error():
    _, err = run_script("nonsense", expect_rc=2)
    assert "invalid choice" in err
