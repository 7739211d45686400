"""A test application that prints its secrets on start (a banner with its connection string)."""

import http.server
import os
import sys

print(f"starting with GAME_DB_PASSWORD={os.environ.get('GAME_DB_PASSWORD')}", flush=True)
print(f"connecting to postgres://game:{os.environ.get('GAME_DB_PASSWORD')}@db/game", flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
