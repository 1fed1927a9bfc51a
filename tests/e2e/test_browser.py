"""The web pages (web/, embedded in the binary) in a real browser: headless Chromium driven by
tests/browser/run.mjs (Node + playwright-core), against three real servers ("pods") sharing this
module's Postgres database and the session's Redis.

The pods ping every second and drop a client after 3 s of silence, so a page that did not answer
pings would lose its connection during the run. run.mjs stops the third pod (SIGTERM) to check
that a page reconnects with ?since= after a server shutdown.

The timed-auction cases (countdown_*, min_bid_shown, list_orders_by_end) create auctions with
POST /api/bids and an admin token, bid from a second WebSocket client on another pod, fake a wrong
device clock in the page, and route a page's WebSocket through Playwright to hold one server
message back for a moment (so "Ending…" and a stale minimum are seen deterministically).

Each case of run.mjs is reported here as its own test. Screenshots go to test-artifacts/browser/.
Needs Node (tests/browser's npm packages are installed by scripts/install-browser-deps.sh, run
here when missing) and Debian's chromium; without them the tests are skipped, except with CI=true,
where they fail.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

BROWSER_DIR = harness.ROOT / "tests" / "browser"
INSTALL_SCRIPT = harness.ROOT / "scripts" / "install-browser-deps.sh"
ARTIFACTS = Path(os.environ.get("BIDDING_BROWSER_ARTIFACTS") or harness.ROOT / "test-artifacts" / "browser")
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
RUN_TIMEOUT = 240  # seconds for the whole browser run (it takes ~60 s)

# The cases of run.mjs, in its order.
CASES = [
    "served_pages_match_web_dir",
    "money_helpers",
    "live_bid_across_pods",
    "price_too_low",
    "hostile_names_are_text",
    "heartbeat_is_answered",
    "reconnect_after_network_loss",
    "reconnect_after_server_shutdown",
    "signed_link_and_bad_token",
    "closed_auction_shows_winner",
    "countdown_extended_by_another_client",
    "min_bid_shown",
    "countdown_uses_server_clock",
    "list_orders_by_end",
    "index_lists_auctions",
    "phone_layout_and_accessibility",
    "no_page_errors",
]


def _unavailable(reason: str) -> None:
    """No browser here: a failure in CI (where scripts/test.sh installs everything), else a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (scripts/install-browser-deps.sh installs what they need)")


def _ensure_tools() -> str:
    node = shutil.which("node")
    if not os.access(CHROMIUM, os.X_OK) or node is None or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        # Installs Node, Chromium and the npm packages when missing; a no-op when all are there.
        result = subprocess.run(["bash", str(INSTALL_SCRIPT)], cwd=str(harness.ROOT), capture_output=True,
                                text=True, timeout=900, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            _unavailable(f"{INSTALL_SCRIPT.name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        node = shutil.which("node")
    if node is None:
        _unavailable("Node.js is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is not installed (Debian package chromium)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        _unavailable("tests/browser/node_modules is missing (npm ci in tests/browser)")
    return node


@pytest.fixture(scope="module")
def browser_run(workdir, seeded_db, redis):
    """Starts three pods, runs run.mjs once, and returns ({case: result}, its output)."""
    node = _ensure_tools()
    pool = harness.ServerPool(workdir / "servers-browser", default_db=seeded_db, redis=redis)
    try:
        secret = secrets.token_hex(24)
        pods = pool.pods(3, seeded_db, env={"HEARTBEAT_INTERVAL": "1", "IDLE_TIMEOUT": "3", "DRAIN_TIMEOUT": "5",
                                            "SECRET_KEY": secret})
        pods[2].exit_expected = True  # run.mjs stops it with SIGTERM
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "BROWSER_PODS": json.dumps([{"name": p.name, "url": p.http_url, "pid": p.proc.pid} for p in pods]),
            "BIDDING_SERVER": str(harness.require_binary()),
            "BROWSER_DATABASE_URL": seeded_db.url,
            "BROWSER_SECRET_KEY": secret,
            "BROWSER_ARTIFACTS": str(ARTIFACTS),
            "CHROMIUM": CHROMIUM,
        })
        try:
            proc = subprocess.run([node, str(BROWSER_DIR / "run.mjs")], cwd=str(BROWSER_DIR), env=env,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
            output = proc.stdout + ("\n[stderr]\n" + proc.stderr if proc.stderr.strip() else "")
        except subprocess.TimeoutExpired as timeout:
            output = f"run.mjs did not finish within {RUN_TIMEOUT} s\n{timeout.stdout or ''}{timeout.stderr or ''}"
        (ARTIFACTS / "run.log").write_text(output)
        results = {}
        for line in output.splitlines():
            if line.startswith("BROWSER-RESULT "):
                result = json.loads(line[len("BROWSER-RESULT "):])
                results[result["name"]] = result
        yield results, output
    finally:
        problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.mark.parametrize("case", CASES)
def test_browser(browser_run, case):
    results, output = browser_run
    result = results.get(case)
    assert result is not None, (
        f"run.mjs reported nothing for {case}; its output (also in {ARTIFACTS / 'run.log'}):\n{output[-6000:]}")
    assert result["ok"], f"{case} failed after {result['ms']} ms:\n{result.get('error')}"


def test_every_case_is_listed(browser_run):
    results, _ = browser_run
    assert sorted(results) == sorted(CASES), (
        f"the cases of run.mjs and CASES here differ: {sorted(set(results) ^ set(CASES))}")
