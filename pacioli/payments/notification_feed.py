"""A user's side of notifications: the feed (list, unread count, mark read) and settings.

Every function takes the user's id and touches only that user's rows: another user's
notification is not found, exactly as one that does not exist.

Settings are low-balance thresholds per currency. A user's own threshold replaces the
configured default for that currency (`notification_low_balance_default_minor`); zero
turns the alert off (a wallet cannot go below zero). Changing a threshold re-arms the
alert, so the next debit is judged against the new value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.config import get_settings
from pacioli.payments import records
from pacioli.payments.notification_errors import InvalidNotificationSettings, NotificationNotFound
from pacioli.payments.notification_tables import low_balance_alerts, notifications

# A user sets thresholds for at most this many currencies.
THRESHOLD_CURRENCIES_MAX = 32


@dataclass(frozen=True, slots=True)
class Notification:
    id: UUID
    user_id: UUID
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


def list_notifications(
    engine: Engine, user_id: UUID, *, unread_only: bool = False, limit: int = 50,
    starting_after: UUID | None = None,
) -> list[Notification]:
    """The user's notifications, newest first, after the cursor `starting_after`."""
    t = notifications
    wanted = [t.c.user_id == user_id] + ([t.c.read_at.is_(None)] if unread_only else [])
    query = records.newest_first(t, *wanted, limit=limit, starting_after=starting_after)
    with engine.connect() as connection:
        return [_notification(row) for row in connection.execute(query)]


def unread_count(engine: Engine, user_id: UUID) -> int:
    t = notifications
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(t.c.user_id == user_id, t.c.read_at.is_(None))
        ).scalar_one()


def mark_read(
    engine: Engine, user_id: UUID, notification_id: UUID, *, now: datetime | None = None
) -> Notification:
    """Mark one notification read (a read one keeps its first read time).

    Raises: NotificationNotFound.
    """
    t = notifications
    with engine.begin() as connection:
        row = connection.execute(
            update(t).where(t.c.id == notification_id, t.c.user_id == user_id)
            .values(read_at=func.coalesce(t.c.read_at, now or datetime.now(UTC)))
            .returning(t)
        ).first()
    if row is None:
        raise NotificationNotFound(f"no notification {notification_id}")
    return _notification(row)


def mark_all_read(engine: Engine, user_id: UUID, *, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; returns how many were."""
    t = notifications
    with engine.begin() as connection:
        return connection.execute(
            update(t).where(t.c.user_id == user_id, t.c.read_at.is_(None))
            .values(read_at=now or datetime.now(UTC))
        ).rowcount


def low_balance_thresholds(
    engine: Engine, user_id: UUID, defaults: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The thresholds in force for the user: the defaults, overridden by the user's own."""
    t = low_balance_alerts
    with engine.connect() as connection:
        own = connection.execute(
            select(t.c.currency, t.c.threshold_minor)
            .where(t.c.user_id == user_id, t.c.threshold_minor.is_not(None))
        )
        thresholds = {**_defaults(defaults), **{row.currency: row.threshold_minor for row in own}}
    return dict(sorted(thresholds.items()))


def set_low_balance_thresholds(
    engine: Engine, user_id: UUID, thresholds: Mapping[str, int],
    defaults: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Replace the user's own thresholds; a currency left out goes back to the default.

    Raises: InvalidNotificationSettings.
    """
    _check_thresholds(thresholds)
    t = low_balance_alerts
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            update(t).where(t.c.user_id == user_id, t.c.threshold_minor.is_not(None),
                            t.c.currency.not_in(list(thresholds)))
            .values(threshold_minor=None, alerted_at=None, updated_at=now)
        )
        for currency, threshold_minor in thresholds.items():
            upsert = insert(t).values(user_id=user_id, currency=currency,
                                      threshold_minor=threshold_minor, updated_at=now)
            # Only a changed threshold is written, and writing it re-arms the alert.
            changed = t.c.threshold_minor.is_distinct_from(upsert.excluded.threshold_minor)
            connection.execute(upsert.on_conflict_do_update(
                index_elements=[t.c.user_id, t.c.currency],
                set_={"threshold_minor": upsert.excluded.threshold_minor, "alerted_at": None,
                      "updated_at": now},
                where=changed,
            ))
    return low_balance_thresholds(engine, user_id, defaults)


def _check_thresholds(thresholds: Mapping[str, int]) -> None:
    if len(thresholds) > THRESHOLD_CURRENCIES_MAX:
        raise InvalidNotificationSettings(
            f"at most {THRESHOLD_CURRENCIES_MAX} currencies may have a low-balance threshold"
        )
    for currency, threshold_minor in thresholds.items():
        if type(threshold_minor) is not int or threshold_minor < 0:
            raise InvalidNotificationSettings(
                f"the {currency} threshold must be zero or a positive number of minor units"
            )


def _defaults(defaults: Mapping[str, int] | None) -> dict[str, int]:
    if defaults is None:
        defaults = get_settings().notification_low_balance_default_minor
    return dict(defaults)


def _notification(row) -> Notification:
    return Notification(
        id=row.id, user_id=row.user_id, kind=row.kind, title=row.title, body=row.body,
        data=row.data, created_at=row.created_at, read_at=row.read_at,
    )
