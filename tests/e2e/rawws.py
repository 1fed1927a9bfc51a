"""A WebSocket client at the frame level, on a plain socket: for tests that need to misbehave in ways
a well-behaved library will not (stop reading with a tiny receive window, read slowly, send
malformed frames) and to see exactly what the server sends (close codes, frame boundaries).

Only what RFC 6455 needs for a client: the opening handshake, masked frames out, unmasked frames
in, close frames parsed. `encode_frame` writes any frame, also a broken one (reserved bits or
opcodes, no mask, a length that lies), for the protocol torture test (test_torture.py).
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from dataclasses import dataclass


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XORs `payload` with the 4-byte masking key (RFC 6455 5.3), at C speed."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0,
                 length: int | None = None) -> bytes:
    """One client frame as bytes. `rsv` is the three reserved bits (1 = RSV3 ... 4 = RSV1); `length`
    announces another payload length than the payload's own (a frame whose payload never comes)."""
    first = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    announced = len(payload) if length is None else length
    bit = 0x80 if mask else 0
    if announced < 126:
        header = struct.pack("!BB", first, bit | announced)
    elif announced < 65536:
        header = struct.pack("!BBH", first, bit | 126, announced)
    else:
        header = struct.pack("!BBQ", first, bit | 127, announced)
    if mask:
        key = os.urandom(4)
        return header + key + mask_bytes(payload, key)
    return header + payload


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if self.opcode == 8 and len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode(errors="replace") if self.opcode == 8 else ""

    def json(self) -> dict:
        return json.loads(self.payload)


class RawWsClient:
    """One connection. `rcvbuf` (bytes) shrinks the socket's receive buffer before connecting, so a
    client that stops reading closes its TCP window quickly (a zero-window reader)."""

    def __init__(self, host: str, port: int, path: str, *, rcvbuf: int | None = None, timeout: float = 5.0,
                 source: str | None = None) -> None:
        self.host, self.port, self.path = host, port, path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.buffer = b""
        self._at = 0  # read position in `buffer`: the bytes before it are consumed frames
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}

    def connect(self, extra_headers: dict[str, str] | None = None, early: bytes = b"") -> int:
        """Sends the upgrade request and reads the response headers (only them: the frames that
        follow stay unread in the socket). Returns the HTTP status. `early`: bytes sent in the same
        write as the request (frames a client sends before it has the 101)."""
        self.sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.key = key
        headers = {"Host": f"{self.host}:{self.port}", "Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        headers.update(extra_headers or {})
        request = f"GET {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(request.encode() + early)
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(1)  # byte by byte: never read past the headers
            if not chunk:
                raise ConnectionError(f"the server closed the connection during the handshake: {self.buffer!r}")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        return self.status

    # ---- sending

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True,
                   rsv: int = 0, length: int | None = None) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv, length=length))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: several frames in one write, or a part of one."""
        self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.send_frame(1, text.encode())

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(8, struct.pack("!H", code) + reason.encode())

    # ---- receiving

    def _fill(self, n: int, deadline: float) -> None:
        """Reads until `n` bytes past the read position are buffered."""
        while len(self.buffer) - self._at < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the TCP connection")
            if self._at:
                self.buffer = self.buffer[self._at:]  # compacted only when more is read: O(n) overall
                self._at = 0
            self.buffer += chunk

    def recv_frame(self, timeout: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        at = self._at
        first, second = self.buffer[at], self.buffer[at + 1]
        length = second & 0x7F
        offset = 2
        if length == 126:
            self._fill(4, deadline)
            at = self._at
            length = struct.unpack("!H", self.buffer[at + 2:at + 4])[0]
            offset = 4
        elif length == 127:
            self._fill(10, deadline)
            at = self._at
            length = struct.unpack("!Q", self.buffer[at + 2:at + 10])[0]
            offset = 10
        if second & 0x80:
            raise AssertionError("a server must not mask its frames (RFC 6455 5.1)")
        if first & 0x70:
            raise AssertionError(f"a server frame with reserved bits set, no extension negotiated (RFC 6455 5.2): {first:#x}")
        self._fill(offset + length, deadline)
        at = self._at
        payload = self.buffer[at + offset:at + offset + length]
        self._at = at + offset + length
        return Frame(bool(first & 0x80), first & 0x0F, payload)

    def recv_until_close(self, timeout: float = 10.0) -> tuple[list[Frame], Frame | None]:
        """Frames until a close frame (returned apart) or the end of the TCP connection (None)."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        while True:
            try:
                frame = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            except (EOFError, ConnectionResetError):
                return frames, None
            if frame.opcode == 8:
                return frames, frame
            frames.append(frame)

    def end_of_connection(self, timeout: float = 10.0) -> tuple[bytes, str]:
        """After the server's close frame: (the bytes that still came, how the TCP connection
        ended: 'eof', 'reset' or 'timeout')."""
        extra = self.buffer[self._at:]
        self.buffer, self._at = b"", 0
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return extra, "timeout"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return extra, "timeout"
            except ConnectionResetError:
                return extra, "reset"
            if not chunk:
                return extra, "eof"
            extra += chunk

    def drain(self, timeout: float = 10.0) -> str:
        """Reads everything until the TCP connection ends: 'eof', 'reset' or 'timeout'."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "reset"
            if not chunk:
                return "eof"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawWsClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
