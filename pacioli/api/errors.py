"""The one table from exception to RFC 9457 problem document and HTTP status.

Domain errors carry their own stable `code` and `detail`; this module only decides the
status and the document's shape. An exception class not in the table (by its MRO) is a
bug: the caller gets a 500 `internal_error` with no detail, and the log gets the trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pacioli.gateways import base as gw
from pacioli.ledger.domain import errors as e
from pacioli.payments import identity_errors as identity

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:pacioli:problem:"


class ApiError(Exception):
    """A request the API refuses before it reaches the ledger."""

    code = "api_error"
    title = "The request was refused"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class Unauthorized(ApiError):
    """The request carries no valid credentials (admin key, user token or merchant key)."""

    code = "unauthorized"
    title = "Authentication required"


class IdempotencyKeyRequired(ApiError):
    """A write request came without an Idempotency-Key header."""

    code = "idempotency_key_required"
    title = "Idempotency-Key header required"


class InvalidIdempotencyKey(ApiError):
    """The Idempotency-Key header is not 1 to 255 characters."""

    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key header"


class InvalidRequest(ApiError):
    """A query parameter or header the schema cannot express is malformed."""

    code = "validation_error"
    title = "The request is invalid"


# Looked up along the exception's MRO, so the most specific entry wins.
PROBLEM_STATUS: dict[type[Exception], int] = {
    Unauthorized: 401,
    ApiError: 422,
    identity.AuthenticationFailed: 401,
    identity.Forbidden: 403,
    RequestValidationError: 422,
    e.InvalidCommand: 422,
    e.NotFound: 404,
    e.Rejected: 422,
    e.Conflict: 409,
    e.DomainError: 422,  # a rejection outside the four families is still not a 500
    e.LedgerUnavailable: 503,
    gw.GatewayError: 502,  # an upstream processor failed
    gw.GatewayRejected: 422,
    gw.GatewayNotFound: 404,
    gw.GatewayConflict: 409,
    gw.InvalidSignature: 401,
}

_TITLES = {
    RequestValidationError: "The request is invalid",
    e.LedgerUnavailable: "The ledger is busy; try again",
}
# Exceptions that have no `code` of their own.
_CODES = {e.LedgerUnavailable: "ledger_unavailable"}


def _lookup(table: dict[type[Exception], Any], error: Exception) -> Any:
    """The entry for the error's most specific class in `table`, or None."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return None


def status_for(error: Exception) -> int:
    return _lookup(PROBLEM_STATUS, error) or 500


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _title_of(error: Exception) -> str:
    title = _lookup(_TITLES, error) or getattr(error, "title", None)
    # Otherwise a domain error: its docstring is its one-line description.
    return title or (type(error).__doc__ or type(error).__name__).strip().splitlines()[0]


def _known_error(_request: Request, error: Exception) -> JSONResponse:
    status = status_for(error)
    headers = {}
    if isinstance(error, Unauthorized | identity.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, e.LedgerUnavailable):
        headers["Retry-After"] = str(error.retry_after_s)
        log.warning("ledger unavailable", extra={"detail": str(error)})
    code = _lookup(_CODES, error) or getattr(error, "code", "internal_error")
    detail = getattr(error, "detail", None) or str(error)
    return problem_response(status, code, _title_of(error), detail, headers=headers)


def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    errors = [_describe(item) for item in error.errors()]
    # An amount sent as a JSON number is refused by the schema; give it the same code as
    # any other malformed amount so clients handle one code.
    kinds = {item["type"] for item in errors}
    code = "invalid_amount" if kinds == {"invalid_amount"} else "validation_error"
    detail = "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in errors)
    return problem_response(
        422, code, _TITLES[RequestValidationError], detail or None, errors=errors
    )


def _describe(item: dict[str, Any]) -> dict[str, Any]:
    # Only these three keys: pydantic's `input` and `ctx` may hold anything.
    loc = [part if isinstance(part, int) else str(part) for part in item.get("loc", ())]
    return {"loc": loc, "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}


def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    title = str(error.detail) if error.detail else "HTTP error"
    return problem_response(
        error.status_code, code, title, headers=dict(error.headers or {}) or None
    )


def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.error(
        "unhandled error", exc_info=error,
        extra={"method": request.method, "path": request.url.path},
    )
    return problem_response(500, "internal_error", "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Send every error as a problem document (see the PROBLEM_STATUS table)."""
    app.add_exception_handler(ApiError, _known_error)
    app.add_exception_handler(e.DomainError, _known_error)
    app.add_exception_handler(e.LedgerUnavailable, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
