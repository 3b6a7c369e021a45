"""The notification feed's expected rejections, in the ledger's families (the API's one
table maps them: InvalidCommand 422, NotFound 404)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import InvalidCommand, NotFound


class NotificationNotFound(NotFound):
    """No notification with this id is visible to the caller."""

    code = "notification_not_found"


class InvalidNotificationSettings(InvalidCommand):
    """The notification settings are malformed (too many currencies, a bad threshold)."""

    code = "validation_error"
