"""A GOV.UK Notify-compatible stub server for the chaos tests and the contacts benchmark.

Run as its own process, with its own storage (a SQLite file), so that a send recorded here and
our status change in PostgreSQL are never one transaction:

    python tests/stubs/notify_stub.py --port P --db PATH [--callback-url URL --callback-token T]

It answers what notifications-python-client calls:

- POST /v2/notifications/sms | /email | /letter: 201 with id, reference, content, template, uri
- GET /v2/notifications?reference=...: {"notifications": [...], "links": {...}}
- GET /v2/notifications/{id}

Authentication: the client's JWT bearer must be present; it is not verified.

Control (no authentication; bind it to localhost):

- POST /_control {"delay_seconds": x, "fail": "none|permanent|temporary|timeout|auth|template",
  "times": n | null, "timeout_seconds": s, "receipts": bool, "receipt_status": "delivered",
  "lookup_fail": bool | "auth", "fail_types": ["sms", ...] | null}. `fail` applies to the
  next `times` sends (null: every send until told otherwise). `timeout` records the
  notification (the provider has it) and then holds the answer for `timeout_seconds` (longer
  than the client's timeout), as a provider whose answer was lost. `permanent` answers 400
  and `temporary` 500, recording nothing; `auth` answers 403 (a bad API key) and `template`
  400 "Template not found" (our settings wrong); with `fail_types` only sends of those types
  fail. `lookup_fail` makes the lookup by reference
  answer 500 (`auth`: 403). Answers the whole control state.
- GET /_control: the control state.
- GET /_sends: every notification the stub took, oldest first, with its reference
  ({"sends": [{"id", "reference", "type", "template_id", "status", "received_at"}]}).
- GET /_stats: {"sends": n, "references": distinct references, "duplicates": {ref: count},
  "requests": {outcome: count}, "receipts_posted": n}.
- GET /_requests: every send request with its outcome (including the refused ones).
- POST /_reset: forget every send and request; control back to the defaults.

With --callback-url, a delivery receipt (Notify's callback body, status `delivered` unless
told otherwise) is posted for each notification taken, from a background thread, with
`Authorization: Bearer <callback token>`.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import queue
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_CONTROL: dict[str, Any] = {
    "delay_seconds": 0.0,
    "fail": "none",
    "times": None,
    "timeout_seconds": 15.0,
    "receipts": True,
    "receipt_status": "delivered",
    "lookup_fail": False,
    "fail_types": None,
}
FAILURES = ("none", "permanent", "temporary", "timeout", "auth", "template")
TYPES = {"sms": "sms", "email": "email", "letter": "letter"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    reference TEXT,
    type TEXT NOT NULL,
    template_id TEXT NOT NULL,
    recipient TEXT,
    subject TEXT,
    body TEXT,
    status TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_notifications_reference ON notifications (reference);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reference TEXT,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """The stub's own storage: one SQLite connection behind a lock (each write commits)."""

    def __init__(self, path: str):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def add(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO notifications (id, reference, type, template_id, recipient, "
                "subject, body, status, received_at) VALUES (:id, :reference, :type, "
                ":template_id, :recipient, :subject, :body, :status, :received_at)",
                row,
            )

    def log(self, reference: str | None, kind: str, outcome: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO requests (reference, type, outcome, received_at) VALUES (?, ?, ?, ?)",
                (reference, kind, outcome, iso_now()),
            )

    def set_status(self, notification_id: str, status: str) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE notifications SET status = ? WHERE id = ?", (status, notification_id)
            )

    def by_reference(self, reference: str) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(
                "SELECT * FROM notifications WHERE reference = ? ORDER BY seq DESC", (reference,)
            ).fetchall()

    def by_id(self, notification_id: str) -> sqlite3.Row | None:
        with self.lock:
            found: sqlite3.Row | None = self.db.execute(
                "SELECT * FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            return found

    def sends(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, reference, type, template_id, status, received_at "
                "FROM notifications ORDER BY seq"
            ).fetchall()
        return [dict(row) for row in rows]

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT reference, type, outcome, received_at FROM requests ORDER BY seq"
            ).fetchall()
        return [dict(row) for row in rows]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            sends = self.db.execute("SELECT count(*) FROM notifications").fetchone()[0]
            references = self.db.execute(
                "SELECT count(DISTINCT reference) FROM notifications"
            ).fetchone()[0]
            duplicates = self.db.execute(
                "SELECT reference, count(*) FROM notifications GROUP BY reference "
                "HAVING count(*) > 1"
            ).fetchall()
            outcomes = self.db.execute(
                "SELECT outcome, count(*) FROM requests GROUP BY outcome"
            ).fetchall()
        return {
            "sends": sends,
            "references": references,
            "duplicates": {row[0]: row[1] for row in duplicates},
            "requests": {row[0]: row[1] for row in outcomes},
        }

    def reset(self) -> None:
        with self.lock:
            self.db.execute("DELETE FROM notifications")
            self.db.execute("DELETE FROM requests")


