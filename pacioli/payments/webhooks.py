"""Merchant webhooks: endpoints and their secrets, the outbox consumer, delivery and retries.

A merchant registers endpoints (a URL, the event types it wants or all of them, enabled
or not) and gets a signing secret, shown once; rotating it issues a new one and keeps
the old one signing too for a grace period. The consumer (`handle`, named "webhooks")
turns each catalog event that names a merchant (pacioli/payments/webhook_events.py)
into one delivery per enabled endpoint of that merchant that wants its type; UNIQUE
(endpoint_id, event_id) and `first_consumption` make a re-sent event change nothing.
`deliver_due` is the scheduled job that sends due deliveries and schedules retries
(pacioli/payments/webhook_delivery.py has the schedule and the claiming); `deliver`
makes a delivery's first attempt at once; `redeliver` is one more attempt a merchant
asks for. No database transaction is open while a request is on the wire.
docs/webhooks.md is the manual.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.config import Settings, get_settings
from pacioli.gateways.webhooks import (
    AttemptResult,
    TargetGuard,
    TargetPolicy,
    WebhookSender,
    new_secret,
)
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import Event, first_consumption
from pacioli.ledger.service.ledger import Written
from pacioli.ledger.storage.reads import get_assets
from pacioli.payments import identity_idempotency as idempotency
from pacioli.payments import webhook_delivery as delivery
from pacioli.payments.identity_idempotency import WriteKey
from pacioli.payments.merchants import merchants
from pacioli.payments.webhook_errors import (
    InvalidGracePeriod,
    UnknownWebhookEventType,
    WebhookDeliveryNotFound,
    WebhookEndpointDisabled,
    WebhookEndpointLimitReached,
    WebhookEndpointNotFound,
)
from pacioli.payments.webhook_events import (
    ENDPOINT_FAILING,
    EVENT_TYPES,
    TEST_EVENT_TYPE,
    envelope,
)
from pacioli.payments.webhook_tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

CONSUMER_NAME = "webhooks"
ENDPOINTS_PER_MERCHANT_MAX = 16
DESCRIPTION_LENGTH_MAX = 200
ATTEMPTS_SHOWN_MAX = 50
# Added to a claim's lease beyond the time its batch can take to send (resolving hosts,
# recording outcomes). Outliving the lease is harmless but for a repeated request.
LEASE_MARGIN = timedelta(seconds=15)

e = webhook_endpoints
d = webhook_deliveries


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    FAILING = "failing"  # a delivery failed its last attempt; a success heals it
    DISABLED = "disabled"  # by the merchant, or because the receiver answered 410


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class _Unset:
    """The marker of a field an update leaves alone (None is a value: "all event types")."""


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """An endpoint as stored, without its secrets."""

    id: UUID
    merchant_id: UUID
    url: str
    description: str | None
    event_types: tuple[str, ...] | None  # None: every event type
    status: EndpointStatus
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def enabled(self) -> bool:
        return self.status != EndpointStatus.DISABLED


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """An endpoint and its new signing secret, which is shown this once."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    id: UUID
    trigger: str  # scheduled, manual
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    attempts: tuple[WebhookAttempt, ...]

    @property
    def webhook_id(self) -> str:
        return delivery.webhook_id(self.event_id)


