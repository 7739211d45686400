"""Shipyard sample game backend (release 1.0.0): a stdlib-only HTTP login service backed by SQLite."""

import argparse
import json
import os
import secrets
import signal
import sqlite3
import sys
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0.0"
MAX_BODY = 64 * 1024
SECRET_MARKERS = ("PASSWORD", "SECRET", "KEY", "TOKEN")


def _int_env(name, default):
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        return default


MAX_PLAYERS = _int_env("GAME_MAX_PLAYERS", 100000)
MOTD = os.environ.get("GAME_MOTD", "")
DATA_DIR = os.environ.get("DATA_DIR") or os.getcwd()
DB_PATH = os.path.join(DATA_DIR, "players.db")


def public_parameters():
    """Non-secret GAME_* settings, reported by /healthz."""
    params = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("GAME_") and not any(m in name.upper() for m in SECRET_MARKERS)
    }
    params["GAME_MAX_PLAYERS"] = MAX_PLAYERS
    return dict(sorted(params.items()))


SCHEMA = """
CREATE TABLE IF NOT EXISTS players (
    player_id  TEXT PRIMARY KEY,
    device_id  TEXT UNIQUE NOT NULL,
    created_at TEXT NOT NULL,
    last_login TEXT
);
"""

_local = threading.local()


def db():
    """One sqlite3 connection per thread; WAL so several instances can share the file."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _local.conn = conn
    return conn


def init_db():
    os.makedirs(DATA_DIR, exist_ok=True)
    db().executescript(SCHEMA)


def now():
    return datetime.now(timezone.utc).isoformat()


def make_ticket(player_id, device_id):
    return secrets.token_hex(16)


def record_login(conn, player_id, device_id):
    pass


class ServerFull(Exception):
    pass


def login(device_id):
    """Return (player_id, newly_created, ticket) for a device, creating the player if needed."""
    conn = db()
    row = conn.execute("SELECT player_id FROM players WHERE device_id = ?", (device_id,)).fetchone()
    created = False
    if row is None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT player_id FROM players WHERE device_id = ?", (device_id,)
            ).fetchone()
            if row is None:
                (count,) = conn.execute("SELECT COUNT(*) FROM players").fetchone()
                if count >= MAX_PLAYERS:
                    raise ServerFull()
                player_id = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO players (player_id, device_id, created_at, last_login) VALUES (?, ?, ?, ?)",
                    (player_id, device_id, now(), now()),
                )
                created = True
            else:
                player_id = row[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    else:
        player_id = row[0]
        conn.execute("UPDATE players SET last_login = ? WHERE player_id = ?", (now(), player_id))
    ticket = make_ticket(player_id, device_id)
    record_login(conn, player_id, device_id)
    return player_id, created, ticket


class Handler(BaseHTTPRequestHandler):
    server_version = "ShipyardGame/" + VERSION
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # silence per-request access log
        pass

    def send_json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self.send_json(200, {
                "status": "ok",
                "version": VERSION,
                "environment": os.environ.get("SHIPYARD_ENV", ""),
                "parameters": public_parameters(),
            })
        elif path == "/version":
            self.send_json(200, {"version": VERSION})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self.send_json(400, {"error": "invalid Content-Length"})
            return
        raw = self.rfile.read(length) if length else b""
        if path != "/Login/LoginDeviceId":
            self.send_json(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": "body must be JSON"})
            return
        device_id = body.get("DeviceId") if isinstance(body, dict) else None
        if not isinstance(device_id, str) or not device_id.strip() or len(device_id) > 256:
            self.send_json(400, {"error": "DeviceId must be a non-empty string"})
            return
        try:
            player_id, created, ticket = login(device_id)
        except ServerFull:
            self.send_json(503, {"error": "server full"})
            return
        except sqlite3.Error as exc:
            self.send_json(500, {"error": "database error: %s" % exc})
            return
        resp = {"PlayerId": player_id, "NewlyCreated": created, "SessionTicket": ticket}
        if MOTD:
            resp["Motd"] = MOTD
        self.send_json(200, resp)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default listen backlog of 5 drops SYNs under load


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=_int_env("PORT", 8080))
    args = parser.parse_args(argv)

    init_db()
    httpd = Server((args.host, args.port), Handler)
    httpd.daemon_threads = True

    def on_sigterm(signum, frame):
        # shutdown() blocks until serve_forever() returns, so run it off the main thread
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    host, port = httpd.server_address[:2]
    print("listening on http://%s:%d" % (host, port), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
