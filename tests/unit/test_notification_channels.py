"""Channel adapters and the delivery retry policy, without a database."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest

from pacioli.gateways.channels import (
    Channel,
    ChannelMessage,
    LogChannel,
    NotificationChannel,
    Recipient,
    channel_from_name,
)
from pacioli.ledger.domain.errors import InvariantBroken
from pacioli.payments.notification_delivery import RetryPolicy


def test_retry_delays_double_from_the_base_up_to_the_cap():
    policy = RetryPolicy(attempts_max=8, base_seconds=30, cap_seconds=600)

    delays = [policy.delay_after(attempts) for attempts in range(1, 8)]

    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480, 600, 600)]
    assert policy.delay_after(10_000) == timedelta(seconds=600)


def test_the_policy_gives_up_at_the_last_allowed_attempt():
    policy = RetryPolicy(attempts_max=3)

    assert [policy.gives_up_after(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    with pytest.raises(InvariantBroken):
        policy.delay_after(0)


def test_the_log_channel_logs_ids_but_no_address_or_text(caplog):
    channel = channel_from_name("log", Channel.EMAIL)
    recipient = Recipient(uuid.uuid4(), email="ada@example.com", phone="+15551234567")
    message = ChannelMessage(uuid.uuid4(), "money_received", "You received 5.00 USD",
                             "Ada sent you 5.00 USD.")

    with caplog.at_level(logging.INFO, logger="pacioli.gateways.channels"):
        channel.send(recipient, message)

    assert isinstance(channel, LogChannel) and isinstance(channel, NotificationChannel)
    (record,) = caplog.records
    line = record.getMessage()
    assert str(message.notification_id) in line and str(recipient.user_id) in line
    assert "ada@example.com" not in line and "+1555" not in line and "Ada" not in line


def test_an_unknown_adapter_name_is_refused():
    with pytest.raises(ValueError, match="no notification channel adapter 'carrier-pigeon'"):
        channel_from_name("carrier-pigeon", Channel.SMS)