class Webhooks:
    """The webhook service of one process: endpoints, the consumer and the delivery jobs."""

    name = CONSUMER_NAME
    # The relay sends this consumer only these types (pacioli/workers/actors.py).
    event_types = frozenset(EVENT_TYPES)

    def __init__(
        self,
        engine: Engine,
        sender: WebhookSender,
        *,
        secret_grace_default_s: int = 24 * 3600,
        secret_grace_max_s: int = 7 * 24 * 3600,
        batch_size: int = 100,
        concurrency: int = 8,
        attempt_at_once: bool = True,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.secret_grace_default_s = secret_grace_default_s
        self.secret_grace_max_s = secret_grace_max_s
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.attempt_at_once = attempt_at_once
        self._rng = rng or random.Random()
        self._clock = clock
        self._scales: dict[str, int] = {}
        # Long enough for a whole batch to go out `concurrency` at a time, each attempt
        # taking at most its timeout (plus resolving the host).
        rounds = math.ceil(batch_size / max(concurrency, 1))
        self.lease = timedelta(seconds=sender.timeout_s * rounds) + LEASE_MARGIN

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings | None = None) -> Webhooks:
        settings = settings or get_settings()
        guard = TargetGuard(TargetPolicy(
            allow_private=settings.webhook_allow_private_targets,
            allow_http=settings.webhook_allow_http,
        ))
        return cls(
            engine, WebhookSender(guard, timeout_s=settings.webhook_timeout_seconds),
            secret_grace_default_s=settings.webhook_secret_grace_seconds_default,
            secret_grace_max_s=settings.webhook_secret_grace_seconds_max,
            batch_size=settings.webhook_delivery_batch_size,
            concurrency=settings.webhook_delivery_concurrency,
        )

    def close(self) -> None:
        self.sender.close()

    # Endpoints.

    def register_endpoint(
        self,
        merchant_id: UUID,
        *,
        url: str,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool = True,
        write_key: WriteKey,
    ) -> Written[IssuedSecret | WebhookEndpoint]:
        """Add an endpoint with a new secret; a replay returns it without the secret.

        Raises: InvalidWebhookUrl, WebhookUrlNotAllowed, UnknownWebhookEventType,
        WebhookEndpointLimitReached, IdempotencyKeyReused.
        """
        url = self.sender.guard.check_registration(url)
        types = _checked_event_types(event_types)
        fields = {"url": url, "event_types": types, "description": description,
                  "enabled": enabled}
        now = self._clock()
        with self.engine.begin() as connection:
            refs = idempotency.claim(connection, write_key, "register_webhook_endpoint", fields)
            if refs is not None:
                return Written(_load(connection, merchant_id, UUID(refs["endpoint_id"])), True)
            _require_room(connection, merchant_id)
            endpoint_id, secret = uuid7(), new_secret()
            connection.execute(e.insert().values(
                id=endpoint_id, merchant_id=merchant_id, url=url, description=description,
                event_types=list(types) if types is not None else None,
                status=EndpointStatus.ACTIVE if enabled else EndpointStatus.DISABLED,
                disabled_reason=None if enabled else "merchant", secret=secret,
                created_at=now, updated_at=now,
            ))
            idempotency.record(connection, write_key, {"endpoint_id": str(endpoint_id)})
            endpoint = _load(connection, merchant_id, endpoint_id)
        return Written(IssuedSecret(endpoint, secret), replayed=False)

    def list_endpoints(self, merchant_id: UUID) -> list[WebhookEndpoint]:
        """The merchant's endpoints, oldest first (at most ENDPOINTS_PER_MERCHANT_MAX)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(e).where(e.c.merchant_id == merchant_id).order_by(e.c.id)
            ).all()
        return [_endpoint_of(row) for row in rows]

    def get_endpoint(self, merchant_id: UUID, endpoint_id: UUID) -> WebhookEndpoint:
        """Raises: WebhookEndpointNotFound (also another merchant's)."""
        with self.engine.connect() as connection:
            return _load(connection, merchant_id, endpoint_id)

    def update_endpoint(
        self,
        merchant_id: UUID,
        endpoint_id: UUID,
        *,
        url: str = UNSET,
        event_types: Sequence[str] | None = UNSET,
        description: str | None = UNSET,
        enabled: bool = UNSET,
    ) -> WebhookEndpoint:
        """Change what is given. Enabling a disabled endpoint makes it active again, and so
        does a new URL for a failing one.

        Raises: WebhookEndpointNotFound, InvalidWebhookUrl, WebhookUrlNotAllowed,
        UnknownWebhookEventType.
        """
        changes: dict[str, Any] = {}
        if url is not UNSET:
            changes["url"] = self.sender.guard.check_registration(url)
        if event_types is not UNSET:
            types = _checked_event_types(event_types)
            changes["event_types"] = list(types) if types is not None else None
        if description is not UNSET:
            changes["description"] = description
        with self.engine.begin() as connection:
            current = _load(connection, merchant_id, endpoint_id, for_update=True)
            changes |= _status_change(current, enabled, url_changed="url" in changes)
            if changes:
                connection.execute(update(e).where(e.c.id == endpoint_id)
                                   .values(**changes, updated_at=self._clock()))
            return _load(connection, merchant_id, endpoint_id)

    def delete_endpoint(self, merchant_id: UUID, endpoint_id: UUID) -> None:
        """Delete an endpoint with its deliveries and their attempts.

        Raises: WebhookEndpointNotFound.
        """
        with self.engine.begin() as connection:
            deleted = connection.execute(
                delete(e).where(e.c.id == endpoint_id, e.c.merchant_id == merchant_id)
                .returning(e.c.id)
            ).first()
        if deleted is None:
            raise WebhookEndpointNotFound()

    def rotate_secret(
        self,
        merchant_id: UUID,
        endpoint_id: UUID,
        *,
        grace_period_s: int | None = None,
        write_key: WriteKey,
    ) -> Written[IssuedSecret | WebhookEndpoint]:
        """Issue a new secret; the current one keeps signing for the grace period.

        The grace period defaults to `secret_grace_default_s` (0: the old secret stops at
        once). Only one old secret is kept: rotating again during a grace period ends the
        older one's at once. A replay returns the endpoint without the secret.
        Raises: WebhookEndpointNotFound, InvalidGracePeriod, IdempotencyKeyReused.
        """
        grace = self.secret_grace_default_s if grace_period_s is None else grace_period_s
        if not 0 <= grace <= self.secret_grace_max_s:
            raise InvalidGracePeriod(
                f"grace_period_seconds must be between 0 and {self.secret_grace_max_s}")
        now = self._clock()
        fields = {"endpoint_id": str(endpoint_id), "grace_period_s": grace}
        with self.engine.begin() as connection:
            refs = idempotency.claim(connection, write_key, "rotate_webhook_secret", fields)
            if refs is not None:
                return Written(_load(connection, merchant_id, endpoint_id), replayed=True)
            _load(connection, merchant_id, endpoint_id, for_update=True)
            secret = new_secret()
            connection.execute(
                update(e).where(e.c.id == endpoint_id).values(
                    secret=secret,
                    previous_secret=e.c.secret if grace > 0 else None,
                    previous_secret_expires_at=now + timedelta(seconds=grace) if grace > 0
                    else None,
                    updated_at=now,
                )
            )
            idempotency.record(connection, write_key, {"endpoint_id": str(endpoint_id)})
            endpoint = _load(connection, merchant_id, endpoint_id)
        return Written(IssuedSecret(endpoint, secret), replayed=False)

    # The consumer.

    def handle(self, event: Event) -> None:
        """Make one delivery per interested endpoint of the merchant the event names.

        Idempotent by event id. With `attempt_at_once`, the new deliveries' first attempts
        follow at once (after the commit); otherwise `deliver_due` makes them.
        """
        if event.event_type not in EVENT_TYPES:
            return
        merchant_id = _uuid_or_none(event.payload.get("merchant_id"))
        if merchant_id is None:
            return
        created = self._fan_out(event, merchant_id)
        if self.attempt_at_once:
            for delivery_id in created:
                self.deliver(delivery_id)

    def _fan_out(self, event: Event, merchant_id: UUID) -> list[UUID]:
        payload = envelope(event.event_type, event.created_at, event.payload, self._scale_of)
        now = self._clock()
        with self.engine.begin() as connection:
            if not first_consumption(connection, self.name, event.event_id):
                return []
            endpoint_ids = _interested_endpoints(connection, merchant_id, event)
            if not endpoint_ids:
                return []
            return list(connection.execute(
                pg_insert(d).values([
                    _new_delivery(endpoint_id, merchant_id, event.event_id, event.event_type,
                                  payload, now)
                    for endpoint_id in endpoint_ids
                ]).on_conflict_do_nothing(constraint="uq_webhook_deliveries_endpoint_event")
                .returning(d.c.id)
            ).scalars())

    def _scale_of(self, currency: str) -> int | None:
        if currency not in self._scales:
            with self.engine.connect() as connection:
                self._scales = {asset.code: asset.scale for asset in get_assets(connection)}
        return self._scales.get(currency)

    # Delivery.

    def deliver_due(self, now: datetime | None = None, limit: int | None = None) -> int:
        """Attempt every delivery due at `now` (up to `limit`); the number attempted.

        Safe to run in several workers at once: each claims different deliveries.
        """
        now = now or self._clock()
        with self.engine.begin() as connection:
            claims = delivery.claim_due(connection, now=now, lease_until=now + self.lease,
                                        limit=limit or self.batch_size)
        self._attempt_all(claims, now)
        return len(claims)

    def deliver(self, delivery_id: UUID, now: datetime | None = None) -> bool:
        """Attempt one delivery now if it is due and nobody else is attempting it."""
        now = now or self._clock()
        with self.engine.begin() as connection:
            claims = delivery.claim_due(connection, now=now, lease_until=now + self.lease,
                                        limit=1, delivery_id=delivery_id)
        self._attempt_all(claims, now)
        return bool(claims)

    def _attempt_all(self, claims: list[delivery.Claim], now: datetime) -> None:
        if len(claims) <= 1 or self.concurrency <= 1:
            for claim in claims:
                self._attempt(claim, now)
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(claims)),
                                thread_name_prefix="webhook") as pool:
            list(pool.map(lambda claim: self._attempt(claim, now), claims))

    def _attempt(self, claim: delivery.Claim, now: datetime) -> None:
        result = self._send(claim.outgoing)
        wait = delivery.retry_delay(claim.attempt_number, self._rng.random())
        with self.engine.begin() as connection:
            delivery.record_scheduled(connection, claim, result, now=now,
                                      retry_at=now + wait if wait is not None else None)

    def redeliver(
        self, merchant_id: UUID, delivery_id: UUID, *, write_key: WriteKey
    ) -> Written[WebhookDelivery]:
        """One more attempt now, with the same webhook-id, whatever the delivery's status.

        A replay of the request returns the delivery without another attempt.
        Raises: WebhookDeliveryNotFound, WebhookEndpointDisabled, IdempotencyKeyReused.
        """
        fields = {"delivery_id": str(delivery_id)}
        with self.engine.begin() as connection:
            if idempotency.claim(connection, write_key, "redeliver_webhook", fields) is not None:
                return Written(_delivery(connection, merchant_id, delivery_id), replayed=True)
            request = _manual_request(connection, merchant_id, delivery_id, self._clock())
            idempotency.record(connection, write_key, fields)
        result = self._send(request)
        with self.engine.begin() as connection:
            delivery.record_manual(connection, delivery_id, result, now=self._clock())
        return Written(self.get_delivery(merchant_id, delivery_id), replayed=False)

    def _send(self, request: delivery.Outgoing) -> AttemptResult:
        return self.sender.send(request.url, msg_id=request.msg_id, body=request.body,
                                secrets_=request.secrets)

    def send_test_event(
        self, merchant_id: UUID, endpoint_id: UUID, *, write_key: WriteKey
    ) -> Written[WebhookDelivery]:
        """Send a `webhook_endpoint.test` event to one endpoint now (retried like any).

        Raises: WebhookEndpointNotFound, WebhookEndpointDisabled, IdempotencyKeyReused.
        """
        now = self._clock()
        fields = {"endpoint_id": str(endpoint_id)}
        with self.engine.begin() as connection:
            refs = idempotency.claim(connection, write_key, "send_webhook_test", fields)
            if refs is not None:
                return Written(_delivery(connection, merchant_id, UUID(refs["delivery_id"])),
                               replayed=True)
            endpoint = _load(connection, merchant_id, endpoint_id)
            if not endpoint.enabled:
                raise WebhookEndpointDisabled()
            event_id = uuid7()
            data = {"endpoint_id": str(endpoint_id), "merchant_id": str(merchant_id)}
            values = _new_delivery(endpoint_id, merchant_id, event_id, TEST_EVENT_TYPE,
                                   envelope(TEST_EVENT_TYPE, now, data, self._scale_of), now)
            connection.execute(d.insert().values(values))
            idempotency.record(connection, write_key, {"delivery_id": str(values["id"])})
        self.deliver(values["id"], now)
        return Written(self.get_delivery(merchant_id, values["id"]), replayed=False)

    # Reads.

    def get_delivery(self, merchant_id: UUID, delivery_id: UUID) -> WebhookDelivery:
        """Raises: WebhookDeliveryNotFound (also another merchant's)."""
        with self.engine.connect() as connection:
            return _delivery(connection, merchant_id, delivery_id)

    def list_deliveries(
        self,
        merchant_id: UUID,
        endpoint_id: UUID,
        *,
        limit: int,
        starting_after: UUID | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[WebhookDelivery]:
        """An endpoint's deliveries, newest first, each with its latest attempts.

        Raises: WebhookEndpointNotFound.
        """
        with self.engine.connect() as connection:
            _load(connection, merchant_id, endpoint_id)
            query = select(d).where(d.c.endpoint_id == endpoint_id)
            if starting_after is not None:
                query = query.where(d.c.id < starting_after)
            if status is not None:
                query = query.where(d.c.status == str(status))
            rows = connection.execute(query.order_by(d.c.id.desc()).limit(limit)).all()
            return _with_attempts(connection, rows)


# Helpers.


def _checked_event_types(event_types: Sequence[str] | None) -> tuple[str, ...] | None:
    """Raises: UnknownWebhookEventType."""
    if event_types is None:
        return None
    unknown = sorted(set(event_types) - EVENT_TYPES.keys())
    if unknown or not event_types:
        raise UnknownWebhookEventType(
            f"unknown event types: {', '.join(unknown)}" if unknown
            else "give at least one event type, or null for all of them"
        )
    return tuple(sorted(set(event_types)))


def _status_change(current: WebhookEndpoint, enabled: bool, *, url_changed: bool):
    if enabled is False and current.enabled:
        return {"status": EndpointStatus.DISABLED, "disabled_reason": "merchant"}
    if enabled is True and not current.enabled:
        return {"status": EndpointStatus.ACTIVE, "disabled_reason": None}
    if url_changed and current.status == EndpointStatus.FAILING:
        return {"status": EndpointStatus.ACTIVE}
    return {}


def _require_room(connection: Connection, merchant_id: UUID) -> None:
    """Raises: WebhookEndpointLimitReached."""
    # The merchant's row lock makes concurrent registrations count one after the other.
    connection.execute(select(merchants.c.id).where(merchants.c.id == merchant_id)
                       .with_for_update())
    count = connection.execute(
        select(func.count()).select_from(e).where(e.c.merchant_id == merchant_id)
    ).scalar_one()
    if count >= ENDPOINTS_PER_MERCHANT_MAX:
        raise WebhookEndpointLimitReached(
            f"a merchant has at most {ENDPOINTS_PER_MERCHANT_MAX} webhook endpoints")


def _interested_endpoints(connection: Connection, merchant_id: UUID, event: Event) -> list[UUID]:
    query = select(e.c.id).where(
        e.c.merchant_id == merchant_id,
        e.c.status != EndpointStatus.DISABLED,
        or_(e.c.event_types.is_(None), e.c.event_types.any_() == event.event_type),
    )
    if event.event_type == ENDPOINT_FAILING:
        # Not to the failing endpoint itself: its own failure would feed on itself.
        failing_id = _uuid_or_none(event.payload.get("endpoint_id"))
        if failing_id is not None:
            query = query.where(e.c.id != failing_id)
    return list(connection.execute(query.order_by(e.c.id)).scalars())


def _new_delivery(
    endpoint_id: UUID, merchant_id: UUID, event_id: UUID, event_type: str,
    payload: dict[str, Any], now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid7(), "endpoint_id": endpoint_id, "merchant_id": merchant_id,
        "event_id": event_id, "event_type": event_type, "payload": payload,
        "status": DeliveryStatus.PENDING, "attempt_count": 0, "next_attempt_at": now,
        "created_at": now, "updated_at": now,
    }


def _manual_request(
    connection: Connection, merchant_id: UUID, delivery_id: UUID, now: datetime
) -> delivery.Outgoing:
    """What a redelivery sends. Raises: WebhookDeliveryNotFound, WebhookEndpointDisabled."""
    row = connection.execute(
        select(d.c.event_id, d.c.payload, e).join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.id == delivery_id, d.c.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise WebhookDeliveryNotFound()
    if row.status == EndpointStatus.DISABLED:  # the endpoint's status
        raise WebhookEndpointDisabled()
    return delivery.outgoing(row, row.event_id, row.payload, now)


def _delivery(connection: Connection, merchant_id: UUID, delivery_id: UUID) -> WebhookDelivery:
    """Raises: WebhookDeliveryNotFound."""
    row = connection.execute(
        select(d).where(d.c.id == delivery_id, d.c.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise WebhookDeliveryNotFound()
    return _with_attempts(connection, [row])[0]


def _load(
    connection: Connection, merchant_id: UUID, endpoint_id: UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    """Raises: WebhookEndpointNotFound."""
    query = select(e).where(e.c.id == endpoint_id, e.c.merchant_id == merchant_id)
    row = connection.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise WebhookEndpointNotFound()
    return _endpoint_of(row)


def _endpoint_of(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        row.id, row.merchant_id, row.url, row.description,
        tuple(row.event_types) if row.event_types is not None else None,
        EndpointStatus(row.status), row.disabled_reason, row.previous_secret_expires_at,
        row.created_at, row.updated_at,
    )


def _with_attempts(connection: Connection, rows: Iterable[Any]) -> list[WebhookDelivery]:
    rows = list(rows)
    attempts: dict[UUID, list[WebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        a = webhook_attempts
        newest = (
            select(a, func.row_number().over(partition_by=a.c.delivery_id,
                                             order_by=a.c.id.desc()).label("rank"))
            .where(a.c.delivery_id.in_(attempts.keys())).subquery()
        )
        for attempt in connection.execute(
            select(newest).where(newest.c.rank <= ATTEMPTS_SHOWN_MAX).order_by(newest.c.id)
        ):
            attempts[attempt.delivery_id].append(WebhookAttempt(
                attempt.id, attempt.trigger, attempt.attempted_at, attempt.status_code,
                attempt.error, attempt.latency_ms,
            ))
    return [
        WebhookDelivery(
            row.id, row.endpoint_id, row.event_id, row.event_type, row.payload,
            DeliveryStatus(row.status), row.attempt_count, row.next_attempt_at,
            row.last_attempt_at, row.last_status_code, row.last_error, row.created_at,
            tuple(attempts[row.id]),
        )
        for row in rows
    ]


def _uuid_or_none(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None