class Stub:
    def __init__(self, store: Store, callback_url: str | None, callback_token: str | None):
        self.store = store
        self.callback_url = callback_url
        self.callback_token = callback_token or ""
        self.control = dict(DEFAULT_CONTROL)
        self.control_lock = threading.Lock()
        self.receipts: queue.Queue[tuple[dict[str, Any], str]] = queue.Queue()
        self.receipts_posted = 0
        if callback_url:
            for _ in range(2):
                threading.Thread(target=self._post_receipts, daemon=True).start()

    def set_control(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.control_lock:
            for key, value in changes.items():
                if key not in DEFAULT_CONTROL:
                    raise ValueError(f"unknown control {key!r}")
                if key == "fail" and value not in FAILURES:
                    raise ValueError(f"fail must be one of {', '.join(FAILURES)}")
                self.control[key] = value
            return dict(self.control)

    def reset(self) -> None:
        with self.control_lock:
            self.control = dict(DEFAULT_CONTROL)
        self.store.reset()

    def next_failure(self, kind: str = "") -> tuple[str, float, float]:
        """This send's failure mode (counting down `times`), delay and timeout hold; with
        `fail_types` set, only sends of those types fail."""
        with self.control_lock:
            fail = self.control["fail"]
            types = self.control["fail_types"]
            if types is not None and kind not in types:
                fail = "none"
            if fail != "none" and self.control["times"] is not None:
                if self.control["times"] <= 0:
                    fail = self.control["fail"] = "none"
                    self.control["times"] = None
                else:
                    self.control["times"] -= 1
            return (
                fail,
                float(self.control["delay_seconds"] or 0),
                float(self.control["timeout_seconds"] or 0),
            )

    def queue_receipt(self, row: dict[str, Any]) -> None:
        with self.control_lock:
            wanted, status = self.control["receipts"], self.control["receipt_status"]
        if self.callback_url and wanted:
            self.receipts.put((row, status))

    def _post_receipts(self) -> None:
        assert self.callback_url
        while True:
            row, status = self.receipts.get()
            now = iso_now()
            body = {
                "id": row["id"],
                "reference": row["reference"],
                "to": row["recipient"],
                "status": status,
                "created_at": row["received_at"],
                "completed_at": now,
                "sent_at": now,
                "notification_type": row["type"],
                "template_id": row["template_id"],
                "template_version": 1,
            }
            request = urllib.request.Request(
                self.callback_url,
                data=json.dumps(body).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.callback_token}",
                },
                method="POST",
            )
            for attempt in range(5):
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        answer.read()
                    self.store.set_status(row["id"], status)
                    self.receipts_posted += 1
                    break
                except (urllib.error.URLError, OSError):
                    time.sleep(0.2 * 2**attempt)


def notification_view(row: sqlite3.Row | dict[str, Any], base: str) -> dict[str, Any]:
    """A notification as Notify's GET /v2/notifications answers it."""
    kind = row["type"]
    recipient = row["recipient"] or ""
    view: dict[str, Any] = {
        "id": row["id"],
        "reference": row["reference"],
        "email_address": recipient if kind == "email" else None,
        "phone_number": recipient if kind == "sms" else None,
        "line_1": None,
        "line_2": None,
        "line_3": None,
        "line_4": None,
        "line_5": None,
        "line_6": None,
        "line_7": None,
        "postcode": None,
        "type": kind,
        "status": row["status"],
        "template": {
            "id": row["template_id"],
            "version": 1,
            "uri": f"{base}/v2/template/{row['template_id']}/version/1",
        },
        "body": row["body"] or "",
        "subject": row["subject"] if kind != "sms" else None,
        "created_at": row["received_at"],
        "created_by_name": None,
        "sent_at": None,
        "completed_at": None,
        "scheduled_for": None,
        "postage": "second" if kind == "letter" else None,
        "one_click_unsubscribe_url": None,
    }
    if kind == "letter":
        for index, line in enumerate(recipient.split("\n")[:7]):
            view[f"line_{index + 1}"] = line
    return view


