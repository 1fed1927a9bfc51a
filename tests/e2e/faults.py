"""Fault injection for the end-to-end tests: a network proxy that misbehaves on command, and
process faults (freeze, thaw, SIGKILL) for the server, Postgres and Redis.

Why: the server's promises (no acknowledged bid lost, no bid acknowledged twice, clients told when
the database is gone) only mean something when the network and the processes behind it fail in
the ways production ones do: packets dropped silently, connections reset, a COMMIT whose answer
never arrives, a database that stops answering without closing anything.

The network faults run in their own process (fault_proxy.py), started and stopped by PID with
deadlines; every process fault waits, with a deadline, until the kernel shows it took effect.

    with FaultProxy("127.0.0.1", postgres.port) as proxy:
        url = via_proxy(db.url, proxy.port)
        proxy.arm("cut_after_commit")
        ...
    with frozen(postgres):
        ...  # the cluster does not answer, even on open connections
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Union
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # only for the annotations: harness is being changed by someone else
    import harness

PROXY_SCRIPT = Path(__file__).resolve().with_name("fault_proxy.py")
FAULT_KINDS = ("cut_after_commit", "drop_commit", "hold_commit")
MODES = ("pass", "delay", "blackhole", "refuse")


class ProxyError(RuntimeError):
    """The proxy answered `error ...`, or could not be reached."""


# --------------------------------------------------------------------------- the proxy

class FaultProxy:
    """A fault_proxy.py process forwarding 127.0.0.1:<port> to target_host:target_port.

    Control calls share one connection to the control port (reopened once if it broke), each with
    a timeout of `control_timeout` seconds, and raise ProxyError when the proxy answers `error`.
    Thread-safe: a test may drive the proxy from a thread while another blocks on a held commit.
    """

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0, control_port: int = 0,
                 control_timeout: float = 5.0, start_timeout: float = 10.0) -> None:
        self.target_host = target_host
        self.target_port = int(target_port)
        self.listen_port = listen_port
        self.requested_control_port = control_port
        self.control_timeout = control_timeout
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.control_port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log_dir: Path | None = None
        self._control: socket.socket | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    # -- lifecycle

    @property
    def log_path(self) -> Path | None:
        """The proxy's stderr (tracebacks, if any)."""
        return self._log_dir / "fault_proxy.log" if self._log_dir else None

    def log_text(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def start(self) -> "FaultProxy":
        """Spawns the proxy (its own session, so a signal to the test's group does not reach it)
        and waits for its LISTEN line: the ports are bound when start() returns."""
        if self.proc is not None:
            return self
        self._log_dir = Path(tempfile.mkdtemp(prefix="bidding-e2e-proxy-"))
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(PROXY_SCRIPT), "--target", f"{self.target_host}:{self.target_port}",
                 "--listen-port", str(self.listen_port), "--control-port", str(self.requested_control_port),
                 "--exit-with-parent"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        finally:
            log.close()
        try:
            line = self._read_listen_line()
            words = line.split()
            if len(words) != 4 or words[0] != "LISTEN" or words[2] != "CONTROL":
                raise ProxyError(f"unexpected first line from the proxy: {line!r}")
            self.port, self.control_port = int(words[1]), int(words[3])
        except BaseException:
            self._kill()
            raise
        return self

    def _read_listen_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.start_timeout
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProxyError(f"the proxy printed no LISTEN line within {self.start_timeout} s:\n{self.log_text()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    raise ProxyError(f"the proxy exited ({self.proc.returncode}) before listening:\n{self.log_text()}")
                data += chunk
        return data.split(b"\n", 1)[0].decode(errors="replace").strip()

    def stop(self, timeout: float = 5.0) -> int | None:
        """`quit`, then SIGKILL by PID if the proxy has not exited within `timeout` seconds.
        Idempotent. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self._call("quit", timeout=min(timeout, self.control_timeout))
            except (ProxyError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return self._kill()

    def _kill(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        self._close_control()
        code = proc.returncode
        self.proc = None
        text = self.log_text()
        if text.strip():  # a traceback of the proxy: into the test's captured stderr
            print(f"fault_proxy (pid {proc.pid}, exit {code}) stderr:\n{text}", file=sys.stderr)
        if self._log_dir is not None:
            for path in self._log_dir.iterdir():
                path.unlink(missing_ok=True)
            self._log_dir.rmdir()
            self._log_dir = None
        return code

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def address(self) -> tuple[str, int]:
        assert self.port is not None, "start() the proxy first"
        return self.host, self.port

    # -- control protocol

    def _close_control(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.close()
        self._control = None
        self._buffer = b""

    def _call(self, command: str, timeout: float | None = None) -> str:
        """Sends one command line; returns what follows `ok` in the reply."""
        if self.proc is None or self.control_port is None:
            raise ProxyError(f"{command!r}: the proxy is not running")
        timeout = timeout or self.control_timeout
        with self._lock:
            while True:
                reused = self._control is not None
                try:
                    if self._control is None:
                        self._control = socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout)
                    self._control.settimeout(timeout)
                    self._control.sendall(command.encode() + b"\n")
                    reply = self._read_reply(timeout)
                    break
                except OSError as error:
                    self._close_control()
                    # A kept connection found closed is retried once on a new one; a timeout is
                    # not (the command may have run: cut or arm must not run twice).
                    if reused and isinstance(error, ConnectionError) and command != "quit":
                        continue
                    raise ProxyError(f"{command!r}: no reply from the proxy: {error!r}\n{self.log_text()}") from error
        if reply.startswith("ok"):
            return reply[2:].strip()
        raise ProxyError(f"{command!r}: {reply}")

    def _read_reply(self, timeout: float) -> str:
        assert self._control is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no reply within {timeout} s")
            chunk = self._control.recv(4096)
            if not chunk:
                raise ConnectionError("the proxy closed its control connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def mode(self, name: str, *args: Any) -> None:
        """mode("pass") | mode("delay", seconds) | mode("blackhole") | mode("refuse")."""
        self._call(" ".join(["mode", name, *map(str, args)]))

    def passthrough(self) -> None:
        self.mode("pass")

    def delay(self, seconds: float) -> None:
        self.mode("delay", seconds)

    def blackhole(self) -> None:
        self.mode("blackhole")

    def refuse(self) -> None:
        self.mode("refuse")

    def cut(self) -> int:
        """Resets both sides of every current connection; how many there were."""
        return int(self._call("cut"))

    def arm(self, kind: str, count: int = 1, *, writes_only: bool = False) -> None:
        """The next `count` COMMITs through the proxy get `kind` (see FAULT_KINDS); with
        `writes_only`, only COMMITs of transactions that wrote (never a read's of the pod's own)."""
        self._call(f"arm {kind} {int(count)}" + (" writes" if writes_only else ""))

    def disarm(self) -> int:
        """Cancels the armed faults; how many were still pending."""
        return int(self._call("disarm"))

    def release(self) -> int:
        """Resets every connection held by hold_commit; how many there were."""
        return int(self._call("release"))

    def stats(self) -> dict:
        return json.loads(self._call("stats"))

    def ping(self) -> bool:
        return self._call("ping") == "pong"

    def wait_stats(self, predicate: Any, timeout: float = 5.0, what: str = "proxy stats") -> dict:
        """Polls stats() until predicate(stats) is truthy (e.g. a fault fired); TimeoutError after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: not reached within {timeout} s (last stats {stats})")
            time.sleep(0.02)


def via_proxy(url: str, proxy_port: int, proxy_host: str = "127.0.0.1") -> str:
    """`url` (postgresql://user:pw@host:port/db?..., or any scheme://[userinfo@]host:port/...) with
    its host:port replaced by the proxy's; user, password, path and query kept."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{proxy_host}:{int(proxy_port)}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redis_via_proxy(redis_url: str, proxy_port: int, proxy_host: str = "127.0.0.1") -> str:
    """redis://127.0.0.1:PORT/0 -> redis://127.0.0.1:PROXY_PORT/0 (password and db kept)."""
    return via_proxy(redis_url, proxy_port, proxy_host)


# --------------------------------------------------------------------------- processes

def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, comes first), or
    None if the process is gone. The name may contain spaces and parentheses: split after the last ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rpartition(")")[2].split()


def state(pid: int) -> str | None:
    """The process state letter (R, S, D, T, Z, ...), None if gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def _threads_stopped(pid: int) -> bool:
    """True when every thread of `pid` is stopped (or the process is gone or a zombie): a SIGSTOP
    takes effect thread by thread, and a process answering from one running thread is not frozen."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return True
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        letter = text.rpartition(")")[2].split()[0]
        if letter not in ("T", "t", "Z", "X"):
            return False
    return True


def _running(pid: int) -> bool:
    """True when the process is not stopped any more (or is gone)."""
    letter = state(pid)
    return letter is None or letter not in ("T", "t")


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s")
        time.sleep(0.005)


def children(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (from the ppid field of /proc/*/stat)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and len(fields) > 1 and int(fields[1]) == pid:
                kids.append(int(entry))
    return sorted(kids)


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid` (parents before their children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for kid in children(todo.pop(0)):
            if kid not in found:
                found.append(kid)
                todo.append(kid)
    return found


def group_members(pgid: int) -> list[int]:
    """The PIDs of process group `pgid` (field 5 of /proc/*/stat)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and len(fields) > 2 and int(fields[2]) == pgid:
                members.append(int(entry))
    return sorted(members)


def _signal(pid: int, sig: int, group: bool) -> None:
    if group:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


def freeze(pid: int, group: bool = False, timeout: float = 5.0) -> None:
    """SIGSTOP `pid` (its process group when group=True) and wait until every thread of it is
    stopped: the process then answers nothing, on any socket, but keeps every one open."""
    _signal(pid, signal.SIGSTOP, group)
    pids = group_members(pid) if group else [pid]
    _wait(lambda: all(_threads_stopped(p) for p in pids), timeout, f"process{' group' if group else ''} {pid} stopped")


def thaw(pid: int, group: bool = False, timeout: float = 5.0) -> None:
    """SIGCONT `pid` (or its group) and wait until it is no longer stopped. A process that is
    gone meanwhile is not an error (the freeze is over either way)."""
    try:
        pids = group_members(pid) if group else [pid]
        _signal(pid, signal.SIGCONT, group)
    except ProcessLookupError:
        return
    _wait(lambda: all(_running(p) for p in pids), timeout, f"process{' group' if group else ''} {pid} continued")


def kill9(pid: int, group: bool = False, timeout: float = 10.0) -> None:
    """SIGKILL `pid` (or its group) and wait until it is dead (gone, or a zombie waiting for its
    parent: it runs no more and its sockets are closed). Its parent reaps it, not this function,
    so that a subprocess.Popen keeps its exit code."""
    pids = group_members(pid) if group else [pid]
    try:
        _signal(pid, signal.SIGKILL, group)
    except ProcessLookupError:
        return
    _wait(lambda: all(state(p) in (None, "Z", "X") for p in pids), timeout, f"process {pid} killed")


def postmaster_pid(pg: "harness.Postgres") -> int:
    """The postmaster's PID: the first line of postmaster.pid in the data directory."""
    return int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0].strip())


