"""The end-to-end harness: a real PostgreSQL, a real Redis and the real bidding-server binary.

Everything runs in temporary folders on free ports (found by binding port 0), is waited for by
polling (a port, /healthz, pg_isready) with a deadline, and is stopped by PID at the end.

Used by conftest.py (fixtures) and by the test modules (CLI, WebSocket and database helpers).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import psycopg2
import psycopg2.extensions
import psycopg2.sql
import websockets
import websockets.exceptions

ROOT = Path(__file__).resolve().parents[2]
SERVER_BINARY = Path(os.environ.get("BIDDING_SERVER") or ROOT / "build" / "bidding-server")
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
ARTIFACTS = Path(os.environ.get("BIDDING_E2E_ARTIFACTS") or ROOT / "test-artifacts" / "e2e")
IS_ROOT = os.geteuid() == 0

# The server's configuration variables: never inherited from the developer's shell, so a
# HISTORY_LIMIT or DATABASE_URL exported there cannot change what the tests see.
CONFIG_VARIABLES = (
    "ENV", "APP_NAME", "APP_VERSION", "APP_PORT", "SECRET_KEY", "ALLOWED_HOSTS", "LOG_LEVEL",
    "DEBUG", "REDIS_URL", "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
    "POSTGRES_PASSWORD", "POSTGRES_DB", "HEARTBEAT_INTERVAL", "IDLE_TIMEOUT", "HISTORY_LIMIT",
    "MAX_MESSAGE_BYTES", "DRAIN_TIMEOUT", "DB_POOL_SIZE", "THREADS", "POSTGRESS_PASSWORD", "AUTH_REQUIRED", "BID_RATE_LIMIT", "BID_BURST",
    "MAX_SEND_QUEUE_BYTES", "SEND_TIMEOUT", "BID_TIMEOUT", "DB_TIMEOUT", "DB_LOCK_TIMEOUT",
    "MAX_PENDING_BIDS_PER_AUCTION", "MAX_PENDING_BIDS", "DB_QUEUE_LIMIT", "REDIS_TIMEOUT", "REDIS_CHANNEL_PREFIX",
    "REDIS_PASSWORD", "FANOUT_MAX_LAG", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_IP", "MAX_OPENING_CONNECTIONS", "TRUSTED_PROXIES",
    "HTTP_HEADER_TIMEOUT", "WS_HANDSHAKE_TIMEOUT", "CLOSE_CHECK_INTERVAL",
)

# --------------------------------------------------------------------------- sanitizer runs
#
# scripts/sanitize.sh runs this suite against an ASan+UBSan or a TSan build of the server and says
# so in BIDDING_SANITIZER (asan or tsan). Sanitizers make the server several times slower, so the
# time bounds and deadlines that would fail only because of that are written as
# timing_bound(seconds): the bound itself in a normal run (SLOWDOWN 1, unchanged), SLOWDOWN times
# it in a sanitizer run. Never used for what is checked about correctness (every bid answered
# exactly once, in order, stored when acknowledged). BIDDING_SLOWDOWN overrides the factor.
SANITIZER = os.environ.get("BIDDING_SANITIZER", "").strip().lower()
_SLOWDOWNS = {"": 1.0, "asan": 5.0, "tsan": 6.0}
if SANITIZER not in _SLOWDOWNS:
    raise RuntimeError(f"BIDDING_SANITIZER={SANITIZER!r}: expected asan, tsan or nothing")
SLOWDOWN = float(os.environ.get("BIDDING_SLOWDOWN") or _SLOWDOWNS[SANITIZER])


def timing_bound(seconds: float) -> float:
    """A time bound or deadline, scaled by SLOWDOWN in sanitizer runs (as is otherwise)."""
    return seconds * SLOWDOWN


# A sanitized process also holds more memory: shadow memory and redzones (MEMORY_OVERHEAD times
# as much), and under ASan its quarantine of freed blocks, which stay resident (up to 256 MiB,
# ASAN_OPTIONS quarantine_size_mb) so that a use after free is caught. A bound on resident memory,
# or on its growth, is a memory_bound().
MEMORY_OVERHEAD = 2.0 if SANITIZER else 1.0
ASAN_QUARANTINE_KIB = 256 * 1024 if SANITIZER == "asan" else 0


def memory_bound(kib: float) -> float:
    """A bound on a process's resident memory (or on its growth), in KiB: as is in a normal run,
    MEMORY_OVERHEAD times it plus ASan's quarantine in a sanitizer run."""
    return kib * MEMORY_OVERHEAD + ASAN_QUARANTINE_KIB


# What the sanitizers print when they find something (ASan, LSan, UBSan, TSan, libstdc++'s
# assertions). A report fails the test even when the process exited 0.
SANITIZER_REPORT = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer: |"
    r"runtime error: |SUMMARY: (?:Address|Leak|Thread|UndefinedBehavior)Sanitizer|"
    r"Assertion '.*' failed|AddressSanitizer:DEADLYSIGNAL")
# Where sanitize.sh has the sanitizers write their reports (log_path=DIR/report: one file per
# process, `report.<pid>`), so that no process's report is lost, whoever ran it.
SANITIZER_REPORTS_DIR = Path(os.environ["BIDDING_SANITIZER_REPORTS"]) if os.environ.get("BIDDING_SANITIZER_REPORTS") else None


