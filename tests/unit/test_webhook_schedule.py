"""The retry schedule and the shape of the payload merchants receive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from pacioli.payments.webhook_delivery import (
    ATTEMPTS_MAX,
    JITTER_FRACTION_MAX,
    RETRY_DELAYS,
    body_of,
    retry_delay,
    webhook_id,
)
from pacioli.payments.webhook_errors import UnknownWebhookEventType
from pacioli.payments.webhook_events import envelope, public_data
from pacioli.payments.webhooks import _checked_event_types

SCALES = {"USD": 2, "JPY": 0, "ETH": 18}.get


def test_the_schedule_is_ten_attempts_over_about_three_days():
    assert [delay.total_seconds() for delay in RETRY_DELAYS] == [
        5, 300, 1800, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600, 14 * 3600, 30 * 3600,
    ]
    assert ATTEMPTS_MAX == 10
    total = sum(RETRY_DELAYS, timedelta())
    assert timedelta(days=2, hours=20) < total < timedelta(days=3)
    assert total * (1 + JITTER_FRACTION_MAX) < timedelta(days=3, hours=8)


def test_without_jitter_each_wait_is_the_scheduled_one():
    assert [retry_delay(n, 0.0) for n in range(1, ATTEMPTS_MAX)] == list(RETRY_DELAYS)


def test_jitter_only_lengthens_a_wait_and_by_at_most_a_tenth():
    for n, scheduled in enumerate(RETRY_DELAYS, start=1):
        longest = retry_delay(n, 0.999999)
        assert scheduled < longest <= scheduled * 1.1
        assert retry_delay(n, 0.5) == scheduled * 1.05


def test_after_the_last_attempt_there_is_no_next_one():
    assert retry_delay(ATTEMPTS_MAX, 0.0) is None
    assert retry_delay(ATTEMPTS_MAX + 3, 0.5) is None


def test_amounts_become_decimal_strings_in_major_units():
    payload = {"payment_id": "p1", "merchant_id": "m1", "amount_minor": "1050",
               "fee_minor": "31", "net_minor": "1019", "currency": "USD"}
    assert public_data(payload, SCALES) == {
        "payment_id": "p1", "merchant_id": "m1", "amount": "10.50", "fee": "0.31",
        "net": "10.19", "currency": "USD",
    }


def test_a_refund_keeps_its_returned_fee_as_a_decimal_string():
    payload = {"refund_id": "r1", "amount_minor": "500", "fee_returned_minor": "3",
               "currency": "USD"}
    assert public_data(payload, SCALES) == {"refund_id": "r1", "amount": "5.00",
                                            "fee_returned": "0.03", "currency": "USD"}


def test_amounts_follow_the_scale_of_their_currency():
    assert public_data({"amount_minor": "500", "currency": "JPY"}, SCALES)["amount"] == "500"
    assert public_data({"net_minor": "1", "currency": "ETH"}, SCALES)["net"] == \
        "0.000000000000000001"
    assert public_data({"gross_minor": 0, "currency": "USD"}, SCALES)["gross"] == "0.00"


def test_amounts_of_an_unknown_currency_or_without_one_stay_in_minor_units():
    assert public_data({"amount_minor": "7", "currency": "XYZ"}, SCALES) == \
        {"amount_minor": "7", "currency": "XYZ"}
    assert public_data({"amount_minor": "7"}, SCALES) == {"amount_minor": "7"}


def test_the_envelope_has_type_timestamp_and_data():
    at = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert envelope("qr_code.expired", at, {"qr_code_id": "q1"}, SCALES) == {
        "type": "qr_code.expired", "timestamp": "2026-11-24T20:00:00+00:00",
        "data": {"qr_code_id": "q1"},
    }


def test_the_body_is_the_same_whatever_the_order_of_the_stored_keys():
    assert body_of({"type": "t", "data": {"b": 1, "a": "é"}}) == \
        body_of({"data": {"a": "é", "b": 1}, "type": "t"}) == '{"data":{"a":"é","b":1},"type":"t"}'


def test_the_webhook_id_names_the_event():
    assert webhook_id(UUID("0193a5b2-0000-7000-8000-000000000001")) == \
        "evt_0193a5b2000070008000000000000001"


def test_event_types_are_checked_against_the_catalog_and_deduplicated():
    assert _checked_event_types(None) is None
    assert _checked_event_types(["settlement.paid", "qr_payment.succeeded",
                                 "settlement.paid"]) == ("qr_payment.succeeded",
                                                         "settlement.paid")
    with pytest.raises(UnknownWebhookEventType, match="transfer.posted"):
        _checked_event_types(["qr_payment.succeeded", "transfer.posted"])
    with pytest.raises(UnknownWebhookEventType):
        _checked_event_types([])
