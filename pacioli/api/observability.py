"""Structured JSON logs and Prometheus request metrics for the HTTP API.

`configure_logging` is called once by the CLI. `RequestObservability` is a plain ASGI
middleware (not BaseHTTPMiddleware, which would hide the matched route): for every
request it assigns a request id, times it, counts it by route template, and writes one
JSON log line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("pacioli.api.access")

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "<unmatched>"
# Paths polled by probes and scrapers: logged at DEBUG so they do not drown real traffic.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pacioli_request_id", default=None
)

http_requests_total = Counter(
    "pacioli_http_requests_total",
    "HTTP requests served, by method, route template and status.",
    ["method", "route", "status"],
)
http_request_seconds = Histogram(
    "pacioli_http_request_seconds",
    "Time to serve an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Attributes every LogRecord has; anything else on a record came from `extra=`, except
# uvicorn's terminal-coloured copy of its message, which has no place in a JSON line.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "color_message"
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            payload["request_id"] = request_id
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                payload[name] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


_HANDLER_MARK = "_pacioli_handler"


def configure_logging(level: str | int = "INFO", fmt: str = "json") -> None:
    """Send all logs to stderr as JSON lines (`fmt="json"`) or plain text (`fmt="text"`).

    Safe to call more than once: it replaces the handler it installed before. Uvicorn
    should be run with `log_config=None, access_log=False` so this stays the only setup
    and each request is logged once, by `RequestObservability`.
    """
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(
        JsonFormatter() if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


class RequestObservability:
    """ASGI middleware: request id, one access log line, and request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            duration_s = time.perf_counter() - started
            _record(scope, status, duration_s, request_id)
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID if it is a sane token, else a fresh one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    # The router stores the matched route in the scope; the template (not the concrete
    # path) keeps the metric's label set bounded.
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED_ROUTE


def _record(scope: Scope, status: int, duration_s: float, request_id: str) -> None:
    method, route = scope["method"], _route_template(scope)
    http_requests_total.labels(method, route, str(status)).inc()
    http_request_seconds.labels(method, route, str(status)).observe(duration_s)
    path = scope["path"]
    access_log.log(
        logging.DEBUG if path in QUIET_PATHS else logging.INFO,
        "request",
        extra={
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(duration_s * 1000, 3),
            "request_id": request_id,
        },
    )


def metrics_response() -> Response:
    """Every metric in the default registry: the ledger's and the API's."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
