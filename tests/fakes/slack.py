"""A fake Slack Web API server on 127.0.0.1 that records calls and keeps messages and views."""

from __future__ import annotations

import contextlib
import copy
import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.fakes.server import serve, shut
from tests.fakes.slack_oidc import FakeSlackOpenID

DEFAULT_TOKEN = "xoxb-test-token"
BOT = {"user_id": "UBOT", "bot_id": "BBOT", "team_id": "T0001", "team": "Test", "app_id": "A0001"}

# Form fields the SDK (or Bolt) may send as JSON text; recorded decoded.
JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "user_auth_blocks", "files", "unfurls", "chunks"}
)

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Call:
    """One request the fake received. Header names are lower-case."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    limited: bool = False
    status: int = 200
    path: str = ""


@dataclass
class _Injected:
    status: int
    retry_after: int | None = None


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    home_views: dict[str, str] = field(default_factory=dict)
    injected: dict[str, deque[_Injected]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeSlack:
    """Slack's Web API, response_url and file upload endpoints, answered from memory.

    Point ``slack_sdk.WebClient(token=..., base_url=fake.base_url)`` at it. ``usergroups`` maps a
    usergroup id to its member ids; ``users`` maps a user id to fields merged into users.info.
    """

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        # None grants every scope; a set (e.g. the manifest's, see `grant_manifest_scopes`)
        # makes methods outside it answer `missing_scope`, as Slack does.
        self.scopes: set[str] | None = None
        # Public channels the bot was never added to (it may post only with chat:write.public)
        # and private channels with their members: the bot posts there only as a member.
        self.outside: set[str] = set()
        self.private: dict[str, set[str]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._stalled: set[str] = set()
        self._slow_paths: dict[str, float] = {}
        self._unstall = threading.Event()
        self.users: dict[str, dict[str, Any]] = {}
        self._state = _State()
        self._cond = threading.Condition()
        self._seq = itertools.count(1)
        self._last_micros = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.oidc: FakeSlackOpenID | None = None

    def sign_in(self, oidc: FakeSlackOpenID) -> FakeSlackOpenID:
        """Answer Sign in with Slack (authorize, openid.connect.token, .userInfo) with `oidc`."""
        self.oidc = oidc
        return oidc

    @property
    def authorize_url(self) -> str:
        return f"{self.root_url}openid/connect/authorize"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            raise RuntimeError("FakeSlack already started")
        self._server, self._thread = serve(_Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        self.unstall()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        shut(server, thread)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}api/"

    def response_url(self, name: str = "default") -> str:
        """A URL to put in a payload's ``response_url``; posts to it record as "response_url"."""
        return f"{self.root_url}response/{name}"

    # -- assertions ----------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._state.calls if method is None or c.method == method]

    def clear(self) -> None:
        """Forget recorded calls (messages, views and injected failures are kept)."""
        with self._cond:
            self._state.calls.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._state.calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.params) for c in self._state.calls]
                    raise AssertionError(
                        f"expected {count} {method} call(s) within {timeout}s, got {len(found)}; "
                        f"calls seen: {seen!r}"
                    )
                self._cond.wait(left)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """The latest state of a posted message (text, blocks, ts, thread_ts, reactions...)."""
        with self._cond:
            found = self._state.messages.get((channel, ts))
            if found is None:
                known = sorted(self._state.messages)
                raise AssertionError(f"no message {ts} in {channel}; messages: {known!r}")
            return copy.deepcopy(found)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            found = [m for (ch, _), m in self._state.messages.items() if channel in (None, ch)]
            return copy.deepcopy(found)

    def view(self, view_id: str) -> dict[str, Any]:
        with self._cond:
            if view_id not in self._state.views:
                raise AssertionError(f"no view {view_id}; views: {sorted(self._state.views)!r}")
            return copy.deepcopy(self._state.views[view_id])

    def modals(self) -> list[dict[str, Any]]:
        """The modals opened (as Slack stores them, with id and hash), oldest first."""
        with self._cond:
            return [copy.deepcopy(v) for v in self._state.views.values() if v["type"] == "modal"]

    def home_view(self, user_id: str) -> dict[str, Any]:
        with self._cond:
            view_id = self._state.home_views.get(user_id)
        if view_id is None:
            raise AssertionError(f"no home tab published for {user_id}")
        return self.view(view_id)

    def grant_manifest_scopes(self, manifest: Path) -> None:
        """The bot token gets exactly the bot scopes manifest.yml asks for."""
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        self.scopes = set(data["oauth_config"]["scopes"]["bot"])

    # -- failure injection ---------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``Retry-After``."""
        self._inject(method, times, _Injected(429, retry_after))

    def fail(self, method: str, times: int = 1, status: int = 500) -> None:
        """The next ``times`` calls of ``method`` answer HTTP ``status`` (5xx)."""
        self._inject(method, times, _Injected(status))

    def slow_response_url(self, name: str, seconds: float) -> None:
        """Posts to `response_url(name)` take `seconds` to answer (a slow follow-up)."""
        self._slow_paths[f"/response/{name}"] = seconds

    def stall(self, method: str) -> None:
        """Calls of `method` take effect, but the answer never comes (until `unstall`): the
        caller looks dead between Slack acting and the caller learning of it."""
        self._unstall.clear()
        self._stalled.add(method)

    def unstall(self) -> None:
        self._stalled.clear()
        self._unstall.set()

    def _inject(self, method: str, times: int, what: _Injected) -> None:
        with self._cond:
            self._state.injected.setdefault(method, deque()).extend([what] * times)

    # -- request handling (server threads) -----------------------------------------------------

    def _handle(
        self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        url = urlsplit(raw_path)
        params: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        if not path.startswith("/upload/"):  # an upload's body is the file's bytes, not a form
            params.update(_parse_body(headers.get("content-type", ""), body))
        if self.oidc is not None and self.oidc.serves(path):
            reply = self.oidc.handle(http_method, raw_path, headers, body)
            with self._cond:
                self._state.calls.append(
                    Call(path.rsplit("/", 1)[-1], params, headers, time.time(), status=reply[0])
                )
            return reply
        if path.startswith("/api/") and http_method in ("GET", "POST"):
            method = path[len("/api/") :]
        elif path.startswith("/response/") and http_method == "POST":
            method = "response_url"
        elif path.startswith("/upload/") and http_method == "POST":
            method = "file_upload"
            params = {"file_id": path[len("/upload/") :], "content": body}
        else:
            return _json(404, {"ok": False, "error": "not_found"})

        with self._cond:
            queue = self._state.injected.get(method)
            injected = queue.popleft() if queue else None
            if injected is not None:
                reply = _injected_reply(injected)
            elif method == "response_url":
                reply = _json(200, {"ok": True})
            elif method == "file_upload":
                reply = self._receive_upload(params["file_id"], body)
            elif not self._authorized(headers, params):
                reply = _json(200, {"ok": False, "error": "invalid_auth"})
            elif (needed := self._missing_scope(method, params)) is not None:
                reply = _json(200, {"ok": False, "error": "missing_scope", "needed": needed})
            elif (problem := block_kit_problem(method, params)) is not None:
                reply = _json(
                    200,
                    {"ok": False, "error": "invalid_blocks", "errors": [problem]},
                )
            else:
                reply = _json(200, self._answer(method, params))
            self._state.calls.append(
                Call(
                    method=method,
                    params=params,
                    headers=headers,
                    at=time.time(),
                    limited=injected is not None and injected.status == 429,
                    status=reply[0],
                    path=path,
                )
            )
            self._cond.notify_all()
            stalled = method in self._stalled
            slow = self._slow_paths.get(path, 0.0)
        if slow:
            time.sleep(slow)
        if stalled:
            self._unstall.wait(30)
        return reply

    def _authorized(self, headers: dict[str, str], params: dict[str, Any]) -> bool:
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("token")
        return token == self.token

    def _missing_scope(self, method: str, p: dict[str, Any]) -> str | None:
        if self.scopes is None:
            return None
        needed = _SCOPES.get(method)
        if method in ("conversations.history", "conversations.replies"):
            kind = str(p.get("channel", ""))[:1]
            private = p.get("channel") in self.private
            needed = {"D": "im:history", "G": "groups:history"}.get(
                kind, "groups:history" if private else "channels:history"
            )
        return needed if needed is not None and needed not in self.scopes else None

    def _closed(self, channel: str) -> str | None:
        """Why the bot may not post in `channel` (None: it may)."""
        if channel in self.private:
            return None if BOT["user_id"] in self.private[channel] else "channel_not_found"
        if channel.startswith("D") and channel[1:2] not in ("U", "W"):
            return "channel_not_found"  # a DM between people: the bot is not part of it
        if channel in self.outside and "chat:write.public" not in (self.scopes or set()):
            return "not_in_channel"
        return None

    def _history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = _channel_id(p.get("channel"))
        if self._closed(channel):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(p.get("oldest") or 0)
        found = [
            m
            for (ch, ts), m in self._state.messages.items()
            if ch == channel and float(ts) > oldest and m.get("thread_ts") in (None, ts)
        ]
        return {"ok": True, "messages": self._listed(found, p), "has_more": False}

    def _replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, parent = _channel_id(p.get("channel")), str(p.get("ts", ""))
        if (channel, parent) not in self._state.messages:
            return {"ok": False, "error": "thread_not_found"}
        found = [
            m
            for (ch, ts), m in self._state.messages.items()
            if ch == channel and (ts == parent or m.get("thread_ts") == parent)
        ]
        return {"ok": True, "messages": self._listed(found, p), "has_more": False}

    def _listed(self, found: list[dict[str, Any]], p: dict[str, Any]) -> list[dict[str, Any]]:
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        listed = []
        for stored in sorted(found, key=lambda m: float(m["ts"]), reverse=True):
            message = {k: copy.deepcopy(v) for k, v in stored.items() if k != "channel"}
            if not with_metadata:
                message.pop("metadata", None)
            listed.append(message)
        return listed

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        handler = _METHODS.get(method)
        return handler(self, p) if handler else {"ok": True}

    # Everything below runs with self._cond held.

    def _next_ts(self) -> str:
        """Like Slack's: the epoch time of the message, unique in the workspace."""
        self._last_micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        next(self._seq)
        return f"{self._last_micros // 1_000_000}.{self._last_micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq):08d}"

    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://test.slack.com/",
            "team": BOT["team"],
            "user": "shipyard",
            "team_id": BOT["team_id"],
            "user_id": BOT["user_id"],
            "bot_id": BOT["bot_id"],
            "is_enterprise_install": False,
        }

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = _channel_id(p.get("channel"))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if (closed := self._closed(channel)) is not None:
            return {"ok": False, "error": closed}
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT["user_id"],
            "bot_id": BOT["bot_id"],
            "app_id": BOT["app_id"],
            "team": BOT["team_id"],
            "text": p.get("text", ""),
            "blocks": p.get("blocks") or [],
            "ts": ts,
        }
        for key in ("thread_ts", "attachments", "metadata"):
            if p.get(key):
                message[key] = p[key]
        self._state.messages[(channel, ts)] = {"channel": channel, **message}
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _channel_id(p.get("channel")), p.get("ts", "")
        stored = self._state.messages.get((channel, ts))
        if stored is None:
            return {"ok": False, "error": "message_not_found"}
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in p:
                stored[key] = p[key]
        stored["edited"] = {"user": BOT["user_id"], "ts": self._next_ts()}
        message = {k: v for k, v in stored.items() if k != "channel"}
        text = stored["text"]
        return {"ok": True, "channel": channel, "ts": ts, "text": text, "message": message}

    def _delete(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _channel_id(p.get("channel")), p.get("ts", "")
        if self._state.messages.pop((channel, ts), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _permalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel", ""), p.get("message_ts", "")
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://test.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _store_view(self, view: Any, view_id: str, previous: str | None = None) -> dict[str, Any]:
        view = dict(view) if isinstance(view, dict) else {}
        stored = {
            "id": view_id,
            "team_id": BOT["team_id"],
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._seq):08d}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": view_id,
            "previous_view_id": previous,
            "app_id": BOT["app_id"],
            "bot_id": BOT["bot_id"],
        }
        for key in ("title", "submit", "close"):
            if key in view:
                stored[key] = view[key]
        if previous is not None:
            stored["root_view_id"] = self._state.views[previous]["root_view_id"]
        self._state.views[view_id] = stored
        return stored

    def _views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id") and not p.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(p.get("view"), dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": self._store_view(p["view"], self._next_id("V"))}

    def _views_push(self, p: dict[str, Any]) -> dict[str, Any]:
        modals = [v["id"] for v in self._state.views.values() if v["type"] == "modal"]
        answer = self._views_open(p)
        if answer["ok"] and modals:
            # Stacked on the most recent modal, as Slack stacks on the open one.
            answer["view"] = self._store_view(p["view"], answer["view"]["id"], modals[-1])
        return answer

    def _views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view_id = p.get("view_id")
        if not view_id and p.get("external_id"):
            matches = [
                v["id"] for v in self._state.views.values() if v["external_id"] == p["external_id"]
            ]
            view_id = matches[-1] if matches else None
        if not view_id and not p.get("external_id"):
            return {"ok": False, "error": "invalid_arguments"}
        current = self._state.views.get(view_id or "")
        if current is None:
            return {"ok": False, "error": "not_found"}
        if p.get("hash") and p["hash"] != current["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        if not isinstance(p.get("view"), dict):
            return {"ok": False, "error": "invalid_arguments"}
        stored = self._store_view(p["view"], current["id"], current["previous_view_id"])
        stored["root_view_id"] = current["root_view_id"]
        return {"ok": True, "view": stored}

    def _views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user_id")
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(p.get("view"), dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = self._state.home_views.get(user) or self._next_id("V")
        self._state.home_views[user] = view_id
        return {"ok": True, "view": self._store_view(p["view"], view_id)}

    def _conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("channel"):
            return {"ok": True, "channel": {"id": p["channel"]}}
        users = [u for u in str(p.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        channel = "D" + users[0] if len(users) == 1 else "G" + "".join(sorted(users))
        return {"ok": True, "channel": {"id": channel}}

    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": BOT["team_id"],
            "name": user_id.lower(),
            "real_name": f"User {user_id}",
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_bot": False,
            "deleted": False,
        }
        user.update(self.users.get(user_id, {}))
        user.setdefault("profile", {"real_name": user["real_name"], "display_name": user["name"]})
        return {"ok": True, "user": user}

    def _usergroup_users(self, p: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(p.get("usergroup", ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("name")
        if not name:
            return {"ok": False, "error": "invalid_name"}
        stored = self._state.messages.get((_channel_id(p.get("channel")), p.get("timestamp", "")))
        if stored is not None:
            reactions = stored.setdefault("reactions", [])
            if name in reactions:
                return {"ok": False, "error": "already_reacted"}
            reactions.append(name)
        return {"ok": True}

    def _files_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        upload = p.get("file")
        name = upload.get("filename", "file") if isinstance(upload, dict) else p.get("filename")
        file = {"id": self._next_id("F"), "name": name, "title": p.get("title", name)}
        return {"ok": True, "file": file}

    def _get_upload_url(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        self._state.uploads[file_id] = {
            "id": file_id,
            "name": p["filename"],
            "length": int(p["length"]),
            "alt_txt": p.get("alt_txt"),
            "content": None,
        }
        return {"ok": True, "upload_url": f"{self.root_url}upload/{file_id}", "file_id": file_id}

    def _receive_upload(self, file_id: str, body: bytes) -> Reply:
        """The upload URL: the bytes must be as long as announced to files.getUploadURLExternal."""
        upload = self._state.uploads.get(file_id)
        if upload is None:
            return 404, {"Content-Type": "text/plain"}, b"unknown upload"
        if len(body) != upload["length"]:
            return 400, {"Content-Type": "text/plain"}, b"length does not match"
        upload["content"] = body
        return _ok_upload(body)

    def _complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        """Only uploaded files can be completed; shared to a channel, they make a message there."""
        files = p.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        found = [self._state.uploads.get(str(f.get("id"))) for f in files]
        if any(u is None or u["content"] is None for u in found):
            return {"ok": False, "error": "file_not_found"}
        shared = []
        for upload, asked in zip(found, files, strict=True):
            assert upload is not None
            upload["title"] = asked.get("title") or upload["name"]
            shared.append({"id": upload["id"], "name": upload["name"], "title": upload["title"]})
        channel = _channel_id(p.get("channel_id") or p.get("channels"))
        if channel:
            ts = self._next_ts()
            message: dict[str, Any] = {
                "type": "message",
                "user": BOT["user_id"],
                "text": p.get("initial_comment", ""),
                "files": shared,
                "ts": ts,
            }
            if p.get("thread_ts"):
                message["thread_ts"] = p["thread_ts"]
            self._state.messages[(channel, ts)] = {"channel": channel, **message}
        return {"ok": True, "files": shared}

    def uploaded(self, file_id: str) -> dict[str, Any]:
        """What was uploaded for a file id (its name, title, bytes)."""
        with self._cond:
            return copy.deepcopy(self._state.uploads[file_id])


# Block Kit limits Slack enforces (api.slack.com/reference/block-kit): a message carries at most
# 50 blocks, a modal or Home tab 100; a section's text at most 3,000 characters, a header's
# 150, a button's 75; a message's top-level text is cut at 40,000.
_BLOCKS_PER_SURFACE = {"message": 50, "view": 100}
_TEXT_LIMITS = {"section": 3000, "header": 150, "context": 3000}
_MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral", "chat.scheduleMessage"}
_VIEW_METHODS = {"views.open", "views.update", "views.push", "views.publish"}


def block_kit_problem(method: str, params: dict[str, Any]) -> str | None:
    """Why Slack would refuse these blocks (as `invalid_blocks`), or None when they are fine."""
    if method in _MESSAGE_METHODS:
        surface, blocks = "message", _decoded(params.get("blocks"))
        if len(str(params.get("text") or "")) > 40_000:
            return "text must be at most 40000 characters"
    elif method in _VIEW_METHODS:
        view = _decoded(params.get("view"))
        surface, blocks = "view", view.get("blocks") if isinstance(view, dict) else None
    else:
        return None
    if not blocks:
        return None
    if not isinstance(blocks, list):
        return "blocks must be an array"
    if len(blocks) > _BLOCKS_PER_SURFACE[surface]:
        return f"no more than {_BLOCKS_PER_SURFACE[surface]} items allowed [json-pointer:/blocks]"
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        texts: list[Any] = []
        if kind in ("section", "header"):
            texts.append(block.get("text"))
            texts.extend(block.get("fields") or [])
        elif kind == "context":
            elements = block.get("elements") or []
            if len(elements) > 10:
                return f"no more than 10 items allowed [json-pointer:/blocks/{index}/elements]"
            texts.extend(elements)
        elif kind == "actions":
            for element in block.get("elements") or []:
                label = (element.get("text") or {}).get("text", "")
                if element.get("type") == "button" and len(label) > 75:
                    return f"must be less than 76 characters [json-pointer:/blocks/{index}]"
        limit = _TEXT_LIMITS.get(str(kind), 3000)
        for text in texts:
            body = text.get("text", "") if isinstance(text, dict) else ""
            if len(body) > limit:
                return (
                    f"must be less than {limit + 1} characters [json-pointer:/blocks/{index}/text]"
                )
    return None


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


_METHODS = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.delete": FakeSlack._delete,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "chat.getPermalink": FakeSlack._permalink,
    "views.open": FakeSlack._views_open,
    "views.push": FakeSlack._views_push,
    "views.update": FakeSlack._views_update,
    "views.publish": FakeSlack._views_publish,
    "conversations.open": FakeSlack._conversations_open,
    "conversations.history": FakeSlack._history,
    "conversations.replies": FakeSlack._replies,
    "users.info": FakeSlack._users_info,
    "usergroups.users.list": FakeSlack._usergroup_users,
    "reactions.add": FakeSlack._reactions_add,
    "files.upload": FakeSlack._files_upload,
    "files.getUploadURLExternal": FakeSlack._get_upload_url,
    "files.completeUploadExternal": FakeSlack._complete_upload,
}


# The scope each method needs (conversations.history/replies: by the kind of channel).
_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "reactions.add": "reactions:write",
    "files.upload": "files:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeSlack/1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        status, reply_headers, payload = fake._handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _json(status: int, body: dict[str, Any], **headers: str) -> Reply:
    data = json.dumps(body).encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **headers}, data


def _injected_reply(injected: _Injected) -> Reply:
    if injected.status == 429:
        body = {"ok": False, "error": "ratelimited"}
        return _json(429, body, **{"Retry-After": str(injected.retry_after)})
    error = "service_unavailable" if injected.status == 503 else "internal_error"
    return _json(injected.status, {"ok": False, "error": error})


def _ok_upload(body: bytes) -> Reply:
    return 200, {"Content-Type": "text/plain; charset=utf-8"}, f"OK - {len(body)}".encode()


def _channel_id(channel: Any) -> str:
    """A user id as a channel means the bot's DM with that user, as conversations.open says."""
    text = str(channel or "")
    return "D" + text if text[:1] in ("U", "W") else text


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        decoded = json.loads(body)
        params = decoded if isinstance(decoded, dict) else {"_body": decoded}
    elif kind == "multipart/form-data":
        params = _parse_multipart(content_type, body)
    else:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    for key in JSON_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    params: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined,unused-ignore]
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            params[name] = {"filename": filename, "content": content}
        else:
            params[name] = content.decode()
    return params
