"""Webhook endpoints: registration, idempotency, limits, updates, deletion, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pacioli.gateways.webhooks import (
    InvalidWebhookUrl,
    TargetPolicy,
    WebhookUrlNotAllowed,
)
from pacioli.ledger.domain.errors import IdempotencyKeyReused
from pacioli.payments.webhook_errors import (
    UnknownWebhookEventType,
    WebhookEndpointLimitReached,
    WebhookEndpointNotFound,
)
from pacioli.payments.webhook_tables import webhook_endpoints
from pacioli.payments.webhooks import (
    ENDPOINTS_PER_MERCHANT_MAX,
    EndpointStatus,
    IssuedSecret,
    WebhookEndpoint,
)
from tests.integration.webhook_support import (
    deliveries_of,
    endpoint_row,
    key,
    make_webhooks,
    new_merchant,
    qr_payment_event,
    remove_endpoints,
)

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def webhooks(engine):
    webhooks = make_webhooks(engine)
    yield webhooks
    webhooks.close()


@pytest.fixture
def merchant_id(engine):
    merchant_id = new_merchant(engine)
    yield merchant_id
    remove_endpoints(engine, merchant_id)


def test_registration_issues_a_secret_shown_once_and_stored_for_signing(
    webhooks, merchant_id, engine
):
    written = webhooks.register_endpoint(
        merchant_id, url=URL, event_types=["settlement.paid", "qr_payment.succeeded"],
        description="orders", write_key=key(),
    )

    issued = written.value
    assert isinstance(issued, IssuedSecret) and not written.replayed
    assert issued.secret.startswith("whsec_")
    endpoint = issued.endpoint
    assert (endpoint.url, endpoint.description, endpoint.status, endpoint.enabled) == \
        (URL, "orders", EndpointStatus.ACTIVE, True)
    assert endpoint.event_types == ("qr_payment.succeeded", "settlement.paid")
    assert endpoint_row(engine, endpoint.id).secret == issued.secret
    assert webhooks.get_endpoint(merchant_id, endpoint.id) == endpoint
    assert webhooks.list_endpoints(merchant_id) == [endpoint]


def test_a_replayed_registration_returns_the_endpoint_without_its_secret(
    webhooks, merchant_id
):
    write_key = key()
    first = webhooks.register_endpoint(merchant_id, url=URL, write_key=write_key)
    again = webhooks.register_endpoint(merchant_id, url=URL, write_key=write_key)

    assert again.replayed and isinstance(again.value, WebhookEndpoint)
    assert again.value == first.value.endpoint
    assert len(webhooks.list_endpoints(merchant_id)) == 1
    with pytest.raises(IdempotencyKeyReused):
        webhooks.register_endpoint(merchant_id, url=URL + "/other", write_key=write_key)


def test_urls_are_checked_at_registration(engine, merchant_id):
    strict = make_webhooks(engine, policy=TargetPolicy())
    try:
        with pytest.raises(InvalidWebhookUrl):
            strict.register_endpoint(merchant_id, url="http://hooks.example.com/x",
                                     write_key=key())
        with pytest.raises(WebhookUrlNotAllowed):
            strict.register_endpoint(merchant_id, url="https://127.0.0.1/x", write_key=key())
        with pytest.raises(WebhookUrlNotAllowed):
            strict.register_endpoint(merchant_id, url="https://localhost:8443/x",
                                     write_key=key())
        with pytest.raises(WebhookUrlNotAllowed):
            strict.register_endpoint(merchant_id, url="https://[::1]/x", write_key=key())
    finally:
        strict.close()
    assert strict.list_endpoints(merchant_id) == []


def test_unknown_event_types_are_refused(webhooks, merchant_id):
    with pytest.raises(UnknownWebhookEventType, match="p2p_payment.succeeded"):
        webhooks.register_endpoint(merchant_id, url=URL, event_types=["p2p_payment.succeeded"],
                                   write_key=key())
    assert webhooks.list_endpoints(merchant_id) == []


def test_a_merchant_has_a_bounded_number_of_endpoints(webhooks, merchant_id):
    for _ in range(ENDPOINTS_PER_MERCHANT_MAX):
        webhooks.register_endpoint(merchant_id, url=URL, write_key=key())
    with pytest.raises(WebhookEndpointLimitReached):
        webhooks.register_endpoint(merchant_id, url=URL, write_key=key())
    assert len(webhooks.list_endpoints(merchant_id)) == ENDPOINTS_PER_MERCHANT_MAX


def test_updates_change_only_what_is_given(webhooks, merchant_id):
    endpoint = webhooks.register_endpoint(
        merchant_id, url=URL, event_types=["settlement.paid"], description="d", write_key=key()
    ).value.endpoint

    moved = webhooks.update_endpoint(merchant_id, endpoint.id, url=URL + "/v2")
    assert (moved.url, moved.event_types, moved.description) == \
        (URL + "/v2", ("settlement.paid",), "d")
    everything = webhooks.update_endpoint(merchant_id, endpoint.id, event_types=None,
                                          description=None)
    assert (everything.event_types, everything.description) == (None, None)
    assert everything.updated_at >= endpoint.updated_at


def test_disabling_and_enabling_an_endpoint(webhooks, merchant_id, engine):
    endpoint = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint

    off = webhooks.update_endpoint(merchant_id, endpoint.id, enabled=False)
    assert (off.enabled, off.status, off.disabled_reason) == \
        (False, EndpointStatus.DISABLED, "merchant")
    webhooks.handle(qr_payment_event(merchant_id))
    assert deliveries_of(engine, endpoint.id) == []

    on = webhooks.update_endpoint(merchant_id, endpoint.id, enabled=True)
    assert (on.enabled, on.status, on.disabled_reason) == (True, EndpointStatus.ACTIVE, None)
    webhooks.handle(qr_payment_event(merchant_id))
    assert len(deliveries_of(engine, endpoint.id)) == 1


def test_an_endpoint_registered_disabled_gets_nothing(webhooks, merchant_id, engine):
    endpoint = webhooks.register_endpoint(merchant_id, url=URL, enabled=False,
                                          write_key=key()).value.endpoint
    assert endpoint.status == EndpointStatus.DISABLED
    webhooks.handle(qr_payment_event(merchant_id))
    assert deliveries_of(engine, endpoint.id) == []


def test_deleting_an_endpoint_deletes_its_deliveries(webhooks, merchant_id, engine):
    endpoint = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))  # Port 9 refuses: one attempt is logged.
    assert len(deliveries_of(engine, endpoint.id)) == 1

    webhooks.delete_endpoint(merchant_id, endpoint.id)

    assert deliveries_of(engine, endpoint.id) == []
    with pytest.raises(WebhookEndpointNotFound):
        webhooks.get_endpoint(merchant_id, endpoint.id)
    with pytest.raises(WebhookEndpointNotFound):
        webhooks.delete_endpoint(merchant_id, endpoint.id)


def test_another_merchants_endpoint_is_not_found_for_anything(webhooks, merchant_id, engine):
    endpoint = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    stranger = new_merchant(engine)

    for attempt in (
        lambda: webhooks.get_endpoint(stranger, endpoint.id),
        lambda: webhooks.update_endpoint(stranger, endpoint.id, enabled=False),
        lambda: webhooks.delete_endpoint(stranger, endpoint.id),
        lambda: webhooks.rotate_secret(stranger, endpoint.id, write_key=key()),
        lambda: webhooks.list_deliveries(stranger, endpoint.id, limit=10),
        lambda: webhooks.send_test_event(stranger, endpoint.id, write_key=key()),
    ):
        with pytest.raises(WebhookEndpointNotFound):
            attempt()
    assert webhooks.list_endpoints(stranger) == []
    assert webhooks.get_endpoint(merchant_id, endpoint.id).enabled


def test_an_event_for_one_merchant_reaches_no_other_merchants_endpoints(
    webhooks, merchant_id, engine
):
    mine = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    stranger = new_merchant(engine)
    theirs = webhooks.register_endpoint(stranger, url=URL, write_key=key()).value.endpoint
    try:
        webhooks.handle(qr_payment_event(merchant_id))
        assert len(deliveries_of(engine, mine.id)) == 1
        assert deliveries_of(engine, theirs.id) == []
    finally:
        remove_endpoints(engine, stranger)


def test_deliveries_are_listed_newest_first_a_page_at_a_time(webhooks, merchant_id):
    endpoint = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    events = [qr_payment_event(merchant_id) for _ in range(5)]
    for event in events:
        webhooks.handle(event)

    first = webhooks.list_deliveries(merchant_id, endpoint.id, limit=3)
    rest = webhooks.list_deliveries(merchant_id, endpoint.id, limit=3,
                                    starting_after=first[-1].id)

    assert [d.event_id for d in first + rest] == [e.event_id for e in reversed(events)]
    assert webhooks.list_deliveries(merchant_id, endpoint.id, limit=10,
                                    status="succeeded") == []


def test_a_new_url_heals_a_failing_endpoint_and_enabling_revives_a_gone_one(
    webhooks, merchant_id, engine
):
    failing = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    gone = webhooks.register_endpoint(merchant_id, url=URL, write_key=key()).value.endpoint
    with engine.begin() as connection:
        connection.execute(webhook_endpoints.update()
                           .where(webhook_endpoints.c.id == failing.id)
                           .values(status="failing"))
        connection.execute(webhook_endpoints.update()
                           .where(webhook_endpoints.c.id == gone.id)
                           .values(status="disabled", disabled_reason="gone"))

    assert webhooks.update_endpoint(merchant_id, failing.id, description="x").status == \
        EndpointStatus.FAILING
    assert webhooks.update_endpoint(merchant_id, failing.id, url=URL + "/new").status == \
        EndpointStatus.ACTIVE
    revived = webhooks.update_endpoint(merchant_id, gone.id, enabled=True)
    assert (revived.status, revived.disabled_reason) == (EndpointStatus.ACTIVE, None)
