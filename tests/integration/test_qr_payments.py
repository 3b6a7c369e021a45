"""QR payments against the real ledger: static and dynamic codes, fees, single use, expiry."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.gateways import qr
from pacioli.ledger import credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.payments import errors as pe
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.qr_payments import MerchantProfile, QrPayments, merchant_fee


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
    assert balance(ledger, chart.merchant_balance(merchant.id, "USD")) == 50_00 - 30
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
    assert balance(ledger, chart.merchant_balance(merchant.id, "USD")) == 5_00 - 3


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
    assert balance(ledger, chart.merchant_balance(shop.id, "INR")) == 120_00 - 72


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