def sanitizer_findings(text: str) -> list[str]:
    """The lines of `text` that say a sanitizer found something."""
    return [line for line in text.splitlines() if SANITIZER_REPORT.search(line)]


_claimed_reports: set[str] = set()


def new_sanitizer_reports() -> list[tuple[Path, str]]:
    """Report files in SANITIZER_REPORTS_DIR not returned before: (path, text), each once."""
    if SANITIZER_REPORTS_DIR is None or not SANITIZER_REPORTS_DIR.is_dir():
        return []
    found = []
    for path in sorted(SANITIZER_REPORTS_DIR.iterdir()):
        if path.name in _claimed_reports or not path.is_file():
            continue
        _claimed_reports.add(path.name)
        text = path.read_text(errors="replace")
        if text.strip():
            found.append((path, text))
    return found


def describe_sanitizer_reports(reports: list[tuple[Path, str]], limit: int = 200) -> str:
    parts = []
    for path, text in reports:
        lines = text.splitlines()
        parts.append(f"--- {path} ({len(lines)} lines)\n" + "\n".join(lines[:limit]))
    return "a sanitizer reported a problem:\n" + "\n".join(parts)


ISO_MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MONEY = re.compile(r"^\d+\.\d{2}$")


# --------------------------------------------------------------------------- small utilities

def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it: bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns something truthy; TimeoutError after `timeout` seconds
    (timing_bound: scaled in sanitizer runs)."""
    timeout = timing_bound(timeout)
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s")
        time.sleep(interval)


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"<cannot read {path}: {error}>"
    return "\n".join(text.splitlines()[-lines:])


def clean_env(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """os.environ without the server's configuration and libpq's PG* variables, plus `overrides`
    (a None value removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES and not k.startswith("PG")}
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


_neutral_dir: Path | None = None


def neutral_dir() -> Path:
    """An empty working directory, so that no developer's .env is read by the binary."""
    global _neutral_dir
    if _neutral_dir is None:
        _neutral_dir = Path(tempfile.mkdtemp(prefix="bidding-e2e-cwd-"))
    return _neutral_dir


def cleanup() -> None:
    """Removes what the harness made outside the fixtures (called at the end of the session)."""
    global _neutral_dir
    if _neutral_dir is not None:
        shutil.rmtree(_neutral_dir, ignore_errors=True)
        _neutral_dir = None


def require_binary() -> Path:
    if not os.access(SERVER_BINARY, os.X_OK):
        raise FileNotFoundError(
            f"the server binary {SERVER_BINARY} does not exist or is not executable: "
            "build it with scripts/build.sh or point BIDDING_SERVER at it")
    return SERVER_BINARY


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> int | None:
    """SIGTERM, wait up to `grace` seconds (timing_bound: a sanitized server's exit, with its leak
    check, takes longer, and a SIGKILL would lose the report), then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timing_bound(grace))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    return proc.returncode


# --------------------------------------------------------------------------- PostgreSQL

class Postgres:
    """A throw-away PostgreSQL 15 cluster: superuser `bidding` with a random password, scram-sha-256
    on 127.0.0.1 only, unix socket inside its temporary folder. Run as the `postgres` user when root
    (Postgres refuses to run as root)."""

    host = "127.0.0.1"
    user = "bidding"

    def __init__(self, durable: bool = False) -> None:
        """durable=True keeps synchronous_commit on, so a crash (halt("immediate")) loses no
        committed transaction; by default commits are asynchronous (faster, fine without crashes)."""
        self.password = secrets.token_hex(16)
        self.durable = durable
        self.dir: Path | None = None
        self.port: int | None = None

    @property
    def data_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "postgres.log"

    def _run(self, *cmd: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(c) for c in cmd]
        if IS_ROOT:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def start(self) -> "Postgres":
        self.dir = Path(tempfile.mkdtemp(prefix="bidding-e2e-pg-"))
        os.chmod(self.dir, 0o755)  # mkdtemp makes it 0700: the postgres user must enter it
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if IS_ROOT:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data_dir, "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync", timeout=120)
        pwfile.unlink()
        last_error = ""
        for _ in range(3):  # another process may grab the free port between bind and listen
            self.port = free_port()
            result = self._pg_ctl_start()
            if result.returncode == 0:
                break
            last_error = f"{result.stdout}{result.stderr}\n{tail(self.log_path, 20)}"
        else:
            raise RuntimeError(f"Postgres did not start:\n{last_error}")
        self._wait_ready()
        return self

    def _pg_ctl_start(self) -> subprocess.CompletedProcess:
        # fsync=off is safe for a crash of Postgres itself (the OS keeps what was written);
        # synchronous_commit=off is not: the last ~200 ms of commits die with the process.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
                   f" -c fsync=off -c full_page_writes=off -c synchronous_commit={'on' if self.durable else 'off'}")
        return self._run(PG_BIN / "pg_ctl", "start", "-D", self.data_dir, "-l", self.log_path,
                         "-w", "-t", "30", "-o", options, check=False, timeout=60)

    def _wait_ready(self) -> None:
        wait_until(lambda: self._run(PG_BIN / "pg_isready", "-q", "-h", self.host, "-p", self.port,
                                     check=False, timeout=10).returncode == 0,
                   timeout=30, what=f"Postgres answering on port {self.port}", interval=0.1)

    def halt(self, mode: str = "fast") -> None:
        """Stops the Postgres server but keeps its data, so that resume() brings it back on the same
        port. `mode` is pg_ctl's: "fast" (disconnect clients, abort their transactions) or
        "immediate" (like a crash)."""
        assert self.dir is not None, "halt() needs a started Postgres"
        self._run(PG_BIN / "pg_ctl", "stop", "-D", self.data_dir, "-m", mode, "-w", "-t", "30", timeout=60)

    def resume(self) -> None:
        """Starts the halted server again on the same port and waits until it answers."""
        assert self.dir is not None and self.port is not None, "resume() needs a halted Postgres"
        result = self._pg_ctl_start()
        if result.returncode != 0:
            raise RuntimeError(f"Postgres did not restart on port {self.port}:\n{result.stdout}{result.stderr}\n"
                               f"{tail(self.log_path, 20)}")
        self._wait_ready()

    def stop(self) -> None:
        if self.dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            result = self._run(PG_BIN / "pg_ctl", "stop", "-D", self.data_dir, "-m", "immediate",
                               "-w", "-t", "10", check=False, timeout=30)
            if result.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def dsn(self, dbname: str) -> str:
        """The URL the server takes as DATABASE_URL."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=dbname, connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> "Database":
        """A new, empty database with a unique name, so tests don't see each other's data."""
        name = name or f"e2e_{uuid.uuid4().hex[:12]}"
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(psycopg2.sql.SQL("CREATE DATABASE {}").format(psycopg2.sql.Identifier(name)))
        finally:
            conn.close()
        return Database(self, name)


@dataclass
class Database:
    postgres: Postgres
    name: str

    @property
    def url(self) -> str:
        return self.postgres.dsn(self.name)

    def connect(self) -> psycopg2.extensions.connection:
        return self.postgres.connect(self.name)

    def query(self, sql: str, params: Iterable[Any] | None = None) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def execute(self, sql: str, params: Iterable[Any] | None = None) -> None:
        self.query(sql, params)


# --------------------------------------------------------------------------- Redis

class Redis:
    """A throw-away redis-server in the foreground (Popen), no persistence."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> "Redis":
        self.dir = Path(tempfile.mkdtemp(prefix="bidding-e2e-redis-"))
        for _ in range(3):
            self.port = free_port()
            if self._launch():
                return self
        raise RuntimeError(f"Redis did not start:\n{tail(self.dir / 'redis.log', 20)}")

    def _launch(self) -> bool:
        """Starts redis-server on self.port; True once it answers PING, False if it exited."""
        assert self.dir is not None
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        try:
            wait_until(lambda: self.proc.poll() is not None or self.ping(), timeout=20,
                       what=f"Redis answering PING on port {self.port}")
        except TimeoutError:
            stop_process(self.proc)
            raise
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: Redis vanishes at once (every connection reset); restart() brings it back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Starts redis-server again on the SAME port (empty: no persistence), after kill()."""
        assert self.dir is not None and self.port is not None, "restart() needs a Redis that was started"
        deadline = time.monotonic() + 10
        while not self._launch():  # the port may linger a moment after the kill
            if time.monotonic() >= deadline:
                raise RuntimeError(f"Redis did not restart on port {self.port}:\n{tail(self.dir / 'redis.log', 20)}")
            time.sleep(0.1)

    def command(self, *args: str, timeout: float = 2.0) -> Any:
        """Runs one Redis command over a fresh connection (raw RESP) and returns its parsed reply."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = str(arg).encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(payload)
            with s.makefile("rb") as stream:
                return _read_resp(stream)

    def numsub(self, channel: str) -> int:
        """How many connections are subscribed to `channel` (PUBSUB NUMSUB)."""
        reply = self.command("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _read_resp(stream) -> Any:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"Redis closed the connection or sent a bad reply: {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"Redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read_resp(stream) for _ in range(size)]
    raise ConnectionError(f"unexpected RESP reply {line!r}")


def auction_channel(db: "Database", bid_id: int) -> str:
    """The Redis channel of an auction's fan-out: the default prefix is "bidding:{database}:"."""
    return f"bidding:{db.name}:auction:{bid_id}"


# --------------------------------------------------------------------------- the binary

def cli_env(database_url: str | None = None, env: dict[str, str | None] | None = None) -> dict[str, str]:
    base: dict[str, str | None] = {"ENV": "test"}
    if database_url is not None:
        base["DATABASE_URL"] = database_url
    base.update(env or {})
    return clean_env(base)