def freeze_postgres(pg: "harness.Postgres", timeout: float = 10.0) -> list[int]:
    """Stops the postmaster AND all its descendants (backends, checkpointer, walwriter, ...), so
    that the cluster answers nothing, on new connections (accepted by the kernel, never served) or
    existing ones. The postmaster goes first: once it is stopped it forks no new child, so the list
    of children read afterwards is complete. Returns the PIDs frozen (postmaster first)."""
    pm = postmaster_pid(pg)
    freeze(pm, timeout=timeout)
    frozen_pids = [pm]
    try:
        for kid in descendants(pm):
            try:
                os.kill(kid, signal.SIGSTOP)
                frozen_pids.append(kid)
            except ProcessLookupError:
                pass
        _wait(lambda: all(_threads_stopped(p) for p in frozen_pids), timeout, "every Postgres process stopped")
    except BaseException:
        _thaw_all(frozen_pids, timeout)
        raise
    return frozen_pids


def _thaw_all(pids: list[int], timeout: float) -> None:
    """SIGCONT the children first, the parent (pids[0]) last, then wait until none is stopped."""
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    _wait(lambda: all(_running(p) for p in pids), timeout, f"processes {pids} continued")


def thaw_postgres(pg: "harness.Postgres", timeout: float = 10.0) -> None:
    """Continues every process of the cluster (whatever is its descendant now, children first,
    the postmaster last)."""
    pm = postmaster_pid(pg)
    _thaw_all([pm, *descendants(pm)], timeout)


