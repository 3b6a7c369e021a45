"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread.

It verifies every request with the `standardwebhooks` package from PyPI (the issue asks
that receivers in the tests do not use our own code) against each secret it is told,
records what came and which secrets verified it, and answers with the statuses it is
told to (200 by default), optionally after a delay.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: str
    status: int
    verified_by: list[str] = field(default_factory=list)
    payload: Any = None

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class WebhookReceiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.statuses: deque[int] = deque()
        self.default_status = 200
        self.delay_s = 0.0
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then with `default_status`."""
        with self._lock:
            self.statuses.extend(statuses)

    def verified(self) -> list[Received]:
        """The requests that at least one known secret verified."""
        return [r for r in self.received if r.verified_by]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, path: str, headers: dict[str, str], body: str) -> int:
        verified_by, payload = [], None
        for secret in list(self.secrets):
            try:
                payload = Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified_by.append(secret)
        with self._lock:
            status = self.statuses.popleft() if self.statuses else self.default_status
            self.received.append(Received(path, headers, body, status, verified_by, payload))
        return status

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._record(self.path, headers, body)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # The sender gave up (a timeout test): nobody is listening.

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def running_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