def make_handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client's session reuses connections
        server_version = "NotifyStub/1"
        disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms stalls
        wbufsize = 64 * 1024  # one write per answer (flushed after each request)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: thousands of requests a second

        # -- plumbing ------------------------------------------------------------------
        def _answer(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, error: str, message: str) -> None:
            self._answer(
                status,
                {"status_code": status, "errors": [{"error": error, "message": message}]},
            )

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else {}

        def _authorised(self) -> bool:
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or token.count(".") != 2:
                self._error(403, "AuthError", "Unauthorized: authentication token must be provided")
                return False
            return True

        def _base(self) -> str:
            host, port = self.server.server_address[:2]
            return f"http://{host}:{port}"

        # -- routes --------------------------------------------------------------------
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/")
            if path == "/_sends":
                self._answer(200, {"sends": stub.store.sends()})
            elif path == "/_requests":
                self._answer(200, {"requests": stub.store.requests()})
            elif path == "/_stats":
                stats = stub.store.stats()
                stats["receipts_posted"] = stub.receipts_posted
                stats["receipts_pending"] = stub.receipts.qsize()
                self._answer(200, stats)
            elif path == "/_control":
                self._answer(200, stub.set_control({}))
            elif path == "/v2/notifications":
                if self._authorised():
                    self._lookup(parse_qs(parts.query))
            elif path.startswith("/v2/notifications/"):
                if self._authorised():
                    found = stub.store.by_id(path.rsplit("/", 1)[1])
                    if found is None:
                        self._error(404, "NoResultFound", "No result found")
                    else:
                        self._answer(200, notification_view(found, self._base()))
            else:
                self._error(404, "NotFound", "not found")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            try:
                body = self._body()
            except (ValueError, UnicodeDecodeError):
                self._error(400, "BadRequestError", "Invalid JSON supplied in POST data")
                return
            if path == "/_control":
                try:
                    self._answer(200, stub.set_control(body))
                except ValueError as error:
                    self._error(400, "BadRequestError", str(error))
            elif path == "/_reset":
                stub.reset()
                self._answer(200, {"reset": True})
            elif path.startswith("/v2/notifications/") and path.rsplit("/", 1)[1] in TYPES:
                if self._authorised():
                    self._send(TYPES[path.rsplit("/", 1)[1]], body)
            else:
                self._error(404, "NotFound", "not found")

        def _lookup(self, query: dict[str, list[str]]) -> None:
            with stub.control_lock:
                failing = stub.control["lookup_fail"]
            if failing == "auth":  # our key refused on look-ups too
                self._error(403, "AuthError", "Invalid token: API key not found")
                return
            if failing:
                self._error(500, "Exception", "Internal server error")
                return
            reference = (query.get("reference") or [""])[0]
            rows = stub.store.by_reference(reference) if reference else []
            base = self._base()
            self._answer(
                200,
                {
                    "notifications": [notification_view(row, base) for row in rows],
                    "links": {"current": f"{base}/v2/notifications?reference={reference}"},
                },
            )

        def _send(self, kind: str, body: dict[str, Any]) -> None:
            reference = body.get("reference")
            template_id = body.get("template_id")
            personalisation = body.get("personalisation") or {}
            if kind == "sms":
                recipient = body.get("phone_number")
            elif kind == "email":
                recipient = body.get("email_address")
            else:
                lines = [personalisation.get(f"address_line_{i}") for i in range(1, 8)]
                recipient = "\n".join(line for line in lines if line) or None
            if not template_id or not recipient:
                stub.store.log(reference, kind, "invalid")
                self._error(400, "ValidationError", "template_id and a recipient are required")
                return
            fail, delay, hold = stub.next_failure(kind)
            if delay:
                time.sleep(delay)
            if fail == "permanent":
                stub.store.log(reference, kind, "permanent")
                self._error(400, "BadRequestError", "Can't send to this recipient")
                return
            if fail == "temporary":
                stub.store.log(reference, kind, "temporary")
                self._error(500, "Exception", "Internal server error")
                return
            if fail == "auth":  # a revoked or wrong API key
                stub.store.log(reference, kind, "auth")
                self._error(403, "AuthError", "Invalid token: API key not found")
                return
            if fail == "template":  # a template id that is not the service's
                stub.store.log(reference, kind, "template")
                self._error(400, "BadRequestError", "Template not found")
                return
            row = {
                "id": str(uuid.uuid4()),
                "reference": reference,
                "type": kind,
                "template_id": template_id,
                "recipient": recipient,
                "subject": personalisation.get("subject") or None,
                "body": personalisation.get("body") or "",
                "status": "created",
                "received_at": iso_now(),
            }
            stub.store.add(row)
            stub.store.log(reference, kind, "timeout" if fail == "timeout" else "created")
            stub.queue_receipt(row)
            if fail == "timeout":
                time.sleep(hold)  # the provider has it; the answer comes too late
            base = self._base()
            content: dict[str, Any] = {"body": row["body"]}
            if kind == "sms":
                content["from_number"] = "Support"
            elif kind == "email":
                content.update(
                    {
                        "subject": row["subject"] or "",
                        "from_email": "support@notify.example",
                        "one_click_unsubscribe_url": None,
                    }
                )
            else:
                content["subject"] = row["subject"] or ""
            answer: dict[str, Any] = {
                "id": row["id"],
                "reference": reference,
                "content": content,
                "uri": f"{base}/v2/notifications/{row['id']}",
                "template": {
                    "id": template_id,
                    "version": 1,
                    "uri": f"{base}/v2/template/{template_id}/version/1",
                },
                "scheduled_for": None,
            }
            if kind == "letter":
                answer["postage"] = "second"
            try:
                self._answer(201, answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout): it has no answer

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", required=True, help="SQLite file: the stub's own storage")
    parser.add_argument("--callback-url", default=None)
    parser.add_argument("--callback-token", default=None)
    args = parser.parse_args()
    stub = Stub(Store(args.db), args.callback_url, args.callback_token)
    server = Server((args.host, args.port), make_handler(stub))
    print(f"notify stub listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
