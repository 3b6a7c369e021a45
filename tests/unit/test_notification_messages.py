"""The event → notification mapping: who is told what, in which words, on which channels."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from pacioli.gateways.channels import Channel
from pacioli.ledger import format_minor
from pacioli.ledger.outbox import Event
from pacioli.payments.notification_messages import (
    CHANNELS,
    EVENT_TYPES,
    Kind,
    MerchantRef,
    WalletChange,
    bill_due_draft,
    drafts_for,
    low_balance_draft,
    mask,
    wallet_changes,
)

SCALES = {"USD": 2, "EUR": 2, "JPY": 0, "BTC": 8}
ADA, BOB, OWNER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
SHOP = uuid.uuid4()


class FakeLookup:
    """Names and scales from dicts; emails exist only to prove they never show."""

    emails = {ADA: "ada@example.com", BOB: "bob@example.com"}

    def __init__(self) -> None:
        self.names = {ADA: "Ada", BOB: None}
        self.merchants = {SHOP: MerchantRef("Corner Shop", OWNER)}

    def user_name(self, user_id: UUID) -> str:
        return self.names.get(user_id) or "A Pacioli user"

    def merchant(self, merchant_id: UUID) -> MerchantRef | None:
        return self.merchants.get(merchant_id)

    def biller_name(self, biller_id: str) -> str:
        return {"sandbox_power": "Sandbox Power & Light"}.get(biller_id, biller_id)

    def money(self, amount_minor: int, currency: str) -> str:
        return f"{format_minor(amount_minor, SCALES[currency])} {currency}"


def event(event_type: str, **payload) -> Event:
    aggregate = event_type.split(".")[0]
    return Event(uuid.uuid4(), event_type, aggregate, str(uuid.uuid4()),
                 {k: str(v) if isinstance(v, UUID) else v for k, v in payload.items()},
                 datetime.now(UTC))


def only(drafts):
    assert len(drafts) == 1, drafts
    return drafts[0]


def p2p() -> Event:
    return event("p2p_payment.succeeded", payment_id=uuid.uuid4(), payer_user_id=ADA,
                 payee_user_id=BOB, amount_minor="2550", currency="USD", note="dinner")


def test_money_received_tells_the_payee_who_paid_by_display_name():
    draft = only(drafts_for(p2p(), FakeLookup()))

    assert draft.user_id == BOB and draft.kind is Kind.MONEY_RECEIVED
    assert draft.title == "You received 25.50 USD"
    assert draft.body == 'Ada sent you 25.50 USD. Note: "dinner"'
    assert draft.data["amount_minor"] == "2550" and draft.data["currency"] == "USD"


def test_a_payer_without_a_display_name_is_named_neutrally_never_by_email():
    payment = event("p2p_payment.succeeded", payment_id=uuid.uuid4(), payer_user_id=BOB,
                    payee_user_id=ADA, amount_minor="100", currency="USD", note="")
    draft = only(drafts_for(payment, FakeLookup()))

    assert draft.body == "A Pacioli user sent you 1.00 USD."
    assert "bob@example.com" not in draft.body + draft.title + str(draft.data)


def test_amounts_follow_the_asset_scale():
    yen = only(drafts_for(event("topup.succeeded", topup_id=uuid.uuid4(), user_id=ADA,
                                amount_minor="1500", currency="JPY", failure_code=None),
                          FakeLookup()))
    btc = only(drafts_for(event("cashback.credited", payment_id=uuid.uuid4(), user_id=ADA,
                                merchant_id=SHOP, amount_minor="150", currency="BTC"),
                          FakeLookup()))

    assert yen.title == "Top-up of 1500 JPY complete"
    assert btc.body == "You earned 0.00000150 BTC cashback from Corner Shop."


def test_a_long_note_is_cut_short():
    payment = event("p2p_payment.succeeded", payment_id=uuid.uuid4(), payer_user_id=ADA,
                    payee_user_id=BOB, amount_minor="1", currency="USD", note="x" * 280)
    draft = only(drafts_for(payment, FakeLookup()))

    assert draft.body.endswith('…"') and len(draft.body) < 150


def test_international_transfer_tells_the_recipient_the_amount_received():
    transfer = event("international_transfer.succeeded", transfer_id=uuid.uuid4(),
                     sender_user_id=ADA, recipient_user_id=BOB, source_amount_minor="10000",
                     source_currency="USD", target_amount_minor="9150", target_currency="EUR")
    draft = only(drafts_for(transfer, FakeLookup()))

    assert draft.user_id == BOB and draft.kind is Kind.MONEY_RECEIVED
    assert draft.body == "Ada sent you 91.50 EUR, converted from 100.00 USD."


@pytest.mark.parametrize(("event_type", "to", "kind", "title"), [
    ("money_request.created", BOB, Kind.MONEY_REQUESTED, "Ada requests 20.00 USD"),
    ("money_request.paid", ADA, Kind.MONEY_REQUEST_PAID, "A Pacioli user paid your request"),
    ("money_request.declined", ADA, Kind.MONEY_REQUEST_DECLINED,
     "A Pacioli user declined your request"),
])
def test_money_requests_notify_the_other_side(event_type, to, kind, title):
    request = event(event_type, request_id=uuid.uuid4(), requester_user_id=ADA,
                    payer_user_id=BOB, amount_minor="2000", currency="USD", note="rent")
    draft = only(drafts_for(request, FakeLookup()))

    assert (draft.user_id, draft.kind, draft.title) == (to, kind, title)


@pytest.mark.parametrize(("event_type", "kind", "words"), [
    ("topup.succeeded", Kind.TOPUP_SUCCEEDED, "42.00 USD was added to your wallet."),
    ("topup.failed", Kind.TOPUP_FAILED, "did not go through (card declined)"),
    ("withdrawal.succeeded", Kind.WITHDRAWAL_SUCCEEDED, "paid out to your bank account"),
    ("withdrawal.failed", Kind.WITHDRAWAL_FAILED, "The money stays in your wallet."),
])
def test_funding_results_go_to_the_user(event_type, kind, words):
    id_key = "topup_id" if event_type.startswith("topup") else "withdrawal_id"
    failure_code = "card_declined" if event_type.endswith("failed") else None
    result = event(event_type, **{id_key: uuid.uuid4()}, user_id=ADA, amount_minor="4200",
                   currency="USD", failure_code=failure_code)
    draft = only(drafts_for(result, FakeLookup()))

    assert draft.user_id == ADA and draft.kind is kind and words in draft.body


def test_bill_payment_results_name_the_biller():
    fields = dict(payment_id=uuid.uuid4(), user_id=ADA, biller_id="sandbox_power",
                  amount_minor="4217", currency="USD")
    paid = only(drafts_for(event("bill_payment.succeeded", **fields, failure_code=None),
                           FakeLookup()))
    refunded = only(drafts_for(event("bill_payment.refunded", **fields,
                                     failure_code="biller_rejected"), FakeLookup()))

    assert paid.title == "Bill paid: Sandbox Power & Light"
    assert refunded.kind is Kind.BILL_PAYMENT_REFUNDED
    assert "(biller rejected)" in refunded.body and "back in your wallet" in refunded.body


def test_a_qr_payment_tells_the_payer_the_merchant_name():
    payment = event("qr_payment.succeeded", payment_id=uuid.uuid4(), merchant_id=SHOP,
                    payer_user_id=ADA, amount_minor="1200", fee_minor="24", net_minor="1176",
                    currency="USD", qr_code_id=uuid.uuid4(), reference="R1",
                    completed_at=datetime.now(UTC).isoformat())
    draft = only(drafts_for(payment, FakeLookup()))

    assert draft.user_id == ADA and draft.body == "You paid 12.00 USD to Corner Shop."


def test_a_qr_refund_tells_the_payer_the_money_is_back():
    refund = event("qr_payment.refunded", payment_id=uuid.uuid4(), refund_id=uuid.uuid4(),
                   merchant_id=SHOP, payer_user_id=ADA, amount_minor="500",
                   fee_returned_minor="10", currency="USD",
                   completed_at=datetime.now(UTC).isoformat())
    draft = only(drafts_for(refund, FakeLookup()))

    assert draft.user_id == ADA and draft.kind is Kind.QR_PAYMENT_REFUNDED
    assert draft.title == "Corner Shop refunded 5.00 USD"
    assert wallet_changes(refund) == [WalletChange(ADA, "USD", debited=False)]


def test_a_login_is_a_security_notification_in_utc():
    login = event("user.logged_in", user_id=ADA, session_id=uuid.uuid4(),
                  logged_in_at="2026-11-24T21:15:00+01:00")
    draft = only(drafts_for(login, FakeLookup()))

    assert draft.kind is Kind.NEW_LOGIN and "2026-11-24 at 20:15 UTC" in draft.body


def test_a_payout_destination_notifies_the_user_or_the_merchant_owner():
    for_user = event("payout_destination.added", user_id=ADA, kind="bank_account",
                     masked="•••• 6789", destination_id=uuid.uuid4())
    for_merchant = event("payout_destination.added", merchant_id=SHOP,
                         kind="settlement_account", masked="•••• 4321",
                         destination_id=uuid.uuid4())

    user_draft = only(drafts_for(for_user, FakeLookup()))
    owner_draft = only(drafts_for(for_merchant, FakeLookup()))

    assert user_draft.user_id == ADA and "•••• 6789" in user_draft.body
    assert owner_draft.user_id == OWNER and owner_draft.kind is Kind.NEW_PAYOUT_DESTINATION
    assert "Corner Shop" in owner_draft.title


def test_merchant_events_go_to_the_owner_and_an_unknown_merchant_notifies_no_one():
    failing = dict(endpoint_id=uuid.uuid4(), url="https://hooks.example.com/in?token=s3cret")
    draft = only(drafts_for(event("webhook_endpoint.failing", merchant_id=SHOP, **failing),
                            FakeLookup()))
    nobody = drafts_for(event("webhook_endpoint.failing", merchant_id=uuid.uuid4(), **failing),
                        FakeLookup())

    assert draft.user_id == OWNER and "hooks.example.com" in draft.body
    assert "s3cret" not in draft.body
    assert nobody == []


def test_settlements_report_their_figures_to_the_owner():
    fields = dict(batch_id=uuid.uuid4(), merchant_id=SHOP, currency="USD",
                  gross_minor="100000", fees_minor="2000", refunds_minor="500",
                  net_minor="97500", item_count=12)
    paid = only(drafts_for(event("settlement.paid", **fields, failure_code=None),
                           FakeLookup()))
    failed = only(drafts_for(event("settlement.failed", **fields,
                                   failure_code="account_closed"), FakeLookup()))

    assert paid.user_id == OWNER and paid.title == "Settlement paid: 975.00 USD"
    assert "gross 1000.00 USD, fees 20.00 USD, refunds 5.00 USD, net 975.00 USD" in paid.body
    assert failed.kind is Kind.SETTLEMENT_FAILED and "(account closed)" in failed.body


def test_an_order_fill_tells_the_user():
    fill = event("order.filled", order_id=uuid.uuid4(), user_id=ADA, market="BTC-USD",
                 side="buy", filled_size="0.5", price="50000.00")
    draft = only(drafts_for(fill, FakeLookup()))

    assert draft.kind is Kind.ORDER_FILLED
    assert draft.body == "Your buy order on BTC-USD filled: 0.5 at 50000.00."


def test_events_notifications_do_not_map_cause_nothing():
    assert drafts_for(event("transfer.posted", transfer_id=uuid.uuid4()), FakeLookup()) == []
    assert drafts_for(event("qr_code.expired", qr_code_id=uuid.uuid4()), FakeLookup()) == []
    assert "qr_code.expired" not in EVENT_TYPES


def test_wallet_changes_mark_debits_and_credits():
    payment = p2p()
    assert wallet_changes(payment) == [WalletChange(ADA, "USD", debited=True),
                                       WalletChange(BOB, "USD", debited=False)]
    refunded = event("bill_payment.refunded", payment_id=uuid.uuid4(), user_id=ADA,
                     biller_id="b", amount_minor="1", currency="USD", failure_code="x")
    assert wallet_changes(refunded) == [WalletChange(ADA, "USD", debited=False)]
    assert wallet_changes(event("user.logged_in", user_id=ADA)) == []


def test_every_kind_has_a_channel_policy_and_the_chosen_channels():
    assert set(CHANNELS) == set(Kind)
    assert CHANNELS[Kind.NEW_LOGIN] == {Channel.EMAIL, Channel.PUSH}
    assert Channel.SMS in CHANNELS[Kind.NEW_PAYOUT_DESTINATION]
    assert CHANNELS[Kind.MONEY_RECEIVED] == {Channel.PUSH}
    assert CHANNELS[Kind.QR_PAYMENT_SUCCEEDED] == frozenset()


def test_low_balance_and_bill_due_drafts():
    low = low_balance_draft(ADA, "USD", available_minor=420, threshold_minor=1000,
                            lookup=FakeLookup())
    due = bill_due_draft(ADA, biller_id="sandbox_power", bill_reference="P-1",
                         customer_reference="ACCT123456", amount_minor=4217,
                         minimum_due_minor=4217, currency="USD", due_date=date(2026, 12, 1),
                         today=date(2026, 11, 29), lookup=FakeLookup())

    assert low.body == "Your USD balance is 4.20 USD, below your alert threshold of 10.00 USD."
    assert due.title == "Bill due in 2 days: Sandbox Power & Light"
    assert "account ••••3456" in due.body and "ACCT123456" not in due.body
    assert "minimum" not in due.body
    assert mask("12") == "••••12"
