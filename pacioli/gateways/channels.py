"""Notification channels: email, SMS and push, each behind the `NotificationChannel` Protocol.

A channel takes one message for one recipient and either accepts it or raises
`ChannelError`; it keeps no state of its own about retries. The caller
(`pacioli.payments.notification_delivery`) records every attempt in the database, retries
a failed channel on its own schedule, and never holds a database transaction open while
a channel sends.

The default adapter for every channel is `LogChannel`: it writes one log line per message
and sends nothing, so a fresh installation works without an email, SMS or push provider.
A deployment picks an adapter per channel with the settings
`PACIOLI_NOTIFICATION_{EMAIL,SMS,PUSH}_CHANNEL`; `channel_from_name` is the one place that
turns those names into adapters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable
from uuid import UUID

log = logging.getLogger(__name__)


class Channel(StrEnum):
    """A way to reach a user outside the app (the in-app feed is not a channel)."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message goes to: the user, and the addresses a channel may need.

    Push reaches a user by id (their devices are the push provider's concern); email and
    SMS need the user's own address, which is None when the user has none.
    """

    user_id: UUID
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One notification as a channel sends it."""

    notification_id: UUID
    kind: str
    title: str
    body: str


class ChannelError(Exception):
    """The channel did not accept the message; sending it again later may succeed."""


@runtime_checkable
class NotificationChannel(Protocol):
    """Sends one message to one recipient."""

    def send(self, recipient: Recipient, message: ChannelMessage) -> None:
        """Hand the message to the provider. Raises: ChannelError."""
        ...


class LogChannel:
    """A channel that only logs that it would have sent (the default for every channel).

    The log line names the notification, its kind and the user's id: enough to follow a
    delivery, and no address, name or amount.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, recipient: Recipient, message: ChannelMessage) -> None:
        log.info(
            "notification %s (%s) for user %s via %s (log-only channel: nothing sent)",
            message.notification_id, message.kind, recipient.user_id, self.channel,
            extra={"notification_id": str(message.notification_id),
                   "channel": str(self.channel)},
        )


# Adapter names a setting may give, and how to build each for a channel.
ADAPTERS = {"log": LogChannel}


def channel_from_name(adapter: str, channel: Channel) -> NotificationChannel:
    """The adapter named `adapter` for `channel`. Raises: ValueError (unknown name)."""
    build = ADAPTERS.get(adapter)
    if build is None:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"no notification channel adapter {adapter!r} (known: {known})")
    return build(channel)
