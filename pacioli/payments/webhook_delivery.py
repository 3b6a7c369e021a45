"""Delivery mechanics: the retry schedule, claiming due deliveries, recording attempts.

A delivery is claimed before it is sent, in a short transaction of its own: the claim
adds one to `attempt_count` and pushes `next_attempt_at` forward by a lease, so no other
worker picks the delivery up while this one sends (rows are taken with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers split the due rows between them). The
HTTP request goes out with no transaction open. The outcome is then recorded in a second
transaction, and it only changes the delivery if the delivery is still at the claimed
attempt: a worker that outlived its lease (and whose attempt another worker repeated)
logs its attempt but leaves the state alone. A worker that dies after claiming loses
nothing: the delivery falls due again when the lease ends (that claim counts as one of
the attempts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select, update

from pacioli.gateways.webhooks import AttemptResult
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments.webhook_events import ENDPOINT_FAILING
from pacioli.payments.webhook_tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

# The wait after each failed attempt: ten attempts over about three days (71.6 hours).
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=30),
)
ATTEMPTS_MAX = len(RETRY_DELAYS) + 1
# Each wait is stretched by up to this fraction, at random, so that deliveries that failed
# together (an endpoint down for an hour) do not all come back at the same instant.
JITTER_FRACTION_MAX = 0.1

ENDPOINT_DISABLED_ERROR = "endpoint_disabled"

d = webhook_deliveries
e = webhook_endpoints


def retry_delay(attempts_made: int, jitter: float) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` failed ones; None: give up.

    `jitter` is a number in [0, 1): the share of JITTER_FRACTION_MAX added to the wait.
    """
    if attempts_made >= ATTEMPTS_MAX:
        return None
    return RETRY_DELAYS[attempts_made - 1] * (1 + JITTER_FRACTION_MAX * jitter)


def webhook_id(event_id: UUID) -> str:
    """The `webhook-id` header of an event: the same on every attempt, to every endpoint."""
    return f"evt_{event_id.hex}"


