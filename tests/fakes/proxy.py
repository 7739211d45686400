"""A round-robin HTTP proxy on 127.0.0.1: several `shipyard serve` replicas behind one address."""

from __future__ import annotations

import http.client
import itertools
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import serve, shut

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RoundRobin:
    """Each request goes to the next live backend; a backend that refuses is skipped."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = list(backends)
        self.sent: list[int] = []  # the backend port of every request, in order
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> RoundRobin:
        self._server, self._thread = serve(_Handler)
        self._server.proxy = self
        return self

    def stop(self) -> None:
        shut(self._server, self._thread)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        for _ in range(len(self.backends)):
            with self._lock:
                port = self.backends[next(self._turn) % len(self.backends)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request(method, path, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            except ConnectionRefusedError:
                continue  # a replica that is down: the next one answers
            finally:
                conn.close()
            with self._lock:
                self.sent.append(port)
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
            return answer.status, kept, data
        return 502, {"Content-Type": "text/plain"}, b"no replica answered"


class _Handler(BaseHTTPRequestHandler):
    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        proxy: RoundRobin = self.server.proxy  # type: ignore[attr-defined]
        status, reply_headers, data = proxy.forward(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass
