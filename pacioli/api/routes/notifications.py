"""/v1/me/notifications and /v1/me/notification-settings: the caller's in-app feed (list,
unread count, mark read) and low-balance thresholds. A user sees only their own
notifications; another user's is a 404, as one that does not exist."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from pacioli.api.auth import CurrentUser, EngineDep
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.notifications import (
    NotificationPublic,
    NotificationSettingsPublic,
    NotificationSettingsPut,
    ReadAllPublic,
    UnreadCountPublic,
)
from pacioli.payments import notification_feed as feed

router = APIRouter(prefix=API_PREFIX, tags=["notifications"])


@router.get("/me/notifications", summary="The caller's notifications, newest first")
def list_notifications(
    user: CurrentUser, engine: EngineDep,
    unread: Annotated[bool, Query(description="Only unread notifications.")] = False,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[NotificationPublic]:
    rows = feed.list_notifications(engine, user.id, unread_only=unread, limit=limit + 1,
                                   starting_after=starting_after)
    return Page.of(rows, limit, NotificationPublic.of, lambda n: n.id)


@router.get("/me/notifications/unread-count", summary="How many notifications are unread")
def get_unread_count(user: CurrentUser, engine: EngineDep) -> UnreadCountPublic:
    return UnreadCountPublic(unread=feed.unread_count(engine, user.id))


@router.post("/me/notifications/read-all", summary="Mark every notification read")
def mark_all_read(user: CurrentUser, engine: EngineDep) -> ReadAllPublic:
    return ReadAllPublic(marked_read=feed.mark_all_read(engine, user.id))


@router.post("/me/notifications/{notification_id}/read", summary="Mark a notification read")
def mark_read(notification_id: UUID, user: CurrentUser, engine: EngineDep) -> NotificationPublic:
    return NotificationPublic.of(feed.mark_read(engine, user.id, notification_id))


@router.get("/me/notification-settings", summary="The caller's notification settings")
def get_settings(
    user: CurrentUser, engine: EngineDep, scales: ScalesDep
) -> NotificationSettingsPublic:
    return NotificationSettingsPublic.of(feed.low_balance_thresholds(engine, user.id), scales)


@router.put("/me/notification-settings", summary="Replace the caller's notification settings")
def put_settings(
    body: NotificationSettingsPut, user: CurrentUser, engine: EngineDep, scales: ScalesDep
) -> NotificationSettingsPublic:
    """Each threshold is a decimal string in the currency's major units; an unknown currency
    is a 422 `unknown_asset`."""
    thresholds = {
        currency: scales.to_minor(amount, currency, allow_zero=True)
        for currency, amount in body.low_balance_thresholds.items()
    }
    return NotificationSettingsPublic.of(
        feed.set_low_balance_thresholds(engine, user.id, thresholds), scales
    )
