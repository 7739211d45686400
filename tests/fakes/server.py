"""Serving a fake on a free loopback port in a background thread, over HTTP or HTTPS."""

from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server whose listen backlog survives a burst of connections."""

    daemon_threads = True
    request_queue_size = 256  # socketserver's 5 drops SYNs of a burst (1 s client retries)


def serve(
    handler: type[BaseHTTPRequestHandler],
    *,
    certificate: tuple[Path | str, Path | str] | None = None,
) -> tuple[LoopbackServer, threading.Thread]:
    """Start serving on 127.0.0.1 (port 0); with a (certificate, key) pair, over TLS."""
    server = LoopbackServer(("127.0.0.1", 0), handler)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        # Handshakes happen in each connection's own thread, not one by one in accept().
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return server, thread


def shut(server: ThreadingHTTPServer | None, thread: threading.Thread | None = None) -> None:
    """Stop serving and free the port (a server that never started is fine)."""
    if server is not None:
        server.shutdown()
        server.server_close()
    if thread is not None:
        thread.join(timeout=5)


@dataclass
class Injected:
    """An answer a fake gives instead of the real one, `times` times (429s with Retry-After)."""

    method: str
    pattern: str
    status: int
    times: int
    retry_after: int | None

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def take_injected(
    rules: list[Injected], method: str, path: str, *, flags: int = 0
) -> Injected | None:
    """The first rule still in force for this request, used up once; None when there is none."""
    for rule in rules:
        if rule.times > 0 and rule.method == method and re.search(rule.pattern, path, flags):
            rule.times -= 1
            return rule
    return None
