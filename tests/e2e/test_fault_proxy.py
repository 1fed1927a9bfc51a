"""Tests of the fault-injection tooling (fault_proxy.py and faults.py) itself.

Why: a fault test that passes because its fault never happened proves nothing. Each fault is shown
here to do exactly what the failure tests rely on: against a small echo server for the network
modes, against the suite's real Postgres for the COMMIT faults, and on real processes for
freezing. The whole file runs in a few seconds.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import psycopg2
import psycopg2.errors
import pytest

import faults
from fault_proxy import COMMIT, PgStream, is_commit
from faults import FaultProxy, ProxyError, frozen, via_proxy, redis_via_proxy

CONNECTION_LOST = (psycopg2.OperationalError, psycopg2.InterfaceError)


# --------------------------------------------------------------------------- helpers

class EchoServer:
    """A threaded TCP echo server on a free port that records how each connection ended
    ("eof" or "reset"), so a test can see what the proxy did to the far side."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.endings: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        ending = "eof"
        try:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    break
                conn.sendall(data)
        except ConnectionResetError:
            ending = "reset"
        except OSError:
            ending = "error"
        finally:
            conn.close()
            with self.lock:
                self.endings.append(ending)

    def close(self) -> None:
        self.sock.close()


class Background:
    """Runs fn in a daemon thread: a blocking libpq call gets a client-side timeout this way."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as error:
            self.error = error
        finally:
            self.done.set()

    def outcome(self, timeout: float) -> Any:
        """The result (or raises fn's exception); TimeoutError if fn is still running."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.01)


def connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        got += chunk
    return got


def still_open(sock: socket.socket) -> bool:
    """True when the socket has neither EOF nor a reset nor data pending (a silent network)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for that timeout first
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False  # EOF, or data arrived: not a silent network


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as p:
        yield p
    assert p.proc is None


# --------------------------------------------------------------------------- network modes

def test_pass_through_keeps_bytes_intact_at_speed(proxy: FaultProxy) -> None:
    with connect(proxy, timeout=10) as sock:
        assert roundtrip(sock, b"PING\r\n") == b"PING\r\n"  # a short first message is not held back
        data = os.urandom(1 << 20) * 16  # 16 MiB
        sender = Background(lambda: sock.sendall(data))
        digest, received, started = hashlib.sha256(), 0, time.monotonic()
        while received < len(data):
            chunk = sock.recv(1 << 20)
            assert chunk, "the proxy closed the connection mid-transfer"
            digest.update(chunk)
            received += len(chunk)
        elapsed = time.monotonic() - started
        sender.outcome(5)
        assert digest.digest() == hashlib.sha256(data).digest()
        assert elapsed < 5, f"16 MiB each way took {elapsed:.1f} s"
    stats = proxy.wait_stats(lambda s: s["connections_open"] == 0, what="the connection closed")
    assert stats["bytes_up"] == stats["bytes_down"] == len(data) + 6
    assert stats["connections_total"] == 1


def test_hundreds_of_connections(proxy: FaultProxy) -> None:
    socks = [connect(proxy, timeout=10) for _ in range(300)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(f"hello {i}\n".encode())
        for i, sock in enumerate(socks):
            expected = f"hello {i}\n".encode()
            got = b""
            while len(got) < len(expected):
                got += sock.recv(100)
            assert got == expected
        assert proxy.stats()["connections_open"] == 300
    finally:
        for sock in socks:
            sock.close()
    proxy.wait_stats(lambda s: s["connections_open"] == 0, what="every connection closed")


def test_delay_adds_the_delay_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy, timeout=5) as sock:
        roundtrip(sock, b"warm-up")
        proxy.mode("delay", 0.3)
        started = time.monotonic()
        assert roundtrip(sock, b"delayed") == b"delayed"
        elapsed = time.monotonic() - started
        assert elapsed >= 0.6 - 0.005, f"a 0.3 s delay each way must add 0.6 s to a round trip, took {elapsed:.3f}"
        proxy.mode("pass")
        started = time.monotonic()
        roundtrip(sock, b"prompt")
        assert time.monotonic() - started < 0.3


def test_blackhole_is_silent_but_keeps_sockets_open(proxy: FaultProxy, echo: EchoServer) -> None:
    existing = connect(proxy, timeout=0.5)
    try:
        assert roundtrip(existing, b"before") == b"before"
        proxy.mode("blackhole")
        existing.sendall(b"lost")
        with pytest.raises(socket.timeout):
            existing.recv(100)
        assert still_open(existing)

        accepted_before = echo.accepted
        new = connect(proxy, timeout=0.5)  # accepted, then silent
        new.sendall(b"into the void")
        with pytest.raises(socket.timeout):
            new.recv(100)
        assert still_open(new) and still_open(existing)
        assert echo.accepted == accepted_before, "a blackholed connection must not reach the target"
        stats = proxy.stats()
        assert stats["connections_open"] == 2 and stats["bytes_dropped"] >= len(b"lost" b"into the void")

        proxy.mode("pass")
        with connect(proxy) as fresh:
            assert roundtrip(fresh, b"after") == b"after"
        new.close()
    finally:
        existing.close()


def test_cut_resets_both_sides(proxy: FaultProxy, echo: EchoServer) -> None:
    endings_before = len(echo.endings)
    a, b = connect(proxy), connect(proxy)
    try:
        assert roundtrip(a, b"a") == b"a" and roundtrip(b, b"b") == b"b"
        assert proxy.cut() == 2
        for sock in (a, b):
            with pytest.raises(ConnectionResetError):
                sock.recv(10)
        wait_for(lambda: len(echo.endings) >= endings_before + 2, 5, "the echo server saw both connections end")
        assert echo.endings[endings_before:] == ["reset", "reset"], "the far side must see a reset too"
        with connect(proxy) as c:  # still accepting, in the current mode
            assert roundtrip(c, b"c") == b"c"
    finally:
        a.close()
        b.close()


def test_refuse_closes_new_connections_only(proxy: FaultProxy) -> None:
    existing = connect(proxy)
    try:
        assert roundtrip(existing, b"1") == b"1"
        proxy.mode("refuse")
        # Reset at once: seen at the first read, or already by connect() on a busy machine.
        with pytest.raises(ConnectionResetError):
            with connect(proxy) as refused:
                if refused.recv(10) == b"":
                    raise ConnectionResetError("closed")
        assert roundtrip(existing, b"2") == b"2"
        proxy.mode("pass")
        with connect(proxy) as accepted:
            assert roundtrip(accepted, b"3") == b"3"
        assert proxy.stats()["connections_refused"] == 1
    finally:
        existing.close()


def test_control_errors_and_stop(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port).start()
    try:
        for bad in (("mode", "bogus"), ("mode", "delay", "x"), ("mode", "delay")):
            with pytest.raises(ProxyError):
                proxy.mode(*bad[1:])
        with pytest.raises(ProxyError):
            proxy.arm("nonsense")
        with pytest.raises(ProxyError):
            proxy.arm("drop_commit", 0)
        proxy.arm("drop_commit", 2)
        proxy.arm("hold_commit")
        assert proxy.stats()["armed"] == ["drop_commit", "drop_commit", "hold_commit"]
        assert proxy.disarm() == 3
        assert proxy.release() == 0
        stats = proxy.stats()
        assert {"connections_total", "connections_open", "bytes_up", "bytes_down", "commits_seen",
                "faults_fired"} <= stats.keys()
        assert stats["faults_fired"] == {"cut_after_commit": 0, "drop_commit": 0, "hold_commit": 0}
        pid = proxy.pid
        assert proxy.stop() == 0
        assert faults.state(pid) is None
        assert proxy.stop() is None  # idempotent
    finally:
        proxy.stop()

    # SIGTERM stops it cleanly too
    other = FaultProxy("127.0.0.1", echo.port).start()
    try:
        os.kill(other.pid, signal.SIGTERM)
        assert other.proc.wait(timeout=5) == 0
    finally:
        other.stop()


def test_via_proxy_urls() -> None:
    assert via_proxy("postgresql://bidding:s3cr%40t@127.0.0.1:5432/e2e_x?sslmode=disable", 6000) == \
        "postgresql://bidding:s3cr%40t@127.0.0.1:6000/e2e_x?sslmode=disable"
    assert redis_via_proxy("redis://127.0.0.1:6379/0", 6001) == "redis://127.0.0.1:6001/0"
    assert redis_via_proxy("redis://:pw@127.0.0.1:6379/2", 6001) == "redis://:pw@127.0.0.1:6001/2"


# --------------------------------------------------------------------------- the Postgres parser

def _typed(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


def _pg_client_stream() -> tuple[bytes, bytes]:
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    params = b"user\x00bidding\x00database\x00x\x00\x00"
    startup = (len(params) + 8).to_bytes(4, "big") + (196608).to_bytes(4, "big") + params
    commit = _typed(b"Q", b"  commit ;\n\x00")
    stream = (ssl_request + startup + _typed(b"p", b"password\x00") + _typed(b"Q", b"BEGIN\x00")
              + _typed(b"Q", b"INSERT INTO t VALUES (1, '" + b"x" * 5000 + b"')\x00")
              + _typed(b"Q", b"COMMIT PREPARED 'x'\x00") + commit + _typed(b"Q", b"SELECT 1\x00") + _typed(b"X", b""))
    return stream, commit


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
def test_parser_finds_commit_across_chunk_boundaries(chunk: int) -> None:
    stream, commit = _pg_client_stream()
    parser = PgStream()
    out: list[tuple[bytes, Any]] = []
    for i in range(0, len(stream), chunk):
        out += parser.feed(stream[i:i + chunk])
        if i == 0:
            parser.server_bytes(b"N")  # the answer to the SSLRequest
    assert b"".join(segment for segment, _ in out) == stream
    assert [segment for segment, action in out if action == COMMIT] == [commit]
    assert parser.commits == 1 and parser.state == "typed"
    if chunk >= 64:  # the INSERT's first bytes arrive with its header
        assert list(parser.commit_wrote) == [True], "the COMMIT ends a transaction that wrote"


def test_parser_tells_a_read_only_transactions_commit_from_a_writing_ones() -> None:
    parser = PgStream()
    params = b"user\x00bidding\x00\x00"
    parser.feed((len(params) + 8).to_bytes(4, "big") + (196608).to_bytes(4, "big") + params)
    stream = (_typed(b"Q", b"BEGIN\x00") + _typed(b"Q", b"SELECT id FROM t\x00") + _typed(b"Q", b"COMMIT\x00")
              + _typed(b"Q", b"BEGIN; SELECT 1 FROM t FOR UPDATE\x00") + _typed(b"Q", b"ROLLBACK\x00")
              + _typed(b"Q", b"WITH m AS (UPDATE t SET v = 1) INSERT INTO h VALUES (1)\x00")
              + _typed(b"Q", b"COMMIT\x00"))
    parser.feed(stream)
    assert list(parser.commit_wrote) == [False, True]


def test_parser_leaves_other_protocols_and_tls_alone() -> None:
    redis = PgStream()
    assert redis.feed(b"PING\r\n") == [(b"PING\r\n", None)] and redis.state == "opaque"
    tls = PgStream()
    tls.feed((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
    tls.server_bytes(b"S")
    hello = b"\x16\x03\x01\x02\x00" + b"Q\x00\x00\x00\x0bCOMMIT\x00"
    assert tls.feed(hello) == [(hello, None)] and tls.state == "opaque"
    assert is_commit(b"COMMIT\x00") and is_commit(b"\n commit;  \x00") and not is_commit(b"COMMIT PREPARED 'a'\x00")


# --------------------------------------------------------------------------- COMMIT faults (real Postgres)

@pytest.fixture(scope="module")
def db(postgres):
    database = postgres.create_database()
    database.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
    return database


@pytest.fixture
def pg_proxy(postgres) -> Iterator[FaultProxy]:
    with FaultProxy(postgres.host, postgres.port) as p:
        yield p


def connect_via(proxy: FaultProxy, db, **kwargs: Any) -> psycopg2.extensions.connection:
    return psycopg2.connect(via_proxy(db.url, proxy.port), connect_timeout=5, **kwargs)


_ids = iter(range(1, 1_000_000))


@pytest.mark.parametrize("sslmode", ["prefer", "disable"])
def test_cut_after_commit_commits_but_the_client_never_knows(pg_proxy: FaultProxy, db, sslmode: str) -> None:
    row = next(_ids)
    conn = connect_via(pg_proxy, db, sslmode=sslmode)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (%s, 'cut')", (row,))
        pg_proxy.arm("cut_after_commit")
        with pytest.raises(CONNECTION_LOST):
            Background(conn.commit).outcome(10)
    finally:
        conn.close()
    assert db.query("SELECT v FROM t WHERE id = %s", (row,)) == [("cut",)], "the server must have committed"
    stats = pg_proxy.stats()
    assert stats["faults_fired"]["cut_after_commit"] == 1 and stats["commits_seen"] == 1
    assert stats["armed"] == []


def test_drop_commit_aborts(pg_proxy: FaultProxy, db) -> None:
    row = next(_ids)
    conn = connect_via(pg_proxy, db)
    try:
        backend = conn.info.backend_pid
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (%s, 'dropped')", (row,))
        pg_proxy.arm("drop_commit")
        with pytest.raises(CONNECTION_LOST):
            Background(conn.commit).outcome(10)
    finally:
        conn.close()
    wait_for(lambda: not db.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)), 5,
             "the backend of the dropped connection ended")
    assert db.query("SELECT v FROM t WHERE id = %s", (row,)) == []
    assert pg_proxy.stats()["faults_fired"]["drop_commit"] == 1
    # later commits pass untouched
    conn = connect_via(pg_proxy, db)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (%s, 'ok')", (row,))
        conn.commit()
    finally:
        conn.close()
    assert db.query("SELECT v FROM t WHERE id = %s", (row,)) == [("ok",)]


def test_hold_commit_keeps_the_transaction_and_its_locks_until_release(pg_proxy: FaultProxy, db) -> None:
    row = next(_ids)
    db.execute("INSERT INTO t VALUES (%s, 'before')", (row,))
    conn = connect_via(pg_proxy, db)
    direct = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE t SET v = 'held' WHERE id = %s", (row,))
        pg_proxy.arm("hold_commit")
        commit = Background(conn.commit)
        with pytest.raises(TimeoutError):
            commit.outcome(1.0)
        assert pg_proxy.stats()["connections_held"] == 1
        with direct.cursor() as cur:
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                cur.execute("SELECT v FROM t WHERE id = %s FOR UPDATE NOWAIT", (row,))

        assert pg_proxy.release() == 1

        def lock_free() -> bool:
            try:
                with direct.cursor() as cur:
                    cur.execute("SELECT v FROM t WHERE id = %s FOR UPDATE NOWAIT", (row,))
                    return cur.fetchall() == [("before",)]
            except psycopg2.errors.LockNotAvailable:
                return False
        wait_for(lock_free, 5, "the held transaction's lock released")
        with pytest.raises(CONNECTION_LOST):
            commit.outcome(5)
    finally:
        conn.close()
        direct.close()
    assert pg_proxy.stats()["faults_fired"]["hold_commit"] == 1


# --------------------------------------------------------------------------- process faults

def test_freeze_postgres_stops_answering_on_open_connections(postgres) -> None:
    conn = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password,
                            dbname="postgres", connect_timeout=5, options="-c statement_timeout=0")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        pids = faults.freeze_postgres(postgres)
        try:
            assert len(pids) >= 4, f"the postmaster and its children: {pids}"
            assert all(faults.state(p) in ("T", None) for p in pids)

            def query() -> Any:
                with conn.cursor() as cur:
                    cur.execute("SELECT 42")
                    return cur.fetchone()[0]
            pending = Background(query)
            with pytest.raises(TimeoutError):
                pending.outcome(2.0)
        finally:
            faults.thaw_postgres(postgres)
        assert pending.outcome(10) == 42
        assert all(faults.state(p) not in ("T", "t") for p in pids)
    finally:
        conn.close()


def test_freeze_redis_stops_answering_on_an_open_socket(redis) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(16) == b"+PONG\r\n"
        faults.freeze_redis(redis)
        try:
            sock.sendall(b"PING\r\n")
            sock.settimeout(1.0)
            with pytest.raises(socket.timeout):
                sock.recv(16)
        finally:
            faults.thaw_redis(redis)
        sock.settimeout(5)
        assert sock.recv(16) == b"+PONG\r\n"


def test_frozen_always_thaws_and_kill9_children() -> None:
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        (child,) = wait_for(lambda: faults.children(parent.pid), 5, "the child process started")
        with pytest.raises(RuntimeError):
            with frozen(parent.pid) as pids:
                assert pids == [parent.pid] and faults.state(parent.pid) == "T"
                raise RuntimeError("the test failed")
        assert faults.state(parent.pid) not in ("T", "t")
        with frozen(parent.pid, group=True):
            assert faults.state(parent.pid) == "T" and faults.state(child) == "T"
        assert faults.state(child) not in ("T", "t")
        faults.kill9(child)
        assert faults.state(child) in (None, "Z")
    finally:
        faults.kill9(parent.pid)
        parent.wait(timeout=5)
