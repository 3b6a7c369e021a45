"""Helpers for the webhook tests: a service that may call 127.0.0.1, merchants, events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from pacioli.gateways.webhooks import TargetGuard, TargetPolicy, WebhookSender
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import Event
from pacioli.payments import merchants, users
from pacioli.payments.identity_idempotency import ANONYMOUS, WriteKey
from pacioli.payments.webhook_tables import webhook_deliveries, webhook_endpoints
from pacioli.payments.webhooks import Webhooks

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# The receivers of the tests listen on 127.0.0.1 over plain http.
LOCAL = TargetPolicy(allow_private=True, allow_http=True)


def make_webhooks(engine: Engine, *, policy: TargetPolicy = LOCAL, timeout_s: float = 2.0,
                  **options: Any) -> Webhooks:
    options.setdefault("attempt_at_once", False)
    return Webhooks(engine, WebhookSender(TargetGuard(policy), timeout_s=timeout_s),
                    rng=random.Random(7), **options)


def new_merchant(engine: Engine) -> uuid.UUID:
    owner = users.sign_up(
        engine, email=f"wh-{uuid.uuid4().hex[:12]}@example.com", phone=None,
        password="a long enough password", write_key=WriteKey(ANONYMOUS, uuid.uuid4().hex),
        hasher=FAST_HASHER,
    ).value
    return merchants.register_merchant(
        engine, name="Corner Shop", owner_user_id=owner.id, approved=True,
        write_key=WriteKey(ANONYMOUS, uuid.uuid4().hex),
    ).value.merchant.id


def key() -> WriteKey:
    return WriteKey(f"merchant:{uuid.uuid4()}", uuid.uuid4().hex)


def qr_payment_event(merchant_id: uuid.UUID, amount_minor: int = 1050, **extra: Any) -> Event:
    """A `qr_payment.succeeded` event as the QR flow writes it."""
    payment_id = uuid7()
    return Event(
        event_id=uuid7(), event_type="qr_payment.succeeded", aggregate_type="qr_payment",
        aggregate_id=str(payment_id),
        payload={
            "payment_id": str(payment_id), "merchant_id": str(merchant_id),
            "payer_user_id": str(uuid.uuid4()), "amount_minor": str(amount_minor),
            "fee_minor": "31", "net_minor": str(amount_minor - 31), "currency": "USD",
            "qr_code_id": str(uuid7()), "reference": "INV-1",
            "completed_at": datetime.now(UTC).isoformat(), **extra,
        },
        created_at=datetime.now(UTC),
    )


def delivery_row(engine: Engine, delivery_id: uuid.UUID):
    with engine.connect() as connection:
        return connection.execute(
            select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        ).one()


def deliveries_of(engine: Engine, endpoint_id: uuid.UUID) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
            .order_by(webhook_deliveries.c.id)
        ).all()


def endpoint_row(engine: Engine, endpoint_id: uuid.UUID):
    with engine.connect() as connection:
        return connection.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        ).one()


def remove_endpoints(engine: Engine, merchant_id: uuid.UUID) -> None:
    """Delete a test's endpoints (and so its deliveries), so no later test's retry job
    finds them due."""
    with engine.begin() as connection:
        connection.execute(webhook_endpoints.delete()
                           .where(webhook_endpoints.c.merchant_id == merchant_id))
