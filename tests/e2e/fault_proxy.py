#!/usr/bin/python3
"""A fault-injecting TCP proxy for the end-to-end tests, run as its own process.

    /usr/bin/python3 tests/e2e/fault_proxy.py --target HOST:PORT [--listen-port 0] [--control-port 0]

It listens on 127.0.0.1 only, prints one line ``LISTEN <port> CONTROL <port>`` once both sockets are
bound, and runs until its control socket receives ``quit`` or it receives SIGTERM (or, with
--exit-with-parent, until the process that started it is gone, so a killed pytest leaks nothing).

Why a separate process: the faults must hit the server under test (a C++ binary talking to
Postgres and Redis) exactly as a real network would, independently of the test's own event loop,
and a frozen or crashed test must not freeze the network with it.

Control protocol (TCP, one command per line, one reply line each, ``ok ...`` or ``error ...``):

    mode pass                 forward both ways (the default)
    mode delay SECONDS        deliver every chunk, both ways, SECONDS after it was read (order kept)
    mode blackhole            forward nothing on any connection, existing or new; read and discard,
                              keep every socket open (a network silently dropping packets)
    mode refuse               reset new connections at once; existing ones keep working
    cut                       reset (RST) both sides of every current connection -> ok N
    arm KIND [COUNT] [writes] the next COUNT (default 1) COMMITs seen on any connection get KIND
                              (with "writes": only COMMITs of transactions that sent an INSERT,
                              UPDATE or DELETE, so that a client's own reads are not the ones hit):
                                cut_after_commit  forward the COMMIT, wait for the server's answer
                                                  (not forwarded), then reset both sides
                                drop_commit       do not forward the COMMIT; reset both sides
                                hold_commit       do not forward the COMMIT; freeze that connection
                                                  both ways with both sockets open, until release
    disarm                    cancel armed faults -> ok N (how many were pending)
    release                   reset every held connection -> ok N
    stats                     ok {json}
    ping                      ok pong
    quit                      ok bye, then exit

The client->server byte stream is parsed as the PostgreSQL frontend protocol (only message headers
are looked at; connections that do not look like Postgres are passed through untouched).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import resource
import signal
import socket
import struct
import sys
from typing import Any, Optional

CHUNK = 256 * 1024          # bytes per read: large reads keep the per-chunk Python cost negligible
QUEUE_CHUNKS = 64           # chunks buffered per direction before the reader waits (backpressure)
CONNECT_TIMEOUT = 10.0      # seconds to reach the target before the client is reset
CUT_GRACE = 5.0             # cut_after_commit: how long to wait for the server's answer to COMMIT

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP_PACKET = 10000  # PostgreSQL's MAX_STARTUP_PACKET_LENGTH
MAX_COMMIT_QUERY = 1024     # a 'Q' message longer than this is not looked at (cannot be a bare COMMIT)
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"  # 'Z', length 5: what ends the server's answer to a query

FAULT_KINDS = ("cut_after_commit", "drop_commit", "hold_commit")
COMMIT = "commit"  # the action the parser attaches to a COMMIT message


WRITE_WORDS = re.compile(rb"\b(insert|update|delete)\b", re.IGNORECASE)


def is_rollback(body: bytes) -> bool:
    text = body.rstrip(b"\x00").decode("latin-1").strip().rstrip(";").strip()
    return text.upper() in ("ROLLBACK", "ABORT")


def is_commit(body: bytes) -> bool:
    """True when a simple Query's body (SQL + NUL) is COMMIT: case-insensitive, whitespace and a
    trailing ';' ignored."""
    text = body.rstrip(b"\x00").decode("latin-1").strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    return text.upper() == "COMMIT"


class PgStream:
    """Incremental splitter of the client->server half of the PostgreSQL protocol.

    feed() returns the bytes to forward as segments [(bytes, action)]: action is COMMIT for a
    segment that is exactly one COMMIT Query message, None otherwise. A small 'Q' message (and a
    partial header) is held back until complete, so a COMMIT split over several TCP chunks is
    still recognised before any of it is forwarded; every other message is passed on as soon as it
    is read, without copying its body. A stream that stops looking like Postgres (or switches to
    TLS/GSS encryption) becomes opaque: passed through as is, never parsed again.
    """

    def __init__(self) -> None:
        self.state = "startup"        # "startup" (untyped packets) | "typed" | "opaque"
        self.held = b""               # bytes held back: a partial header or an incomplete small Q
        self.skip = 0                 # bytes of the current (large) message still to pass through
        self.awaiting_reply = False   # an SSLRequest/GSSENCRequest waits for the server's 'N'/'S'
        self.commits = 0
        self.wrote = False            # an INSERT/UPDATE/DELETE since the last COMMIT or ROLLBACK
        self.commit_wrote: collections.deque[bool] = collections.deque()  # per COMMIT emitted, in order

    def server_bytes(self, data: bytes) -> None:
        """Sees the server->client bytes: the one-byte answer to SSLRequest/GSSENCRequest decides
        whether the rest of the stream is still plain protocol ('N') or encrypted ('S'/'G')."""
        if self.awaiting_reply and data:
            self.awaiting_reply = False
            if data[:1] in (b"S", b"G"):
                self.state = "opaque"

    def feed(self, data: bytes) -> list[tuple[bytes, Optional[str]]]:
        if self.state == "opaque":
            if self.held:
                data, self.held = self.held + data, b""
            return [(data, None)]
        if self.held:
            data = self.held + data
            self.held = b""
        n = len(data)
        pos = 0
        if self.skip:
            pos = min(self.skip, n)
            self.skip -= pos
        out: list[tuple[bytes, Optional[str]]] = []
        emit_from = 0
        while pos < n:
            if self.state == "startup":
                if n - pos < 8:
                    # Hold a partial packet back only while it can still be one (its length is at
                    # most 10000: two zero-ish bytes first), so that a short first message of
                    # another protocol ("PING\r\n" to Redis) is not held waiting for more.
                    if data[pos] != 0 or (n - pos >= 2 and data[pos + 1] > 0x27):
                        self.state = "opaque"
                        pos = n
                    break
                length, code = struct.unpack_from("!II", data, pos)
                if code in (SSL_REQUEST, GSSENC_REQUEST) and length == 8:
                    self.awaiting_reply = True
                    pos += 8
                    continue
                if length < 8 or length > MAX_STARTUP_PACKET or code >> 16 != 3:
                    self.state = "opaque"  # CancelRequest, garbage, or not Postgres at all
                    pos = n
                    break
                self.state = "typed"
                total = length
            elif self.state == "typed":
                if n - pos < 5:
                    break
                kind = data[pos]
                (length,) = struct.unpack_from("!I", data, pos + 1)
                if length < 4:
                    self.state = "opaque"
                    pos = n
                    break
                total = 1 + length
                if kind in (0x51, 0x50) and WRITE_WORDS.search(data[pos + 5:min(n, pos + total, pos + 5 + 256)]):
                    self.wrote = True  # a 'Q' or a 'P' (Parse) whose statement writes
                if kind == 0x51 and total <= MAX_COMMIT_QUERY + 5:  # 'Q'
                    if n - pos < total:
                        break  # hold the incomplete small query back
                    if is_rollback(data[pos + 5:pos + total]):
                        self.wrote = False
                    if is_commit(data[pos + 5:pos + total]):
                        self.commits += 1
                        self.commit_wrote.append(self.wrote)
                        self.wrote = False
                        if emit_from < pos:
                            out.append((data[emit_from:pos], None))
                        out.append((data[pos:pos + total], COMMIT))
                        emit_from = pos + total
                    pos += total
                    continue
            else:  # became opaque inside this chunk
                pos = n
                break
            if n - pos >= total:
                pos += total
            else:
                self.skip = total - (n - pos)
                pos = n
        if pos < n:
            self.held = data[pos:]
        if emit_from < pos:
            out.append((data[emit_from:pos] if emit_from or pos < n else data, None))
        return out


def _reset(writer: Optional[asyncio.StreamWriter]) -> None:
    """Closes a socket with SO_LINGER 0, so the peer sees a reset (RST), not an orderly FIN."""
    if writer is None:
        return
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, ValueError):
        pass
    writer.transport.abort()


_EOF = object()


class Connection:
    """One proxied connection: four tasks (a reader and a writer per direction) joined by bounded
    queues, so a delay keeps the order and a slow peer slows the sender instead of eating memory."""

    def __init__(self, proxy: "Proxy", client_reader: asyncio.StreamReader,
                 client_writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.server_reader: Optional[asyncio.StreamReader] = None
        self.server_writer: Optional[asyncio.StreamWriter] = None
        self.up: asyncio.Queue = asyncio.Queue(QUEUE_CHUNKS)
        self.down: asyncio.Queue = asyncio.Queue(QUEUE_CHUNKS)
        self.pg = PgStream()
        self.tasks: list[asyncio.Task] = []
        self.dead = False
        self.held = False          # hold_commit fired: nothing moves until release/cut
        self.broken = False        # a side failed while silenced: reset once forwarding resumes
        self.down_stopped = False  # cut_after_commit: the server's answer is swallowed
        self.answered: Optional[asyncio.Event] = None
        self.answer_tail = b""
        self.done = 0              # directions whose EOF was forwarded

    def silenced(self) -> bool:
        return self.held or self.proxy.mode == "blackhole"

    def spawn(self, coro: Any) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def run(self) -> None:
        """Reads the client at once (discarding while blackholed), but reaches the target only when
        the network forwards: a blackholed SYN would never arrive either."""
        self.spawn(self._read_loop(self.client_reader, self.up, "up"))
        try:
            await self._wait_forwarding()
            if self.dead:  # cut while blackholed
                return
            self.server_reader, self.server_writer = await asyncio.wait_for(
                asyncio.open_connection(self.proxy.target_host, self.proxy.target_port, limit=CHUNK * 2),
                CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            self.reset()
            return
        if self.dead:  # cut while connecting
            _reset(self.server_writer)
            return
        self.spawn(self._write_loop(self.up, self.server_writer, "up"))
        self.spawn(self._read_loop(self.server_reader, self.down, "down"))
        self.spawn(self._write_loop(self.down, self.client_writer, "down"))

    async def _wait_forwarding(self) -> None:
        while True:
            if self.held:
                await asyncio.Future()  # forever: only reset() (release, cut, quit) ends a hold
            if self.proxy.mode != "blackhole":
                return
            await self.proxy.unblackholed.wait()

    async def _read_loop(self, reader: asyncio.StreamReader, queue: asyncio.Queue, direction: str) -> None:
        proxy = self.proxy
        failed = False
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if direction == "up":
                    segments = self.pg.feed(data)
                else:
                    if self.pg.awaiting_reply:
                        self.pg.server_bytes(data)
                    if self.down_stopped:
                        self._saw_answer(data)
                        proxy.bytes_dropped += len(data)
                        continue
                    segments = [(data, None)]
                deliver_at = proxy.loop.time() + proxy.delay if proxy.mode == "delay" else 0.0
                for segment, action in segments:
                    if action == COMMIT:
                        proxy.commits_seen += 1
                    if self.silenced():
                        proxy.bytes_dropped += len(segment)
                        continue
                    if action == COMMIT:
                        wrote = self.pg.commit_wrote.popleft() if self.pg.commit_wrote else False
                        action = proxy.take_fault(wrote)
                    await queue.put((deliver_at, segment, action))
        except (OSError, EOFError):
            failed = True
        if self.dead:
            return
        if direction == "down" and self.down_stopped:
            if self.answered is not None:
                self.answered.set()  # the server hung up: it will not answer any more
            return
        if failed:
            if self.silenced():  # the reset is a packet like any other: it is dropped, for now
                self.broken = True
                await self._wait_forwarding()
            self.reset()
            return
        await queue.put(_EOF)

    def _saw_answer(self, data: bytes) -> None:
        buf = self.answer_tail + data
        if READY_FOR_QUERY in buf and self.answered is not None:
            self.answered.set()
        self.answer_tail = buf[-(len(READY_FOR_QUERY) - 1):]

    async def _write_loop(self, queue: asyncio.Queue, writer: asyncio.StreamWriter, direction: str) -> None:
        proxy = self.proxy
        loop = proxy.loop
        try:
            while True:
                item = await queue.get()
                if item is _EOF:
                    await self._wait_forwarding()
                    if self.broken:
                        self.reset()
                        return
                    if writer.can_write_eof():
                        writer.write_eof()
                    self._direction_done()
                    return
                deliver_at, data, action = item
                if deliver_at:
                    wait = deliver_at - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if self.silenced() or (direction == "down" and self.down_stopped):
                    proxy.bytes_dropped += len(data)
                    continue
                if self.broken:
                    self.reset()
                    return
                if action is None:
                    writer.write(data)
                    if direction == "up":
                        proxy.bytes_up += len(data)
                    else:
                        proxy.bytes_down += len(data)
                    await writer.drain()
                else:
                    await self._commit_fault(action, writer, data)
                    if self.dead:
                        return
        except (OSError, RuntimeError):
            if not self.dead:
                self.reset()

    async def _commit_fault(self, kind: str, writer: asyncio.StreamWriter, commit: bytes) -> None:
        proxy = self.proxy
        proxy.faults_fired[kind] += 1
        if kind == "cut_after_commit":
            # Swallow the answer, but wait for it: then the server has really committed when the
            # client sees the reset, and a test reading the table right after sees the row.
            self.down_stopped = True
            self.answered = asyncio.Event()
            writer.write(commit)
            proxy.bytes_up += len(commit)
            await writer.drain()
            try:
                await asyncio.wait_for(self.answered.wait(), CUT_GRACE)
            except asyncio.TimeoutError:
                pass
            self.reset()
        elif kind == "drop_commit":
            proxy.bytes_dropped += len(commit)
            self.reset()
        elif kind == "hold_commit":
            proxy.bytes_dropped += len(commit)
            self.held = True
            proxy.held.add(self)

    def _direction_done(self) -> None:
        self.done += 1
        if self.done == 2:
            self.dead = True
            self.proxy.forget(self)
            for writer in (self.client_writer, self.server_writer):
                if writer is not None:
                    writer.close()

    def reset(self) -> None:
        """Resets both sides and stops every task of the connection (except the caller's, which
        returns right after)."""
        if self.dead:
            return
        self.dead = True
        _reset(self.client_writer)
        _reset(self.server_writer)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.proxy.forget(self)


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.loop = asyncio.get_running_loop()
        self.mode = "pass"
        self.delay = 0.0
        self.unblackholed = asyncio.Event()
        self.unblackholed.set()
        self.conns: set[Connection] = set()
        self.held: set[Connection] = set()
        self.armed: collections.deque[str] = collections.deque()
        self.armed_writes_only = False
        self.stopping = asyncio.Event()
        self.connections_total = 0
        self.connections_refused = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.bytes_dropped = 0
        self.commits_seen = 0
        self.faults_fired = {kind: 0 for kind in FAULT_KINDS}

    def forget(self, conn: Connection) -> None:
        self.conns.discard(conn)
        self.held.discard(conn)

    def take_fault(self, wrote: bool) -> Optional[str]:
        if not self.armed or (self.armed_writes_only and not wrote):
            return None
        return self.armed.popleft()

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        if self.mode == "refuse" or self.stopping.is_set():
            self.connections_refused += 1
            _reset(writer)
            return
        conn = Connection(self, reader, writer)
        self.conns.add(conn)
        try:
            await conn.run()
        except Exception as error:  # never let one connection take the proxy down
            print(f"fault_proxy: connection error: {error!r}", file=sys.stderr, flush=True)
            conn.reset()

    def set_mode(self, args: list[str]) -> str:
        if not args:
            raise ValueError("usage: mode pass|delay SECONDS|blackhole|refuse")
        name = args[0]
        if name == "delay":
            if len(args) != 2:
                raise ValueError("usage: mode delay SECONDS")
            delay = float(args[1])
            if not delay >= 0:
                raise ValueError(f"bad delay {args[1]!r}")
            self.delay = delay
        elif name in ("pass", "blackhole", "refuse"):
            if len(args) != 1:
                raise ValueError(f"mode {name} takes no argument")
        else:
            raise ValueError(f"unknown mode {name!r}")
        self.mode = name
        if name == "blackhole":
            self.unblackholed.clear()
        else:
            self.unblackholed.set()
        return f"mode {name}" + (f" {self.delay:g}" if name == "delay" else "")

    def cut(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            conn.reset()
        return len(conns)

    def release(self) -> int:
        held = list(self.held)
        for conn in held:
            conn.reset()
        return len(held)

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "delay": self.delay,
            "connections_total": self.connections_total,
            "connections_open": len(self.conns),
            "connections_refused": self.connections_refused,
            "connections_held": len(self.held),
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "bytes_dropped": self.bytes_dropped,
            "commits_seen": self.commits_seen,
            "armed": list(self.armed),
            "faults_fired": dict(self.faults_fired),
        }

    def command(self, line: str) -> str:
        """Runs one control command; the reply line without its newline."""
        words = line.split()
        if not words:
            raise ValueError("empty command")
        cmd, args = words[0].lower(), words[1:]
        if cmd == "mode":
            return "ok " + self.set_mode(args)
        if cmd == "cut":
            return f"ok {self.cut()}"
        if cmd == "arm":
            writes_only = len(args) == 3 and args[2] == "writes"
            if not 1 <= len(args) <= 3 or args[0] not in FAULT_KINDS or (len(args) == 3 and not writes_only):
                raise ValueError(f"usage: arm {'|'.join(FAULT_KINDS)} [COUNT] [writes]")
            count = int(args[1]) if len(args) >= 2 else 1
            if count < 1:
                raise ValueError(f"bad count {count}")
            self.armed.extend([args[0]] * count)
            self.armed_writes_only = writes_only
            return f"ok armed {args[0]} {count}" + (" writes" if writes_only else "")
        if cmd == "disarm":
            pending = len(self.armed)
            self.armed.clear()
            return f"ok {pending}"
        if cmd == "release":
            return f"ok {self.release()}"
        if cmd == "stats":
            return "ok " + json.dumps(self.stats(), separators=(",", ":"))
        if cmd == "ping":
            return "ok pong"
        if cmd == "quit":
            self.stopping.set()
            return "ok bye"
        raise ValueError(f"unknown command {cmd!r}")

    async def on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self.stopping.is_set():
                line = await reader.readline()
                if not line:
                    break
                try:
                    reply = self.command(line.decode("utf-8", "replace"))
                except (ValueError, OverflowError) as error:
                    reply = f"error {error}"
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def shutdown(self) -> None:
        """Resets every connection: the proxy's peers must notice it is gone."""
        for conn in list(self.conns):
            conn.reset()


