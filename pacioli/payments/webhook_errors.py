"""Expected rejections of merchant webhook requests, each with a stable code.

The URL's own rejections (`invalid_webhook_url`, `webhook_url_not_allowed`) come from
the guard in pacioli/gateways/webhooks.py.
"""

from __future__ import annotations

from pacioli.ledger.domain.errors import InvalidCommand, NotFound, Rejected


class WebhookEndpointNotFound(NotFound):
    """No such webhook endpoint for this merchant."""

    code = "webhook_endpoint_not_found"


class WebhookDeliveryNotFound(NotFound):
    """No such webhook delivery for this merchant."""

    code = "webhook_delivery_not_found"


class UnknownWebhookEventType(InvalidCommand):
    """Endpoints subscribe to event types of the webhook catalog (docs/webhooks.md)."""

    code = "unknown_webhook_event_type"


class InvalidGracePeriod(InvalidCommand):
    """The old secret's grace period is between zero and the configured maximum."""

    code = "invalid_grace_period"


class WebhookEndpointLimitReached(Rejected):
    """The merchant has as many webhook endpoints as it may have."""

    code = "webhook_endpoint_limit_reached"


class WebhookEndpointDisabled(Rejected):
    """The endpoint is disabled; enable it before sending to it."""

    code = "webhook_endpoint_disabled"
