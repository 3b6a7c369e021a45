"""Receiving gateway callbacks: verify, store once, hand to the registered handlers.

`record_callback` is what `POST /v1/gateways/{name}/callbacks` calls. It checks the
signature (gateways/signing.py), parses the event and inserts it into `gateway_events`,
unique on (gateway, event_id), so a callback delivered twice is stored once. Handlers
registered with `register_handler(prefix, fn)` then see each event until one run of them
succeeds: an event is marked handled only after every matching handler returned, and a
handler that raises leaves it unhandled, so the gateway's redelivery runs it again.
Handlers are therefore at-least-once and must be idempotent (derive ledger idempotency
keys from the gateway reference and event, e.g. `f"topup:{payment_id}:capture"`).

Out-of-order arrival: every event carries the gateway object's `sequence` (1, 2, 3 ...
per reference, assigned by the gateway as the object changes) and its own `occurred_at`.
The rule: apply an event only if it moves your record forward, i.e. its sequence is
higher than the last one you applied for that reference; `is_superseded(engine, event)`
tells whether a later event for the same reference has already been stored. A flow that
also keeps its own state machine (pending -> authorized -> captured) refuses backwards
moves on its own; `fetch_status` on the gateway is the final word when in doubt.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    and_,
    exists,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.gateways.base import DeclineCode, GatewayStatus, InvalidCallback, OperationKind
from pacioli.gateways.signing import SIGNATURE_HEADER, verify

log = logging.getLogger(__name__)

# How long one receiver may run an event's handlers before another may try again.
HANDLING_LEASE = timedelta(seconds=60)

metadata = MetaData()

gateway_events = Table(
    "gateway_events",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("gateway", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("gateway_reference", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=True),
    Column("handling_until", DateTime(timezone=True), nullable=True),
    UniqueConstraint("gateway", "event_id", name="uq_gateway_events_gateway_event_id"),
    Index("ix_gateway_events_reference", "gateway", "gateway_reference", "sequence"),
)


class EventBody(BaseModel):
    """The JSON body of a callback, as every Pacioli gateway adapter sends it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: str
    type: str
    kind: OperationKind
    gateway_reference: str
    parent_reference: str | None = None
    status: GatewayStatus
    decline_code: DeclineCode | None = None
    amount_minor: int = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    sequence: int = Field(ge=1)
    occurred_at: datetime


@dataclass(frozen=True)
class GatewayEvent:
    """One callback event about one gateway object (payment, refund or payout)."""

    gateway: str
    event_id: str
    event_type: str
    kind: OperationKind
    reference: str
    status: GatewayStatus
    decline_code: DeclineCode | None
    amount_minor: int
    currency: str
    sequence: int
    occurred_at: datetime
    parent_reference: str | None = None


@dataclass(frozen=True)
class CallbackReceipt:
    """What `record_callback` did: the event, and whether it was stored for the first time."""

    event: GatewayEvent
    new: bool

    @property
    def duplicate(self) -> bool:
        return not self.new


Handler = Callable[[GatewayEvent], None]


