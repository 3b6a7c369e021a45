"""Notifications on the wire: the feed's items, the unread count and the user's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.ledger.domain.errors import UnknownAsset
from pacioli.payments.notification_feed import THRESHOLD_CURRENCIES_MAX, Notification


class NotificationPublic(BaseModel):
    id: UUID
    kind: str = Field(description="What it is about: money_received, low_balance, bill_due,"
                      " new_login ... (docs/notifications.md lists them).")
    title: str
    body: str
    data: dict[str, Any] = Field(description="Ids and amounts (strings of minor units) for "
                                 "linking to what the notification is about.")
    created_at: datetime
    read_at: datetime | None
    read: bool

    @classmethod
    def of(cls, notification: Notification) -> NotificationPublic:
        return cls(
            id=notification.id, kind=notification.kind, title=notification.title,
            body=notification.body, data=notification.data,
            created_at=notification.created_at, read_at=notification.read_at,
            read=notification.read_at is not None,
        )


class UnreadCountPublic(BaseModel):
    unread: int


class ReadAllPublic(BaseModel):
    marked_read: int = Field(description="How many unread notifications were marked read.")


class NotificationSettingsPublic(BaseModel):
    low_balance_thresholds: dict[str, str] = Field(
        description="Per currency, the available balance below which a low-balance alert "
        "is sent (decimal strings in major units; the default where the user set none)."
    )

    @classmethod
    def of(cls, thresholds: dict[str, int], scales: AssetScales) -> NotificationSettingsPublic:
        shown = {}
        for currency, threshold_minor in thresholds.items():
            try:
                shown[currency] = scales.to_major(threshold_minor, currency)
            except UnknownAsset:
                continue  # A default configured for a currency the ledger does not have.
        return cls(low_balance_thresholds=shown)


class NotificationSettingsPut(RequestModel):
    low_balance_thresholds: dict[StrictStr, AmountStr] = Field(
        max_length=THRESHOLD_CURRENCIES_MAX,
        description="The user's own thresholds, replacing any set before; a currency left "
        "out goes back to the default, and \"0\" turns its alert off.",
        examples=[{"USD": "25.00"}],
    )