def run_cli(*args: str, database_url: str | None = None, env: dict[str, str | None] | None = None,
            cwd: Path | str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `bidding-server ARGS...` to completion (text output captured). A sanitizer report in
    its output fails the test, whatever the exit code."""
    result = subprocess.run([str(require_binary()), *map(str, args)], env=cli_env(database_url, env),
                            cwd=str(cwd or neutral_dir()), capture_output=True, text=True,
                            timeout=timing_bound(timeout), stdin=subprocess.DEVNULL)
    findings = sanitizer_findings(result.stderr)
    assert not findings, (f"`bidding-server {' '.join(map(str, args))}`: a sanitizer reported a problem "
                          f"(exit code {result.returncode}):\n{result.stderr[-20000:]}")
    return result


def run_cli_ok(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    result = run_cli(*args, **kwargs)
    assert result.returncode == 0, (
        f"`bidding-server {' '.join(map(str, args))}` failed with exit code {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


# The two tables as the Django application creates them (its migrations), for the tests that
# adopt them.
DJANGO_SCHEMA = """
CREATE TABLE bids_bid (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name varchar(255) NOT NULL,
    initial_price numeric(10, 2) NOT NULL DEFAULT 100.00,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    status varchar(50) NOT NULL DEFAULT 'open'
);
CREATE TABLE bids_bidhistory (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    bid_id bigint NOT NULL REFERENCES bids_bid (id) ON DELETE CASCADE,
    bidder_name varchar(255) NOT NULL,
    price numeric(10, 2) NOT NULL,
    added_at timestamp with time zone NOT NULL DEFAULT now(),
    name varchar(255) NOT NULL DEFAULT ''
);
-- What Django creates for a ForeignKey: an index on the column alone.
CREATE INDEX bids_bidhistory_bid_id_5b2a8a0f ON bids_bidhistory (bid_id);
"""


def migrate_and_seed(db: Database) -> Database:
    run_cli_ok("migrate", database_url=db.url)
    run_cli_ok("seed", database_url=db.url)
    return db


def create_auction(db: Database, name: str, initial_price: str | None = None) -> dict:
    """`bidding-server bid create`: returns its JSON line as a dict."""
    args = ["bid", "create", "--name", name]
    if initial_price is not None:
        args += ["--initial-price", initial_price]
    result = run_cli_ok(*args, database_url=db.url)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"`bid create` must print exactly one JSON line, printed:\n{result.stdout}"
    return json.loads(lines[0])


# Servers running right now: conftest attaches their log tails to a failing test's report.
LIVE_SERVERS: list["Server"] = []


class Server:
    """One running `bidding-server serve`."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, env: dict[str, str], name: str):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.env = env
        self.name = name
        self.exit_expected = False  # set when the test itself makes the server exit (SIGTERM drain)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, bid_id: Any, trailing_slash: bool = False) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/bid/{bid_id}{'/' if trailing_slash else ''}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Sends `sig` to the server; the exit that follows is expected (not reported as a crash)."""
        self.exit_expected = True
        self.proc.send_signal(sig)

    def save_artifact(self, label: str) -> Path | None:
        """Copies the full log to test-artifacts/e2e/ (kept after the run, ignored by git)."""
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            target = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}-{self.name}-{self.port}.log"
            shutil.copyfile(self.log_path, target)
            return target
        except OSError:
            return None

    def stop(self) -> int | None:
        code = stop_process(self.proc, grace=10)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)
        return code


def metrics_text(server: "Server", timeout: float = 3.0) -> str:
    """GET /metrics of a running server."""
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=timing_bound(timeout)) as response:
        return response.read().decode()


def metric_value(text: str, name: str, labels: str = "") -> float:
    """One sample of the Prometheus text (AssertionError naming it when absent)."""
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"/metrics must expose {name}{{{labels}}}; got:\n{text[:2000]}"
    return float(match.group(1))