class HandlerRegistry:
    """Handlers by event type prefix (`"payment."`, `"payout.failed"`, or `""` for all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[tuple[str, Handler]] = []

    def register(self, event_type_prefix: str, handler: Handler) -> Callable[[], None]:
        """Add a handler; return a function that removes it again."""
        entry = (event_type_prefix, handler)
        with self._lock:
            self._handlers.append(entry)

        def unregister() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unregister

    def handlers_for(self, event_type: str) -> list[Handler]:
        with self._lock:
            return [fn for prefix, fn in self._handlers if event_type.startswith(prefix)]


# The process's registry: payment flows register here when they are set up.
handlers = HandlerRegistry()


def register_handler(event_type_prefix: str, handler: Handler) -> Callable[[], None]:
    """Run `handler` for every new event whose type starts with the prefix (at least once)."""
    return handlers.register(event_type_prefix, handler)


def parse_event(gateway: str, body: bytes) -> GatewayEvent:
    """The event in a callback body, or InvalidCallback."""
    try:
        parsed = EventBody.model_validate_json(body)
    except ValidationError as error:
        # Name the fields at fault, never the values (a body may hold anything).
        fields = [".".join(map(str, e["loc"])) for e in error.errors() if e["loc"]]
        where = ": " + ", ".join(fields) if fields else ""
        raise InvalidCallback(f"The callback body is not a gateway event{where}.") from None
    if parsed.occurred_at.tzinfo is None:
        raise InvalidCallback("The event's occurred_at needs a time zone.")
    return GatewayEvent(
        gateway=gateway, event_id=parsed.id, event_type=parsed.type, kind=parsed.kind,
        reference=parsed.gateway_reference, status=parsed.status,
        decline_code=parsed.decline_code, amount_minor=parsed.amount_minor,
        currency=parsed.currency, sequence=parsed.sequence, occurred_at=parsed.occurred_at,
        parent_reference=parsed.parent_reference,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def record_callback(
    engine: Engine, gateway_name: str, headers: Mapping[str, str], body: bytes,
    secret: str, now: datetime, *, registry: HandlerRegistry | None = None,
) -> CallbackReceipt:
    """Verify a callback, store its event once, and run the handlers for it.

    Raises InvalidSignature (bad, missing or stale signature) or InvalidCallback (a
    signed body that is not an event) before anything is written. A handler's exception
    propagates after the event was stored; the event stays unhandled for the next
    delivery.
    """
    verify(secret, body, _header(headers, SIGNATURE_HEADER), now)
    event = parse_event(gateway_name, body)
    new = _store(engine, event, json.loads(body), now)
    if _claim(engine, event, now):
        _dispatch(engine, event, registry or handlers, now)
    return CallbackReceipt(event=event, new=new)


def _store(engine: Engine, event: GatewayEvent, payload: dict[str, Any], now: datetime) -> bool:
    statement = (
        pg_insert(gateway_events)
        .values(
            gateway=event.gateway, event_id=event.event_id, event_type=event.event_type,
            gateway_reference=event.reference, sequence=event.sequence,
            occurred_at=event.occurred_at, payload=payload, received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["gateway", "event_id"])
        .returning(gateway_events.c.id)
    )
    with engine.begin() as connection:
        return connection.execute(statement).first() is not None


def _event_row(event: GatewayEvent):
    return and_(
        gateway_events.c.gateway == event.gateway, gateway_events.c.event_id == event.event_id
    )


def _claim(engine: Engine, event: GatewayEvent, now: datetime) -> bool:
    """Take the lease on running the event's handlers, unless done or leased elsewhere."""
    statement = (
        update(gateway_events)
        .where(
            _event_row(event),
            gateway_events.c.handled_at.is_(None),
            (gateway_events.c.handling_until.is_(None))
            | (gateway_events.c.handling_until < now),
        )
        .values(handling_until=now + HANDLING_LEASE)
        .returning(gateway_events.c.id)
    )
    with engine.begin() as connection:
        return connection.execute(statement).first() is not None


def _dispatch(
    engine: Engine, event: GatewayEvent, registry: HandlerRegistry, now: datetime
) -> None:
    try:
        for handler in registry.handlers_for(event.event_type):
            handler(event)
    except Exception:
        # Give the lease back so the gateway's next delivery runs the handlers again.
        with engine.begin() as connection:
            connection.execute(
                update(gateway_events).where(_event_row(event)).values(handling_until=None)
            )
        log.warning("gateway event handler failed",
                    extra={"gateway": event.gateway, "event_id": event.event_id})
        raise
    with engine.begin() as connection:
        connection.execute(
            update(gateway_events).where(_event_row(event))
            .values(handled_at=now, handling_until=None)
        )


def is_superseded(engine: Engine, event: GatewayEvent) -> bool:
    """Whether a later event (higher sequence) for the same gateway object is stored."""
    later = exists().where(
        gateway_events.c.gateway == event.gateway,
        gateway_events.c.gateway_reference == event.reference,
        gateway_events.c.sequence > event.sequence,
    )
    with engine.connect() as connection:
        return bool(connection.execute(select(later)).scalar())


def latest_event(engine: Engine, gateway: str, reference: str) -> GatewayEvent | None:
    """The stored event with the highest sequence for a gateway object, or None."""
    statement = (
        select(gateway_events.c.gateway, gateway_events.c.payload)
        .where(gateway_events.c.gateway == gateway,
               gateway_events.c.gateway_reference == reference)
        .order_by(gateway_events.c.sequence.desc(), gateway_events.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).first()
    if row is None:
        return None
    return parse_event(row.gateway, json.dumps(row.payload).encode())