def redis_pid(redis: "harness.Redis") -> int:
    assert redis.proc is not None, "the Redis is not running"
    return redis.proc.pid


def freeze_redis(redis: "harness.Redis", timeout: float = 5.0) -> int:
    """Stops redis-server (all its threads): connections stay open, nothing is answered."""
    pid = redis_pid(redis)
    freeze(pid, timeout=timeout)
    return pid


def thaw_redis(redis: "harness.Redis", timeout: float = 5.0) -> None:
    thaw(redis_pid(redis), timeout=timeout)


Target = Union[int, "harness.Postgres", "harness.Redis"]


@contextlib.contextmanager
def frozen(*targets: Target, group: bool = False, timeout: float = 10.0) -> Iterator[list[int]]:
    """Freezes each target (a PID, a harness.Postgres: the whole cluster, a harness.Redis) for the
    body of the `with`, and always thaws them on exit, even when the body fails: a test that
    leaves the session's Postgres stopped would hang every test after it. Yields the PIDs frozen."""
    thaws: list[Any] = []
    pids: list[int] = []
    try:
        for target in targets:
            if isinstance(target, int):
                freeze(target, group=group, timeout=timeout)
                thaws.append(lambda pid=target: thaw(pid, group=group, timeout=timeout))
                pids.append(target)
            elif hasattr(target, "data_dir"):
                frozen_pids = freeze_postgres(target, timeout=timeout)
                # thaw exactly what was frozen, plus whatever the postmaster has now
                thaws.append(lambda pg=target, fp=frozen_pids: _thaw_all(
                    fp + [p for p in _safe_descendants(fp[0]) if p not in fp], timeout))
                pids.extend(frozen_pids)
            elif hasattr(target, "proc"):
                pids.append(freeze_redis(target, timeout=timeout))
                thaws.append(lambda pid=pids[-1]: thaw(pid, timeout=timeout))
            else:
                raise TypeError(f"frozen(): cannot freeze {target!r}")
        yield pids
    finally:
        errors = []
        for undo in reversed(thaws):
            try:
                undo()
            except Exception as error:  # thaw the others anyway
                errors.append(error)
        if errors:
            raise errors[0]


def _safe_descendants(pid: int) -> list[int]:
    try:
        return descendants(pid)
    except OSError:
        return []
