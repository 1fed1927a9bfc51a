"""A WebSocket client at the frame level, on a plain socket: for tests that need to misbehave in ways
a well-behaved library will not (stop reading with a tiny receive window, read slowly, send
malformed frames) and to see exactly what the server sends (close codes, frame boundaries).

Only what RFC 6455 needs for a client: the opening handshake, masked frames out, unmasked frames
in, close frames parsed.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from dataclasses import dataclass


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
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}

    def connect(self, extra_headers: dict[str, str] | None = None) -> int:
        """Sends the upgrade request and reads the response headers (only them: the frames that
        follow stay unread in the socket). Returns the HTTP status."""
        self.sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        headers = {"Host": f"{self.host}:{self.port}", "Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        headers.update(extra_headers or {})
        request = f"GET {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(request.encode())
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
                   rsv: int = 0) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", first, (0x80 if mask else 0) | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
        else:
            header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            header += key
        self.sock.sendall(header + payload)

    def send_text(self, text: str) -> None:
        self.send_frame(1, text.encode())

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(8, struct.pack("!H", code) + reason.encode())

    # ---- receiving

    def _fill(self, n: int, deadline: float) -> None:
        while len(self.buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the TCP connection")
            self.buffer += chunk

    def recv_frame(self, timeout: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        first, second = self.buffer[0], self.buffer[1]
        length = second & 0x7F
        offset = 2
        if length == 126:
            self._fill(4, deadline)
            length = struct.unpack("!H", self.buffer[2:4])[0]
            offset = 4
        elif length == 127:
            self._fill(10, deadline)
            length = struct.unpack("!Q", self.buffer[2:10])[0]
            offset = 10
        if second & 0x80:
            raise AssertionError("a server must not mask its frames (RFC 6455 5.1)")
        self._fill(offset + length, deadline)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
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
