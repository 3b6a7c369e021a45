"""QR payments against the real ledger: static and dynamic codes, fees, single use, expiry,
the settlement item and event a payment leaves, and the expiry sweep."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pacioli.gateways import qr
from pacioli.ledger import credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import errors as pe
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.qr_payments import MerchantProfile, QrPayments, merchant_fee
from pacioli.payments.settlement_tables import settlement_items


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def chart(engine, ledger) -> Chart:
    return Chart(engine, ledger)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def qr_payments(engine, ledger, chart, clock) -> QrPayments:
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}

    def scale_of(code):
        if code not in scales:
            raise e.UnknownAsset(code)
        return scales[code]

    return QrPayments(engine, ledger, chart, scale_of=scale_of, clock=clock)


@pytest.fixture
def merchant() -> MerchantProfile:
    return MerchantProfile(uuid.uuid4(), "Cafe Lisboa", "Lisbon", "PT", "5814")


def fund(ledger, chart, user_id, amount_minor, currency="USD"):
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


def balance(ledger, account_id) -> int:
    account = ledger.get_account(account_id)
    return account.balances.net_posted(account.normal_side)


def test_a_static_code_is_paid_with_the_payers_amount_less_the_merchants_fee(
    ledger, chart, qr_payments, merchant
):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 100_00)
    code = qr_payments.create_code(merchant, currency="USD", idempotency_key="c").value
    decoded = qr.decode_emvco(code.payload)
    assert decoded.crc_valid and decoded.amount is None and decoded.merchant_name == "Cafe Lisboa"

    paid = qr_payments.pay(payer_user_id=payer, payload=code.payload, amount_minor=50_00,
                           idempotency_key="p").value

    assert paid.status == "succeeded" and paid.fee_minor == merchant_fee(50_00) == 30
    assert balance(ledger, chart.wallet(payer, "USD")) == 50_00
    # The merchant's share waits in its pending-settlement account (docs/settlement.md).
    assert balance(ledger, chart.merchant_pending_settlement(merchant.id, "USD")) == 50_00 - 30
    assert balance(ledger, chart.merchant_balance(merchant.id, "USD")) == 0
    # A static code is paid again and again.
    qr_payments.pay(payer_user_id=payer, payload=code.payload, amount_minor=10_00,
                    idempotency_key="p2")
    assert balance(ledger, chart.wallet(payer, "USD")) == 40_00


def test_a_dynamic_code_is_paid_once_for_its_own_amount(ledger, chart, qr_payments, merchant):
    payer, other = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, payer, 100_00)
    fund(ledger, chart, other, 100_00)
    code = qr_payments.create_code(merchant, currency="USD", amount_minor=12_34,
                                   reference="order-7", idempotency_key="c").value

    paid = qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="p")
    replay = qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="p")

    assert replay.replayed and replay.value.id == paid.value.id
    assert qr_payments.get_code(merchant.id, code.id).status == "used"
    with pytest.raises(pe.QrCodeAlreadyUsed):
        qr_payments.pay(payer_user_id=other, payload=code.payload, idempotency_key="o")
    with pytest.raises(pe.InvalidPayment):
        qr_payments.pay(payer_user_id=payer, payload=code.payload, amount_minor=1,
                        idempotency_key="wrong-amount")
    assert balance(ledger, chart.wallet(payer, "USD")) == 100_00 - 12_34
    assert balance(ledger, chart.wallet(other, "USD")) == 100_00


def test_concurrent_payers_of_one_dynamic_code_pay_it_once(ledger, chart, qr_payments, merchant):
    payers = [uuid.uuid4() for _ in range(8)]
    for payer in payers:
        fund(ledger, chart, payer, 10_00)
    code = qr_payments.create_code(merchant, currency="USD", amount_minor=5_00,
                                   idempotency_key="c").value
    outcomes = []

    def pay(payer):
        try:
            qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="k")
            outcomes.append("paid")
        except pe.QrCodeAlreadyUsed:
            outcomes.append("refused")

    threads = [threading.Thread(target=pay, args=(payer,)) for payer in payers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("paid") == 1
    assert balance(ledger, chart.merchant_pending_settlement(merchant.id, "USD")) == 5_00 - 3


def test_an_expired_or_revoked_code_is_refused_and_moves_nothing(
    ledger, chart, qr_payments, merchant, clock
):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 100_00)
    expiring = qr_payments.create_code(merchant, currency="USD", amount_minor=1_00,
                                       expires_in_seconds=60, idempotency_key="e").value
    revoked = qr_payments.create_code(merchant, currency="USD", idempotency_key="r").value
    qr_payments.revoke_code(merchant.id, revoked.id)
    clock.now += timedelta(seconds=60)

    with pytest.raises(pe.QrCodeExpired):
        qr_payments.pay(payer_user_id=payer, payload=expiring.payload, idempotency_key="1")
    with pytest.raises(pe.QrCodeRevoked):
        qr_payments.pay(payer_user_id=payer, payload=revoked.payload, amount_minor=1_00,
                        idempotency_key="2")
    assert balance(ledger, chart.wallet(payer, "USD")) == 100_00


def test_a_tampered_payload_is_refused(ledger, chart, qr_payments, merchant):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 100_00)
    code = qr_payments.create_code(merchant, currency="USD", amount_minor=1_00,
                                   idempotency_key="c").value
    tampered = code.payload.replace("5404", "5405", 1)  # any edit breaks the CRC
    forged = qr.decode_emvco(code.payload)
    reencoded = qr.encode_emvco(replace(forged, amount="0.01", crc=None, crc_valid=None))

    with pytest.raises(pe.InvalidQrCode) as crc_error:
        qr_payments.pay(payer_user_id=payer, payload=tampered, idempotency_key="1")
    with pytest.raises(pe.QrCodeMismatch):  # a valid CRC over a changed amount
        qr_payments.pay(payer_user_id=payer, payload=reencoded, idempotency_key="2")
    assert crc_error.value.code in ("qr_crc_mismatch", "qr_malformed")
    assert balance(ledger, chart.wallet(payer, "USD")) == 100_00


def test_a_code_of_another_network_is_unsupported(qr_payments):
    pix = ("00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
           "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***")
    pix += "6304" + qr.crc_hex(pix + "6304")
    with pytest.raises(pe.InvalidQrCode) as error:
        qr_payments.pay(payer_user_id=uuid.uuid4(), payload=pix, amount_minor=1,
                        idempotency_key="x")
    assert error.value.code == "qr_unsupported"


def test_an_inr_code_is_also_paid_through_its_upi_link(ledger, chart, qr_payments):
    payer = uuid.uuid4()
    shop = MerchantProfile(uuid.uuid4(), "Chai Point", "Bengaluru", "IN", "5812")
    fund(ledger, chart, payer, 500_00, "INR")
    code = qr_payments.create_code(shop, currency="INR", amount_minor=120_00,
                                   idempotency_key="c").value

    qr_payments.pay(payer_user_id=payer, payload=code.upi_link, idempotency_key="u")

    assert balance(ledger, chart.wallet(payer, "INR")) == 380_00
    assert balance(ledger, chart.merchant_pending_settlement(shop.id, "INR")) == 120_00 - 72


def test_insufficient_funds_fail_the_payment_and_leave_a_dynamic_code_payable(
    ledger, chart, qr_payments, merchant
):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 1_00)
    code = qr_payments.create_code(merchant, currency="USD", amount_minor=5_00,
                                   idempotency_key="c").value

    with pytest.raises(e.InsufficientFunds):
        qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="1")
    fund(ledger, chart, payer, 10_00)
    qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="2")

    assert qr_payments.get_code(merchant.id, code.id).status == "used"
    assert balance(ledger, chart.wallet(payer, "USD")) == 6_00


def test_a_merchant_sees_only_its_own_codes_and_payments(ledger, chart, qr_payments, merchant):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 10_00)
    code = qr_payments.create_code(merchant, currency="USD", idempotency_key="c").value
    paid = qr_payments.pay(payer_user_id=payer, payload=code.payload, amount_minor=1_00,
                           idempotency_key="p").value
    stranger = uuid.uuid4()

    with pytest.raises(pe.QrCodeNotFound):
        qr_payments.get_code(stranger, code.id)
    with pytest.raises(pe.PaymentNotFound):
        qr_payments.get_payment(payment_id=paid.id, merchant_id=stranger)
    assert qr_payments.list_payments(merchant_id=stranger) == []
    assert [p.id for p in qr_payments.list_payments(merchant_id=merchant.id)] == [paid.id]
    assert qr_payments.get_payment(payment_id=paid.id, payer_user_id=payer).id == paid.id


def outbox_events(engine, aggregate_id) -> list[tuple[str, dict]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.aggregate_id == str(aggregate_id)).order_by(outbox.c.id)
        ).all()
    return [(row.event_type, row.payload) for row in rows]


def test_a_succeeded_payment_queues_one_settlement_item_and_one_event(
    engine, ledger, chart, qr_payments, merchant
):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 20_00)
    code = qr_payments.create_code(merchant, currency="USD", amount_minor=12_00,
                                   reference="order-9", idempotency_key="c").value

    paid = qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="p").value
    qr_payments.pay(payer_user_id=payer, payload=code.payload, idempotency_key="p")  # replay

    with engine.connect() as connection:
        items = connection.execute(
            select(settlement_items).where(settlement_items.c.source_id == paid.id)
        ).all()
    assert [(i.source_kind, i.gross_minor, i.fee_minor, i.net_minor, i.batch_id)
            for i in items] == [("qr_payment", 12_00, paid.fee_minor, 12_00 - paid.fee_minor,
                                 None)]
    assert items[0].completed_at == paid.completed_at
    assert outbox_events(engine, paid.id) == [("qr_payment.succeeded", {
        "payment_id": str(paid.id), "merchant_id": str(merchant.id),
        "payer_user_id": str(payer), "amount_minor": "1200", "fee_minor": str(paid.fee_minor),
        "net_minor": str(12_00 - paid.fee_minor), "currency": "USD",
        "qr_code_id": str(code.id), "reference": "order-9",
        "completed_at": paid.completed_at.isoformat(),
    })]


def test_a_failed_payment_queues_nothing(engine, ledger, chart, qr_payments, merchant):
    payer = uuid.uuid4()
    code = qr_payments.create_code(merchant, currency="USD", idempotency_key="c").value
    with pytest.raises(e.InsufficientFunds):
        qr_payments.pay(payer_user_id=payer, payload=code.payload, amount_minor=1_00,
                        idempotency_key="p")
    failed = qr_payments.list_payments(payer_user_id=payer)[0]

    assert outbox_events(engine, failed.id) == []
    with engine.connect() as connection:
        assert connection.execute(
            select(settlement_items).where(settlement_items.c.source_id == failed.id)
        ).all() == []


def test_the_sweep_expires_dynamic_codes_past_their_deadline_once(
    engine, ledger, chart, qr_payments, merchant, clock
):
    payer = uuid.uuid4()
    fund(ledger, chart, payer, 10_00)
    expiring = qr_payments.create_code(merchant, currency="USD", amount_minor=1_00,
                                       reference="r-1", expires_in_seconds=60,
                                       idempotency_key="e").value
    later = qr_payments.create_code(merchant, currency="USD", amount_minor=1_00,
                                    expires_in_seconds=600, idempotency_key="l").value
    paid = qr_payments.create_code(merchant, currency="USD", amount_minor=1_00,
                                   expires_in_seconds=60, idempotency_key="p").value
    static = qr_payments.create_code(merchant, currency="USD", idempotency_key="s").value
    qr_payments.pay(payer_user_id=payer, payload=paid.payload, idempotency_key="pay")
    clock.now += timedelta(seconds=60)

    expired = qr_payments.expire_codes(clock.now)
    again = qr_payments.expire_codes(clock.now)

    ours = [code.id for code in expired if code.merchant_id == merchant.id]
    assert ours == [expiring.id]
    assert [code.id for code in again if code.merchant_id == merchant.id] == []
    statuses = {c.id: qr_payments.get_code(merchant.id, c.id).status
                for c in (expiring, later, paid, static)}
    assert statuses == {expiring.id: "expired", later.id: "active", paid.id: "used",
                        static.id: "active"}
    assert outbox_events(engine, expiring.id) == [("qr_code.expired", {
        "qr_code_id": str(expiring.id), "merchant_id": str(merchant.id), "reference": "r-1",
        "expires_at": expiring.expires_at.isoformat(),
    })]
    with pytest.raises(pe.QrCodeExpired):
        qr_payments.pay(payer_user_id=payer, payload=expiring.payload, idempotency_key="late")
