"""Sending notifications through the outside channels, each retried on its own.

A notification has one `notification_deliveries` row per outside channel of its kind.
`NotificationDelivery.deliver_due(now, limit)` (a scheduled job) sends the due ones:

1. **Claim**, in a short transaction: pending rows whose `next_attempt_at` has come, with
   `FOR UPDATE SKIP LOCKED` (two workers claim different rows), counting the attempt and
   pushing `next_attempt_at` a lease ahead, so a worker that dies mid-send leaves the row
   to be claimed again once the lease ends.
2. **Send**, with no transaction open, one channel call per row; a `ChannelError` (or any
   exception of a broken adapter) fails that row only.
3. **Record** each outcome with an update conditional on the claim (still pending, same
   attempt count): `sent`; or pending again after an exponential backoff; or `failed`
   after the last allowed attempt.

A channel is sent a message at least once: a worker that dies between sending and
recording sends it again after the lease. Channels are notifications, not money, so a
rare duplicate is the price of never losing one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine, select, update

from pacioli.config import Settings, get_settings
from pacioli.gateways.channels import (
    Channel,
    ChannelError,
    ChannelMessage,
    NotificationChannel,
    Recipient,
    channel_from_name,
)
from pacioli.ledger.domain.errors import invariant
from pacioli.payments.notification_tables import notification_deliveries, notifications
from pacioli.payments.users import users

log = logging.getLogger(__name__)

# A claimed delivery is left alone this long; a send must finish well within it.
CLAIM_LEASE = timedelta(minutes=5)
CLAIM_LIMIT_MAX = 500
LAST_ERROR_LENGTH_MAX = 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failing channel is retried."""

    attempts_max: int = 8
    base_seconds: int = 30
    cap_seconds: int = 6 * 3600

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RetryPolicy:
        settings = settings or get_settings()
        return cls(settings.notification_delivery_attempts_max,
                   settings.notification_retry_base_seconds,
                   settings.notification_retry_cap_seconds)

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base, 2 base, 4 base ... cap."""
        invariant(attempts >= 1, "a delay follows a failed attempt")
        exponent = min(attempts - 1, 32)  # 2**32 base seconds is past any cap
        return timedelta(seconds=min(self.cap_seconds, self.base_seconds * 2**exponent))

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.attempts_max


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one run of `deliver_due` did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class _Claim:
    notification_id: UUID
    channel: Channel
    attempts: int  # including this one


def channels_from_settings(settings: Settings | None = None) -> dict[Channel, NotificationChannel]:
    """The adapter the settings name for each channel. Raises: ValueError (unknown name)."""
    settings = settings or get_settings()
    return {
        Channel.EMAIL: channel_from_name(settings.notification_email_channel, Channel.EMAIL),
        Channel.SMS: channel_from_name(settings.notification_sms_channel, Channel.SMS),
        Channel.PUSH: channel_from_name(settings.notification_push_channel, Channel.PUSH),
    }


class NotificationDelivery:
    """Sends due channel deliveries: `deliver_due(now, limit)`, safe to run concurrently."""

    def __init__(
        self, engine: Engine, channels: Mapping[Channel, NotificationChannel], *,
        policy: RetryPolicy | None = None,
    ) -> None:
        invariant(set(channels) == set(Channel), "every channel needs an adapter")
        self._engine = engine
        self._channels = dict(channels)
        self._policy = policy or RetryPolicy.from_settings()

    def deliver_due(self, now: datetime, limit: int = 100) -> DeliveryReport:
        """Send up to `limit` deliveries due at `now`; each channel's outcome is its own."""
        claims = self._claim(now, min(limit, CLAIM_LIMIT_MAX))
        if not claims:
            return DeliveryReport()
        messages = self._messages({claim.notification_id for claim in claims})
        counts = {"sent": 0, "pending": 0, "failed": 0}
        for claim in claims:
            recipient, message = messages[claim.notification_id]
            error, retryable = self._send(claim, recipient, message)
            counts[self._record(claim, error, now, retryable=retryable)] += 1
        return DeliveryReport(counts["sent"], counts["pending"], counts["failed"])

    def _claim(self, now: datetime, limit: int) -> list[_Claim]:
        d = notification_deliveries
        due = (
            select(d.c.notification_id, d.c.channel)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at).limit(limit)
            .with_for_update(skip_locked=True).cte("due")
        )
        with self._engine.begin() as connection:
            rows = connection.execute(
                update(d)
                .where(d.c.notification_id == due.c.notification_id,
                       d.c.channel == due.c.channel)
                .values(attempts=d.c.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
                .returning(d.c.notification_id, d.c.channel, d.c.attempts)
            ).all()
        return [_Claim(row.notification_id, Channel(row.channel), row.attempts) for row in rows]

    def _messages(self, ids: set[UUID]) -> dict[UUID, tuple[Recipient, ChannelMessage]]:
        n = notifications
        query = (
            select(n.c.id, n.c.user_id, n.c.kind, n.c.title, n.c.body, users.c.email,
                   users.c.phone)
            .select_from(n.outerjoin(users, users.c.id == n.c.user_id))
            .where(n.c.id.in_(ids))
        )
        with self._engine.connect() as connection:
            return {
                row.id: (Recipient(row.user_id, row.email, row.phone),
                         ChannelMessage(row.id, row.kind, row.title, row.body))
                for row in connection.execute(query)
            }

    def _send(
        self, claim: _Claim, recipient: Recipient, message: ChannelMessage
    ) -> tuple[str | None, bool]:
        """Send one delivery (no transaction is open): (the error or None, retryable)."""
        # The user removed the address since the notification was made: retrying won't help.
        if claim.channel is Channel.EMAIL and recipient.email is None:
            return "the user has no email address", False
        if claim.channel is Channel.SMS and recipient.phone is None:
            return "the user has no phone number", False
        try:
            self._channels[claim.channel].send(recipient, message)
        except ChannelError as error:
            return f"{type(error).__name__}: {error}"[:LAST_ERROR_LENGTH_MAX], True
        except Exception as error:  # A broken adapter fails its own delivery, not the run.
            log.exception("notification channel %s raised", claim.channel)
            return f"{type(error).__name__}: {error}"[:LAST_ERROR_LENGTH_MAX], True
        return None, True

    def _record(
        self, claim: _Claim, error: str | None, now: datetime, *, retryable: bool
    ) -> str:
        """Store the outcome of the claimed attempt; returns the delivery's new status."""
        if error is None:
            status, values = "sent", {"status": "sent", "sent_at": now, "last_error": None}
        elif not retryable or self._policy.gives_up_after(claim.attempts):
            status, values = "failed", {"status": "failed", "last_error": error}
        else:
            retry_at = now + self._policy.delay_after(claim.attempts)
            status, values = "pending", {"next_attempt_at": retry_at, "last_error": error}
        if error is not None:
            log.warning("notification %s via %s: attempt %d failed (%s)",
                        claim.notification_id, claim.channel, claim.attempts, status)
        d = notification_deliveries
        with self._engine.begin() as connection:
            connection.execute(
                update(d).where(
                    d.c.notification_id == claim.notification_id, d.c.channel == claim.channel,
                    d.c.status == "pending", d.c.attempts == claim.attempts,
                ).values(**values)
            )
        return status