def body_of(payload: dict[str, Any]) -> str:
    """The request body: the stored payload serialized the same way on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What one attempt sends: where, its webhook-id, its body and the signing secrets."""

    url: str
    msg_id: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker may attempt (the claim's attempt number), and the request."""

    delivery_id: UUID
    attempt_number: int
    outgoing: Outgoing


def outgoing(endpoint: Any, event_id: UUID, payload: dict[str, Any], now: datetime) -> Outgoing:
    """The request for an event to an endpoint (a row with its url and secrets) at `now`."""
    return Outgoing(endpoint.url, webhook_id(event_id), body_of(payload),
                    live_secrets(endpoint, now))


def live_secrets(endpoint: Any, now: datetime) -> tuple[str, ...]:
    """The secrets an endpoint signs with: the current one, and the previous one in grace."""
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires_at is not None and expires_at > now:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def claim_due(
    connection: Connection,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    delivery_id: UUID | None = None,
) -> list[Claim]:
    """Claim up to `limit` due deliveries (or the one named) for an attempt each.

    Due deliveries of a disabled endpoint are failed here, without an attempt.
    """
    _fail_for_disabled_endpoints(connection, now=now, limit=limit, delivery_id=delivery_id)
    due = _due(now, delivery_id).where(e.c.status != "disabled")
    claimed = connection.execute(
        update(d)
        .where(d.c.id.in_(due.limit(limit).scalar_subquery()))
        .values(attempt_count=d.c.attempt_count + 1, next_attempt_at=lease_until,
                updated_at=now)
        .returning(d.c.id, d.c.endpoint_id, d.c.event_id, d.c.payload, d.c.attempt_count)
    ).all()
    if not claimed:
        return []
    endpoints = {
        row.id: row for row in connection.execute(
            select(e).where(e.c.id.in_({row.endpoint_id for row in claimed}))
        )
    }
    return [
        Claim(row.id, row.attempt_count,
              outgoing(endpoints[row.endpoint_id], row.event_id, row.payload, now))
        for row in claimed
    ]


def _due(now: datetime, delivery_id: UUID | None):
    """Due deliveries not locked by another claimer (an alias: the UPDATE must not
    correlate with it)."""
    due = d.alias("due")
    query = (
        select(due.c.id)
        .join(e, e.c.id == due.c.endpoint_id)
        .where(due.c.status == "pending", due.c.next_attempt_at <= now)
        .order_by(due.c.next_attempt_at)
        .with_for_update(of=due, skip_locked=True)
    )
    return query if delivery_id is None else query.where(due.c.id == delivery_id)


def _fail_for_disabled_endpoints(
    connection: Connection, *, now: datetime, limit: int, delivery_id: UUID | None
) -> None:
    doomed = _due(now, delivery_id).where(e.c.status == "disabled").limit(limit)
    connection.execute(
        update(d).where(d.c.id.in_(doomed.scalar_subquery()))
        .values(status="failed", next_attempt_at=None, last_error=ENDPOINT_DISABLED_ERROR,
                updated_at=now)
    )


def record_scheduled(
    connection: Connection,
    claim: Claim,
    result: AttemptResult,
    *,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    """Log a claimed attempt and, if the delivery is still at it, move the delivery on.

    `retry_at` is when to try again after a failure; None means this was the last try:
    the delivery fails, and an endpoint that was active turns failing and announces it
    (`webhook_endpoint.failing`, in this transaction).
    """
    current = _lock_delivery(connection, claim.delivery_id)
    if current is None:
        return  # The endpoint was deleted meanwhile, its deliveries with it.
    _log_attempt(connection, claim.delivery_id, result, trigger="scheduled", now=now)
    if current.status != "pending" or current.attempt_count != claim.attempt_number:
        return  # Resolved by a redelivery, or re-claimed after our lease ran out.
    if result.succeeded:
        status, next_at = "succeeded", None
    elif result.gone or retry_at is None:
        status, next_at = "failed", None
    else:
        status, next_at = "pending", retry_at
    _update_delivery(connection, claim.delivery_id, result, now=now, status=status,
                     next_attempt_at=next_at)
    _update_endpoint_health(connection, current.endpoint_id, result, now=now,
                            exhausted=status == "failed" and not result.gone)


def record_manual(
    connection: Connection, delivery_id: UUID, result: AttemptResult, *, now: datetime
) -> None:
    """Log an attempt the merchant asked for; only a success (or a 410) changes state.

    A success marks the delivery succeeded (ending its retries if it was pending); a
    failure leaves its status and schedule as they were.
    """
    current = _lock_delivery(connection, delivery_id)
    if current is None:
        return
    _log_attempt(connection, delivery_id, result, trigger="manual", now=now)
    status, next_at = current.status, current.next_attempt_at
    if result.succeeded:
        status, next_at = "succeeded", None
    elif result.gone and status == "pending":
        status, next_at = "failed", None
    _update_delivery(connection, delivery_id, result, now=now, status=status,
                     next_attempt_at=next_at)
    _update_endpoint_health(connection, current.endpoint_id, result, now=now, exhausted=False)


def _lock_delivery(connection: Connection, delivery_id: UUID):
    return connection.execute(
        select(d.c.status, d.c.attempt_count, d.c.next_attempt_at, d.c.endpoint_id)
        .where(d.c.id == delivery_id).with_for_update()
    ).first()


def _log_attempt(
    connection: Connection, delivery_id: UUID, result: AttemptResult, *, trigger: str,
    now: datetime,
) -> None:
    connection.execute(webhook_attempts.insert().values(
        id=uuid7(), delivery_id=delivery_id, trigger=trigger, attempted_at=now,
        status_code=result.status_code, error=result.error, latency_ms=result.latency_ms,
    ))


def _update_delivery(
    connection: Connection, delivery_id: UUID, result: AttemptResult, *, now: datetime,
    status: str, next_attempt_at: datetime | None,
) -> None:
    connection.execute(
        update(d).where(d.c.id == delivery_id)
        .values(status=status, next_attempt_at=next_attempt_at, last_attempt_at=now,
                last_status_code=result.status_code, last_error=result.error, updated_at=now)
    )


def _update_endpoint_health(
    connection: Connection, endpoint_id: UUID, result: AttemptResult, *, now: datetime,
    exhausted: bool,
) -> None:
    """A success heals a failing endpoint, a 410 disables it, exhaustion marks it failing."""
    if result.succeeded:
        connection.execute(
            update(e).where(e.c.id == endpoint_id, e.c.status == "failing")
            .values(status="active", updated_at=now)
        )
    elif result.gone:
        connection.execute(
            update(e).where(e.c.id == endpoint_id)
            .values(status="disabled", disabled_reason="gone", updated_at=now)
        )
    elif exhausted:
        failing = connection.execute(
            update(e).where(e.c.id == endpoint_id, e.c.status == "active")
            .values(status="failing", updated_at=now)
            .returning(e.c.id, e.c.merchant_id, e.c.url)
        ).first()
        if failing is not None:
            append_event(connection, ENDPOINT_FAILING, "webhook_endpoint", str(failing.id), {
                "endpoint_id": str(failing.id),
                "merchant_id": str(failing.merchant_id),
                "url": failing.url,
            })
