"""A test application that takes START_DELAY seconds before it answers /healthz.

With START_GATE set to a path, it also waits (up to two minutes) until that file exists, so a
test decides exactly when the start finishes instead of racing a fixed delay.
"""

import http.server
import os
import sys
import time

time.sleep(float(os.environ.get("START_DELAY", "3")))
if os.environ.get("START_GATE"):
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ["START_GATE"]) and time.monotonic() < deadline:
        time.sleep(0.05)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
