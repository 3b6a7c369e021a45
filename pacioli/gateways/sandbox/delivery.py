"""Sending the sandbox's callbacks: signed HTTP POSTs, retried with backoff until a 2xx.

`deliver_due` claims the callbacks that are due by pushing their due time forward by a
lease (in a short transaction of its own, with SKIP LOCKED, so several deliverers can
run side by side), then sends each one outside any database transaction, then records
the outcome: delivered on a 2xx; otherwise another attempt after an exponential backoff,
until `callback_attempts_max` attempts, after which the callback is abandoned. A
deliverer that dies mid-way leaves its claims to expire and be sent again, so a receiver
can see a callback twice, which it must (and Pacioli's does) tolerate.

`send(url, body, headers) -> status` is the transport: `httpx_sender(client)` in
production, a TestClient in tests. An exception from it counts as a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, select, text, update

from pacioli.gateways.sandbox.settings import SandboxSettings
from pacioli.gateways.sandbox.tables import callbacks
from pacioli.gateways.signing import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, Mapping[str, str]], int]

_CLAIM_DUE = text(
    """
    WITH due AS (
        SELECT event_id, due_at AS was_due_at
        FROM sandbox_callbacks
        WHERE delivered_at IS NULL AND abandoned_at IS NULL AND due_at <= :now
        ORDER BY due_at, event_id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE sandbox_callbacks AS c
    SET due_at = :lease_until
    FROM due
    WHERE c.event_id = due.event_id
    RETURNING c.event_id, c.body, c.attempts, due.was_due_at
    """
)


@dataclass(frozen=True)
class QueuedEvent:
    """A callback the sandbox has queued, and how its delivery stands."""

    event_id: str
    gateway_reference: str
    event_type: str
    sequence: int
    body: str
    due_at: datetime
    attempts: int
    delivered_at: datetime | None
    abandoned_at: datetime | None


@dataclass
class DeliveryReport:
    """What one `deliver_due` run did, by event id."""

    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)


def httpx_sender(client: httpx.Client) -> Send:
    """A `send` that POSTs with an httpx client (give it a timeout)."""

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return client.post(url, content=body, headers=dict(headers)).status_code

    return send


def signed_headers(settings: SandboxSettings, event_id: str, body: bytes,
                   now: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.signing_secret, body, now),
        "Pacioli-Event-Id": event_id,
    }


def _post(settings: SandboxSettings, event_id: str, body: bytes, now: datetime,
          send: Send) -> int | None:
    """Send one callback; the HTTP status, or None if the transport failed."""
    try:
        return send(settings.callback_url, body, signed_headers(settings, event_id, body, now))
    except Exception as error:  # any transport failure is a failed attempt, retried later
        log.warning("sandbox callback not delivered",
                    extra={"event_id": event_id, "error": type(error).__name__})
        return None


def deliver_due(
    engine: Engine, settings: SandboxSettings, now: datetime, send: Send
) -> DeliveryReport:
    """Send every callback due by `now` (in due order), and record each outcome."""
    report = DeliveryReport()
    lease_until = now + timedelta(seconds=settings.callback_lease_seconds)
    while True:
        with engine.begin() as connection:
            claimed = connection.execute(_CLAIM_DUE, {
                "now": now, "limit": settings.delivery_batch_size, "lease_until": lease_until,
            }).all()
        for row in sorted(claimed, key=lambda r: (r.was_due_at, r.event_id)):
            status = _post(settings, row.event_id, row.body.encode(), now, send)
            _record_attempt(engine, settings, row.event_id, row.attempts + 1, status, now,
                            report)
        if len(claimed) < settings.delivery_batch_size:
            return report


def _record_attempt(
    engine: Engine, settings: SandboxSettings, event_id: str, attempts: int,
    status: int | None, now: datetime, report: DeliveryReport,
) -> None:
    values: dict[str, object] = {"attempts": attempts, "last_status": status}
    if status is not None and 200 <= status < 300:
        values["delivered_at"] = now
        report.delivered.append(event_id)
    elif attempts >= settings.callback_attempts_max:
        values["abandoned_at"] = now
        report.abandoned.append(event_id)
        log.warning("sandbox callback abandoned", extra={"event_id": event_id})
    else:
        values["due_at"] = now + retry_delay(settings, attempts)
        report.retrying.append(event_id)
    with engine.begin() as connection:
        connection.execute(
            update(callbacks).where(callbacks.c.event_id == event_id).values(**values)
        )


def retry_delay(settings: SandboxSettings, attempts: int) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base ... capped at the maximum."""
    seconds = settings.callback_retry_base_seconds * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, settings.callback_retry_max_seconds))


def send_event(
    engine: Engine, settings: SandboxSettings, event_id: str, now: datetime, send: Send
) -> int | None:
    """Send one queued event as it is, without touching its delivery record.

    For tests and demonstrations: sending an event twice or in another order than it
    happened is what a real network sometimes does.
    """
    with engine.connect() as connection:
        body = connection.execute(
            select(callbacks.c.body).where(callbacks.c.event_id == event_id)
        ).scalar_one()
    return _post(settings, event_id, body.encode(), now, send)


def events_for(engine: Engine, reference: str) -> list[QueuedEvent]:
    statement = (
        select(callbacks).where(callbacks.c.gateway_reference == reference)
        .order_by(callbacks.c.sequence)
    )
    with engine.connect() as connection:
        return [
            QueuedEvent(
                event_id=row.event_id, gateway_reference=row.gateway_reference,
                event_type=row.event_type, sequence=row.sequence, body=row.body,
                due_at=row.due_at, attempts=row.attempts, delivered_at=row.delivered_at,
                abandoned_at=row.abandoned_at,
            )
            for row in connection.execute(statement)
        ]