async def _watch_parent(parent: int, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        if os.getppid() != parent:
            stopping.set()
            return
        try:
            await asyncio.wait_for(stopping.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def main_async(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    proxy = Proxy(host or "127.0.0.1", int(port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.stopping.set)
    listener = await asyncio.start_server(proxy.on_client, "127.0.0.1", args.listen_port,
                                          backlog=1024, limit=CHUNK * 2, reuse_address=True)
    control = await asyncio.start_server(proxy.on_control, "127.0.0.1", args.control_port, backlog=64)
    listen_port = listener.sockets[0].getsockname()[1]
    control_port = control.sockets[0].getsockname()[1]
    watcher = None
    if args.exit_with_parent:
        watcher = asyncio.ensure_future(_watch_parent(os.getppid(), proxy.stopping))
    print(f"LISTEN {listen_port} CONTROL {control_port}", flush=True)
    await proxy.stopping.wait()
    listener.close()
    control.close()
    proxy.shutdown()
    if watcher is not None:
        watcher.cancel()
    await asyncio.sleep(0)  # let the aborted transports close their sockets (RST) before exit


def _raise_fd_limit() -> None:
    """Hundreds of connections take two descriptors each: use the hard limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the parent process is gone (a killed test run leaks no proxy)")
    args = parser.parse_args()
    _raise_fd_limit()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
