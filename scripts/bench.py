#!/usr/bin/python3
"""Runs one bidding-bench scenario against this server and, in the same run, against the
yardstick (the bare Beast relay of ../shared/yardstick), and prints the ratio.

    scripts/bench.py SCENARIO [--pods N] [--auctions N] [--no-yardstick] [-- BENCH ARGS...]

It starts what a measurement needs, on loopback and free ports, under a temporary folder: a
durable PostgreSQL 15 (fsync and synchronous_commit on, as in production), a Redis, the schema
and the auctions, `--pods` bidding-server processes sharing them (LOG_LEVEL=info,
BID_RATE_LIMIT=0), and for `idle` and `fanout` the yardstick built from its sources (into
build/yardstick, Release). bidding-bench runs against each with the same arguments; its
--url, --pids (and for `many` --auctions) are filled in. Everything is stopped at the end.

Output: bidding-bench's table (stderr) for each target, then a comparison on stderr and one
JSON line on stdout: {"scenario":..., "server":{...}, "yardstick":{...}|null, "ratio":{...}}.
The commands of every published figure are in docs/benchmarks.md.

Environment: BIDDING_SERVER / BIDDING_BENCH (default build/bidding-server, build/bidding-bench),
BIDDING_YARDSTICK (the yardstick's source folder; default ../shared/yardstick).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
os.environ.setdefault("BIDDING_SERVER", str(ROOT / "build" / "bidding-server"))

import harness  # noqa: E402  (after the path and the server's location are set)

BENCH = Path(os.environ.get("BIDDING_BENCH") or ROOT / "build" / "bidding-bench")
YARDSTICK_SRC = Path(os.environ.get("BIDDING_YARDSTICK") or ROOT.parent / "shared" / "yardstick")
# Scenarios the relay can serve: it answers no bid, so the bidding ones need the real server.
RELAY_SCENARIOS = ("idle", "fanout")

# The figures compared, by scenario: (label, path in the JSON line, True when higher is better).
FIGURES = {
    "idle": [("connects/s", ("connect", "per_second"), True),
             ("RSS KiB per connection", ("processes", 0, "rss_kib_per_connection"), False)],
    "fanout": [("deliveries/s", ("observers", "deliveries_per_second"), True),
               ("fan-out p50 us", ("fanout_latency_us", "p50"), False),
               ("fan-out p99 us", ("fanout_latency_us", "p99"), False)],
    "hot": [("decided/s", ("bids", "decided_per_second"), True),
            ("reply p99 us", ("reply_latency_us", "p99"), False),
            ("anomalies", ("observers", "anomalies"), False)],
    "many": [("decided/s", ("bids", "decided_per_second"), True),
             ("reply p50 us", ("reply_latency_us", "p50"), False),
             ("reply p99 us", ("reply_latency_us", "p99"), False)],
    "overload": [("decided/s", ("bids", "decided_per_second"), True),
                 ("unanswered", ("bids", "unanswered"), False),
                 ("reply max us", ("reply_latency_us", "max"), False)],
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def figure(result: dict | None, path: tuple) -> float | None:
    value = result
    for key in path:
        try:
            value = value[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return value if isinstance(value, (int, float)) else None


def build_yardstick() -> Path | None:
    if not (YARDSTICK_SRC / "CMakeLists.txt").is_file():
        log(f"no yardstick at {YARDSTICK_SRC} (BIDDING_YARDSTICK): measuring this server only")
        return None
    build = ROOT / "build" / "yardstick"
    subprocess.run(["cmake", "-S", str(YARDSTICK_SRC), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build)], check=True, stdout=subprocess.DEVNULL)
    return build / "broadcast_probe"


def start_yardstick(binary: Path, threads: int, extra: list[str]) -> tuple[subprocess.Popen, int]:
    for _ in range(3):
        port = harness.free_port()
        proc = subprocess.Popen([str(binary), "--port", str(port), "--threads", str(threads), *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _accepts(port):
                return proc, port
            time.sleep(0.05)
        harness.stop_process(proc, grace=1)
    raise RuntimeError("the yardstick did not start")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run_bench(scenario: str, urls: list[str], pids: list[int], extra: list[str], timeout: float) -> dict:
    argv = [str(BENCH), scenario, "--url", ",".join(urls), "--pids", ",".join(map(str, pids)), *extra]
    log("$ " + " ".join(argv))
    result = subprocess.run(argv, stdout=subprocess.PIPE, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"bidding-bench exited with {result.returncode}; stdout:\n{result.stdout}")
    return json.loads(lines[0])


def cpu_seconds_of_tree(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (Postgres: the postmaster and its
    backends), read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == root_pid or int(fields[1]) == root_pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def create_auctions(db: harness.Database, count: int) -> list[int]:
    rows = db.query("INSERT INTO bids_bid (name, initial_price, created_at, status) "
                    "SELECT 'Bench lot ' || g, 100.00, now(), 'open' FROM generate_series(1, %s) g RETURNING id",
                    (count,))
    return sorted(r[0] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(usage="%(prog)s SCENARIO [options] [-- bidding-bench options]",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(FIGURES))
    parser.add_argument("--pods", type=int, default=1, help="bidding-server processes (default 1)")
    parser.add_argument("--auctions", type=int, default=1, help="auctions to create (many: the range given to the tool)")
    parser.add_argument("--server-threads", type=int, default=0, help="THREADS of each pod and of the yardstick (0: cores)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="another setting of every pod (repeatable)")
    parser.add_argument("--no-yardstick", action="store_true", help="measure this server only")
    parser.add_argument("--yardstick-arg", action="append", default=[], metavar="ARG",
                        help="another argument of the yardstick, e.g. --yardstick-arg=--coalesce (repeatable)")
    parser.add_argument("--perf", metavar="FILE", help="record a CPU profile of the pods during the server run "
                        "(perf record -g; FILE.txt gets the top of perf report)")
    parser.add_argument("--timeout", type=float, default=600, help="bound of each bidding-bench run (s)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    extra = argv[split + 1:]  # bidding-bench's own options
    for binary in (BENCH, harness.SERVER_BINARY):
        if not os.access(binary, os.X_OK):
            log(f"{binary} is missing: build it first (scripts/build.sh)")
            return 2

    threads = args.server_threads or os.cpu_count() or 1
    yardstick_bin = None
    if args.scenario in RELAY_SCENARIOS and not args.no_yardstick:
        yardstick_bin = build_yardstick()

    postgres = harness.Postgres(durable=True).start()
    redis = harness.Redis().start()
    workdir = Path(tempfile.mkdtemp(prefix="bidding-bench-"))
    servers: list[harness.Server] = []
    yardstick = None
    try:
        db = harness.migrate_and_seed(postgres.create_database())
        ids = create_auctions(db, max(args.auctions, 1))
        env = {"LOG_LEVEL": "info", "BID_RATE_LIMIT": "0", "MAX_CONNECTIONS_PER_IP": "0", "THREADS": str(threads)}
        for item in args.server_env:
            name, _, value = item.partition("=")
            env[name] = value
        for i in range(args.pods):
            servers.append(harness.start_server(db.url, workdir, redis_url=redis.url, env=env,
                                                name=f"pod-{chr(ord('a') + i)}"))
        harness.wait_until(lambda: all(_ready(s) for s in servers), 20, "every pod ready")
        target = list(extra)
        if args.scenario == "many":
            target += ["--auctions", f"{ids[0]}-{ids[-1]}"]
        else:
            target += ["--auction", str(ids[0])]
        log(f"{args.pods} pod(s), {threads} threads each, durable Postgres, Redis; auctions {ids[0]}-{ids[-1]}")
        postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
        cpu_before, wall_before = cpu_seconds_of_tree(postmaster), time.monotonic()
        profiler = None
        if args.perf:
            profiler = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", args.perf, "-p",
                                         ",".join(str(s.proc.pid) for s in servers)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server_result = run_bench(args.scenario, [f"ws://127.0.0.1:{s.port}/ws/bid/{{id}}" for s in servers],
                                  [s.proc.pid for s in servers], target, args.timeout)
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(timeout=60)
            with open(args.perf + ".txt", "w") as out:
                subprocess.run(["perf", "report", "-i", args.perf, "--stdio", "--no-children", "--sort", "dso,symbol",
                                "--percent-limit", "0.5", "-g", "none"], stdout=out, stderr=subprocess.DEVNULL)
            log(f"profile: {args.perf} (summary {args.perf}.txt)")
        # Over the whole run (connects and settle included): Postgres's share of the machine.
        server_result["postgres_cpu_percent"] = round(
            100 * (cpu_seconds_of_tree(postmaster) - cpu_before) / (time.monotonic() - wall_before), 1)
        for s in servers:
            if not s.alive():
                raise RuntimeError(f"{s.name} died during the run; log tail:\n{s.log_tail()}")
        yardstick_result = None
        if yardstick_bin is not None:
            yardstick, port = start_yardstick(yardstick_bin, threads, args.yardstick_arg)
            yardstick_result = run_bench(args.scenario, [f"ws://127.0.0.1:{port}/ws/bid/{{id}}"],
                                         [yardstick.pid], target, args.timeout)
    finally:
        if yardstick is not None:
            harness.stop_process(yardstick, grace=2)
        for s in servers:
            s.stop()
        redis.stop()
        postgres.stop()

    ratio = {}
    log(f"Postgres CPU over the server run: {server_result['postgres_cpu_percent']} % of one core")
    log(f"== {args.scenario}: this server vs the yardstick (same machine, same run)")
    for label, path, _higher in FIGURES[args.scenario]:
        ours, theirs = figure(server_result, path), figure(yardstick_result, path)
        if ours is not None and theirs:
            ratio[label] = round(ours / theirs, 3)
        log(f"  {label:24} server {ours!s:>12}   yardstick {theirs!s:>12}   ratio {ratio.get(label, '-')}")
    print(json.dumps({"scenario": args.scenario, "pods": args.pods, "yardstick_args": args.yardstick_arg,
                      "server": server_result,
                      "yardstick": yardstick_result, "ratio": ratio}))
    return 0


def _ready(server: harness.Server) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