def open_fds(pid: int) -> int:
    """How many file descriptors the process holds now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def holds_connection(pid: int, local_port: int, peer_port: int) -> bool:
    """Whether process `pid` still holds (has a descriptor for) its TCP connection from its port
    `local_port` to the peer's port `peer_port`. A socket the process closed may linger in the
    kernel (FIN-WAIT, orphaned): it no longer counts."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == peer_port:
                inodes.add(inode)
    inodes.discard("0")
    if not inodes:
        return False
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def rss_kib(pid: int) -> int:
    """The process's resident memory (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def healthz_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timing_bound(1)) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def server_env(database_url: str, port: int, redis_url: str = "",
               env: dict[str, str | None] | None = None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "ENV": "test",
        "APP_PORT": str(port),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "debug",
        "HEARTBEAT_INTERVAL": "30",
        "IDLE_TIMEOUT": "360",
        # Tests bid far faster than people; the limit has its own test (test_rate_limit.py).
        "BID_RATE_LIMIT": "0",
        # Every test client comes from 127.0.0.1; the per-address limit has its own test
        # (test_limits.py).
        "MAX_CONNECTIONS_PER_IP": "0",
    }
    base.update(env or {})
    return clean_env(base)


def start_server(database_url: str, workdir: Path, *, redis_url: str = "",
                 env: dict[str, str | None] | None = None, name: str = "server",
                 timeout: float = 20) -> Server:
    """Starts `bidding-server serve` on a free port and waits until GET /healthz answers 200
    (polled every 20 ms, at most `timeout` s). Its stdout and stderr go to a log file in `workdir`,
    which is also its working directory (no stray .env)."""
    binary = require_binary()
    timeout = timing_bound(timeout)
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        log_path = workdir / f"{name}-{port}.log"
        full_env = server_env(database_url, port, redis_url, env)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([str(binary), "serve"], env=full_env, cwd=str(workdir), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(proc, port, log_path, full_env, name)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log_text = server.log_text().lower()
                if attempt < 2 and ("in use" in log_text or "eaddrinuse" in log_text):
                    break  # lost the port race: try another port
                raise RuntimeError(f"bidding-server serve exited with code {proc.returncode} before "
                                   f"/healthz answered; log tail:\n{server.log_tail()}")
            if healthz_status(port) == 200:
                LIVE_SERVERS.append(server)
                return server
            if time.monotonic() >= deadline:
                stop_process(proc, grace=2)
                raise RuntimeError(f"bidding-server serve: GET /healthz did not answer 200 within {timeout} s; "
                                   f"log tail:\n{server.log_tail()}")
            time.sleep(0.02)
    raise RuntimeError("bidding-server serve could not bind a free port in 3 attempts")


class ServerPool:
    """Starts servers for one fixture scope and stops them all at its end."""

    def __init__(self, workdir: Path, default_db: Database | None = None, redis: Redis | None = None):
        self.workdir = workdir
        self.default_db = default_db
        self.redis = redis
        self.servers: list[Server] = []

    def __call__(self, db: Database | None = None, *, env: dict[str, str | None] | None = None,
                 use_redis: bool = False, redis: Redis | None = None, name: str = "server") -> Server:
        """Starts a server on `db`. With use_redis=True it uses the pool's Redis (the redis fixture);
        `redis=` gives it another Redis (a test's own instance)."""
        db = db or self.default_db
        assert db is not None, "start_server needs a database"
        redis_url = ""
        if redis is not None:
            redis_url = redis.url
        elif use_redis:
            assert self.redis is not None, "start_server(use_redis=True) needs the redis fixture"
            redis_url = self.redis.url
        server = start_server(db.url, self.workdir, redis_url=redis_url, env=env, name=name)
        self.servers.append(server)
        return server

    def pods(self, count: int, db: Database | None = None, *, redis: Redis | None = None,
             env: dict[str, str | None] | None = None, prefix: str = "pod") -> list[Server]:
        """`count` servers ("pods") sharing one database and one Redis: pod-a, pod-b, ..."""
        redis = redis or self.redis
        assert redis is not None, "pods() needs a Redis: the redis fixture or redis="
        return [self(db, env=env, redis=redis, name=f"{prefix}-{chr(ord('a') + i)}") for i in range(count)]

    def stop_all(self) -> list[str]:
        """Stops every server; returns complaints about servers that had died on their own, and
        about sanitizer reports in any server's log (even one that exited 0)."""
        problems = []
        for server in self.servers:
            if not server.alive() and not server.exit_expected:
                problems.append(f"bidding-server ({server.name}, port {server.port}) exited on its own with "
                                f"code {server.proc.returncode} during the test; log tail:\n{server.log_tail()}")
            server.stop()
            findings = sanitizer_findings(server.log_text())
            if findings:
                saved = server.save_artifact("sanitizer")
                problems.append(f"bidding-server ({server.name}, port {server.port}, exit code {server.proc.returncode}): "
                                f"a sanitizer reported a problem in its log ({saved}):\n" + "\n".join(findings[:20])
                                + f"\nlog tail:\n{server.log_tail(150)}")
        self.servers.clear()
        return problems


# --------------------------------------------------------------------------- WebSocket helpers

def run_async(coro, timeout: float = 60):
    """Runs a coroutine to completion with an overall deadline (timing_bound)."""
    return asyncio.run(asyncio.wait_for(coro, timing_bound(timeout)))


def ws_connect(url: str, **kwargs: Any):
    """A websockets client with no keep-alive pings of its own (it still answers the server's).
    Use as `async with ws_connect(url) as ws:` or `ws = await ws_connect(url)`. Its open and close
    timeouts are timing_bound()s."""
    options = dict(open_timeout=10, close_timeout=2, ping_interval=None, max_size=2 ** 22, max_queue=None)
    options.update(kwargs)
    for key in ("open_timeout", "close_timeout"):
        if options[key] is not None:
            options[key] = timing_bound(options[key])
    return websockets.connect(url, **options)


async def recv_json(ws, timeout: float = 5.0, skip_pings: bool = True, what: str = "a message") -> dict:
    """The next JSON message (heartbeat pings skipped by default), within timing_bound(timeout)."""
    timeout = timing_bound(timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            raw = await asyncio.wait_for(ws.recv(), max(remaining, 0.001))
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
        except websockets.exceptions.ConnectionClosed as closed:
            raise AssertionError(f"the server closed the connection (code {ws.close_code}, reason "
                                 f"{ws.close_reason!r}) while the client waited for {what}") from closed
        assert isinstance(raw, str), f"the server sent a binary frame instead of a JSON text message: {raw!r}"
        message = json.loads(raw)
        if skip_pings and is_ping(message):
            continue
        return message


def is_ping(message: Any) -> bool:
    """The heartbeat: {"type":"ping","server_time":"...Z"} and nothing else."""
    return (isinstance(message, dict) and message.get("type") == "ping"
            and set(message) <= {"type", "server_time"})


async def recv_until_closed(ws, timeout: float = 5.0) -> tuple[list[dict], int | None, str | None]:
    """Reads until the server closes: (messages other than pings, close code, close reason)."""
    messages: list[dict] = []
    timeout = timing_bound(timeout)

    async def drain():
        try:
            async for raw in ws:
                message = json.loads(raw) if isinstance(raw, str) else {"binary": raw}
                if not is_ping(message):
                    messages.append(message)
        except websockets.exceptions.ConnectionClosed:
            pass

    try:
        await asyncio.wait_for(drain(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the server did not close the connection within {timeout} s "
                             f"(received meanwhile: {messages})") from None
    return messages, ws.close_code, ws.close_reason


async def initial_state(ws, timeout: float = 5.0) -> dict:
    message = await recv_json(ws, timeout, what="initial_state")
    assert message.get("type") == "initial_state", f"the first message must be initial_state, got {message}"
    return message


async def handshake_status(url: str, **kwargs: Any) -> int:
    """The HTTP status of the WebSocket upgrade: 101 when it succeeded."""
    try:
        ws = await ws_connect(url, **kwargs)
    except websockets.exceptions.InvalidStatusCode as error:
        return error.status_code
    await ws.close()
    return 101


def bid_frame(name: str, price: Any, ref: str | None = None, key: str = "price") -> str:
    """A bid as JSON text. `price` given as a str is written raw (a JSON number or a quoted string,
    as you spell it): '2.675' is the number 2.675, '"2.675"' the string."""
    parts = [f'"name":{json.dumps(name)}', f'"{key}":{price}']
    if ref is not None:
        parts.append(f'"ref":{json.dumps(ref)}')
    return "{" + ",".join(parts) + "}"


async def place_bid(ws, name: str, price: Any, ref: str | None = None, timeout: float = 5.0) -> tuple[dict, dict]:
    """Sends a bid that must be accepted; returns (new_bid, bid_accepted) as the sender saw them."""
    await ws.send(bid_frame(name, price, ref))
    new_bid = await recv_json(ws, timeout, what=f"new_bid for the bid {name} {price}")
    assert new_bid.get("type") == "new_bid", f"bid {name} {price}: expected new_bid, got {new_bid}"
    accepted = await recv_json(ws, timeout, what=f"bid_accepted for the bid {name} {price}")
    assert accepted.get("type") == "bid_accepted", (
        f"bid {name} {price}: the sender must get bid_accepted after new_bid, got {accepted}")
    return new_bid, accepted


def history(db: Database, bid_id: int) -> list[tuple[int, str, str]]:
    """The stored history of an auction, oldest first: (seq, bidder, price as '123.45')."""
    rows = db.query("SELECT id, bidder_name, price::text FROM bids_bidhistory WHERE bid_id = %s ORDER BY id",
                    (bid_id,))
    return [(int(r[0]), r[1], r[2]) for r in rows]


# --------------------------------------------------------------------------- multi-pod helpers

async def eventually(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Async polling with a deadline (for things that are not messages, e.g. Redis subscriptions):
    AssertionError naming `what` if `predicate` is still falsy after `timeout` s (timing_bound)."""
    loop = asyncio.get_running_loop()
    timeout = timing_bound(timeout)
    deadline = loop.time() + timeout
    while True:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(interval)


def is_reply(ref: str) -> Callable[[dict], bool]:
    """Matches the one reply (bid_accepted or error) to the bid sent with `ref`."""
    return lambda m: m.get("ref") == ref and m.get("type") in ("bid_accepted", "error")


class WsClient:
    """One WebSocket client of an auction whose messages are read in the background.

    `open()` connects and reads initial_state (kept in `state`); every later message except pings is
    appended to `messages` (with its arrival time). `wait_for`/`wait_until` wake on each message,
    so tests wait for events, never for a fixed time."""

    def __init__(self, name: str, url: str):
        self.name = name
        self.url = url
        self.ws = None
        self.state: dict | None = None
        self.messages: list[dict] = []
        self.arrival: dict[int, float] = {}  # id(message) -> time.monotonic() at arrival
        self.seen_seqs: set[int] = set()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.reader_error: BaseException | None = None
        self._waiters: list[asyncio.Future] = []
        self._reader: asyncio.Future | None = None

    async def open(self, timeout: float = 10.0) -> dict:
        self.ws = await ws_connect(self.url)
        self.state = await initial_state(self.ws, timeout)
        self._reader = asyncio.ensure_future(self._read())
        return self.state

    @property
    def last_seq(self) -> int:
        """The newest seq this client knows: from its new_bids, else its initial_state."""
        seqs = self.seqs()
        return seqs[-1] if seqs else self.state["bid"]["last_seq"]

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw) if isinstance(raw, str) else {"binary": raw}
                if is_ping(message):
                    continue
                self.messages.append(message)
                self.arrival[id(message)] = time.monotonic()
                if message.get("type") == "new_bid":
                    self.seen_seqs.add(message.get("seq"))
                self._wake()
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as error:  # a non-JSON frame, ...: reported by wait_for
            self.reader_error = error
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
            self.closed.set()
            self._wake()

    def _wake(self) -> None:
        for future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()

    async def _tick(self, remaining: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(future, remaining)
        except asyncio.TimeoutError:
            pass

    def _describe(self) -> str:
        return (f"closed={self.closed.is_set()} (code {self.close_code}, reason {self.close_reason!r}), "
                f"reader error {self.reader_error!r}, last messages {self.messages[-4:]}")

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        """The first message (since initial_state) matching `predicate`, waiting for it if needed
        (at most timing_bound(timeout) s)."""
        loop = asyncio.get_running_loop()
        timeout = timing_bound(timeout)
        deadline = loop.time() + timeout
        scanned = 0
        while True:
            for message in self.messages[scanned:]:
                if predicate(message):
                    return message
            scanned = len(self.messages)
            if self.closed.is_set():
                raise AssertionError(f"{self.name}: the connection ended before {what}; {self._describe()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: {what} did not arrive within {timeout} s; {self._describe()}")
            await self._tick(remaining)

    async def wait_until(self, condition: Callable[[], bool], timeout: float, what: str,
                         allow_closed: bool = False) -> None:
        """Waits until `condition()` holds, re-checking on each message (timing_bound(timeout) s)."""
        loop = asyncio.get_running_loop()
        timeout = timing_bound(timeout)
        deadline = loop.time() + timeout
        while not condition():
            if self.closed.is_set() and not allow_closed:
                raise AssertionError(f"{self.name}: the connection ended before {what}; {self._describe()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: {what} not reached within {timeout} s; {self._describe()}")
            await self._tick(min(remaining, 0.5) if self.closed.is_set() else remaining)

    async def wait_closed(self, timeout: float, what: str = "the server's close") -> None:
        timeout = timing_bound(timeout)
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name}: {what} did not happen within {timeout} s; {self._describe()}") from None

    def new_bids(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") == "new_bid"]

    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.new_bids()]

    def replies(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") in ("bid_accepted", "error")]

    async def send_bid(self, bidder: str, price: str, ref: str) -> float:
        """Sends a bid (price as a JSON string); returns the time it was sent."""
        sent = time.monotonic()
        await self.ws.send(bid_frame(bidder, json.dumps(price), ref))
        return sent

    async def bid(self, bidder: str, price: str, ref: str, timeout: float = 5.0) -> tuple[dict, float]:
        """Sends a bid and waits for its reply: (reply, seconds from sending to the reply's arrival)."""
        sent = await self.send_bid(bidder, price, ref)
        reply = await self.wait_for(is_reply(ref), timeout, f"the reply to the bid {ref} ({bidder} {price})")
        return reply, self.arrival[id(reply)] - sent

    async def bid_accepted(self, bidder: str, price: str, ref: str, timeout: float = 5.0) -> dict:
        reply, _ = await self.bid(bidder, price, ref, timeout)
        assert reply["type"] == "bid_accepted", f"{self.name}: the bid {ref} ({bidder} {price}) must be accepted: {reply}"
        return reply

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)

    async def drop(self) -> None:
        """Loses the connection abruptly (no close frame), as a client whose network vanished."""
        self.ws.transport.abort()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)


async def open_clients(clients: Iterable[WsClient], timeout: float = 20.0) -> None:
    await asyncio.gather(*(c.open(timeout) for c in clients))


async def close_clients(clients: Iterable[WsClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


class PriceTicker:
    """Ever-increasing prices ("100.01", "100.02", ...) shared by the bidders of one test, so that
    every bid is unique, and a bid is refused only because a concurrent one went first."""

    def __init__(self, start_cents: int = 10_001, step: int = 1):
        self.cents = start_cents - step
        self.step = step

    def next(self) -> str:
        self.cents += self.step
        return f"{self.cents // 100}.{self.cents % 100:02d}"


@dataclass
class BidRecord:
    client: str
    bidder: str
    price: str
    ref: str
    sent: float
    reply: dict | None = None  # None: the connection ended before the reply
    replied: float | None = None

    @property
    def accepted(self) -> bool:
        return self.reply is not None and self.reply.get("type") == "bid_accepted"

    @property
    def error_code(self) -> str | None:
        return self.reply.get("code") if self.reply is not None and self.reply.get("type") == "error" else None


async def bid_loop(client: WsClient, ticker: PriceTicker, stop: asyncio.Event, records: list[BidRecord],
                   reply_timeout: float = 5.0, pause: float = 0.0) -> None:
    """Bids continuously, one bid at a time, until `stop` is set or the server ends the connection.
    Every bid is recorded with its reply and timing. A reply missing on an open connection fails."""
    k = 0
    while not stop.is_set() and not client.closed.is_set():
        price = ticker.next()
        ref = f"{client.name}-{k}"
        k += 1
        record = BidRecord(client.name, client.name, price, ref, time.monotonic())
        records.append(record)
        try:
            record.sent = await client.send_bid(client.name, price, ref)
        except websockets.exceptions.ConnectionClosed:
            break
        try:
            reply = await client.wait_for(is_reply(ref), reply_timeout, f"the reply to the bid {ref}")
        except AssertionError:
            if client.closed.is_set():
                break
            raise
        record.reply = reply
        record.replied = client.arrival[id(reply)]
        if pause:
            await asyncio.sleep(pause)


def check_stream(client: WsClient, stored: list[tuple[int, str, str]], complete: bool = True) -> None:
    """The promise of new_bid: every stored bid after the client's initial_state last_seq arrives
    exactly once, in increasing seq, with no gap, and as stored. With complete=False the client
    left early: what it got must be a gap-free beginning of that sequence."""
    after = client.state["bid"]["last_seq"]
    expected = [row for row in stored if row[0] > after]
    expected_seqs = [row[0] for row in expected]
    got = client.seqs()
    duplicates = sorted({s for s in got if got.count(s) > 1})
    out_of_order = [(a, b) for a, b in zip(got, got[1:]) if a >= b][:5]
    target = expected_seqs if complete else expected_seqs[:len(got)]
    assert got == target, (
        f"{client.name} must receive every accepted bid after its initial_state (last_seq {after}) exactly once, "
        f"in increasing seq, with no gap{'' if complete else ' (up to when it was disconnected)'}: got {len(got)} "
        f"new_bid vs {len(target)} stored; duplicates {duplicates}, out of order {out_of_order}, missing "
        f"{sorted(set(target) - set(got))[:20]}, not stored/unexpected {sorted(set(got) - set(target))[:20]}")
    by_seq = {row[0]: row for row in stored}
    for message in client.new_bids():
        row = by_seq[message["seq"]]
        assert (message.get("bidder"), message.get("price")) == (row[1], row[2]), (
            f"{client.name}: new_bid {message} differs from the stored row {row}")


def check_acknowledged_are_stored(records: Iterable[BidRecord], stored: list[tuple[int, str, str]]) -> int:
    """No bid is acknowledged unless it is stored: every bid_accepted names a stored row with that
    bidder and price. Returns how many were acknowledged."""
    by_seq = {row[0]: row for row in stored}
    count = 0
    for record in records:
        if record.accepted:
            count += 1
            seq = record.reply.get("seq")
            assert seq in by_seq, (
                f"{record.client}: bid {record.ref} ({record.price}) was acknowledged with seq {seq}, "
                "but no such row is in Postgres: an acknowledged bid was lost")
            assert by_seq[seq][1:] == (record.bidder, record.price), (
                f"{record.client}: bid_accepted {record.reply} does not match the stored row {by_seq[seq]}")
    return count


# --------------------------------------------------------------------------- HTTP API and tokens

# The SECRET_KEY the API tests give the server and the `token` command (at least 32 characters).
TEST_SECRET_KEY = "e2e-secret-key-for-tokens-0123456789abcdef"


def b64url(data: bytes) -> str:
    """base64url without padding, as JWTs write their three parts."""
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(claims: dict, key: str = TEST_SECRET_KEY, alg: str = "HS256",
             header: dict | None = None) -> str:
    """A JWT forged with the standard library: HS256/HS384/HS512 signed with `key`, or alg "none"
    with an empty signature. `header` replaces the default {"alg":alg,"typ":"JWT"}."""
    import hashlib
    import hmac
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(head, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def token_claims(sub: str, role: str, ttl: int = 3600, **extra: Any) -> dict:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    claims.update(extra)
    return claims


def admin_jwt(key: str = TEST_SECRET_KEY, ttl: int = 3600) -> str:
    return make_jwt(token_claims("admin", "admin", ttl), key)


def bidder_jwt(name: str, key: str = TEST_SECRET_KEY, ttl: int = 3600) -> str:
    return make_jwt(token_claims(name, "bidder", ttl), key)


def decode_jwt(token: str) -> tuple[dict, dict, bytes]:
    """(header, claims, signature) of a JWT, without verifying it."""
    parts = token.split(".")
    assert len(parts) == 3, f"a JWT has three dot-separated parts: {token!r}"
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2])


def jwt_signature_ok(token: str, key: str = TEST_SECRET_KEY) -> bool:
    import hashlib
    import hmac
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(b64url_decode(signature), expected)


def cli_token(*args: str, key: str | None = TEST_SECRET_KEY) -> str:
    """`bidding-server token ARGS...` with SECRET_KEY=key: the one line it prints."""
    result = run_cli_ok("token", *args, env={"SECRET_KEY": key})
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"`bidding-server token {' '.join(args)}` must print exactly one line, printed:\n{result.stdout}"
    return lines[0].strip()


@dataclass
class HttpReply:
    status: int
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    text: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "") or ""

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: the body is not JSON: {self.text[:500]!r}") from None

    def __repr__(self) -> str:
        return f"HTTP {self.status} {self.content_type!r} {self.text[:400]!r}"


def http_request(server: Server, method: str, path: str, body: Any = None, *, token: str | None = None,
                 headers: dict[str, str] | None = None, host: str | None = None,
                 timeout: float = 10.0) -> HttpReply:
    """One HTTP request to the server on a fresh connection. `body`: bytes/str sent as is, anything
    else as JSON (with Content-Type: application/json); `token` adds Authorization: Bearer; `host`
    replaces the Host header."""
    import http.client
    send_headers: dict[str, str] = {}
    payload: bytes | None = None
    if body is not None:
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        send_headers["Content-Type"] = "application/json"
    if token is not None:
        send_headers["Authorization"] = f"Bearer {token}"
    if host is not None:
        send_headers["Host"] = host
    send_headers.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timing_bound(timeout))
    try:
        if payload is None and method in ("POST", "PUT", "PATCH"):
            send_headers.setdefault("Content-Length", "0")
        try:
            conn.request(method, path, body=payload, headers=send_headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (e.g. 413) before reading the whole body: read its answer
        response = conn.getresponse()
        return HttpReply(response.status, response.headers, response.read().decode(errors="replace"))
    finally:
        conn.close()
