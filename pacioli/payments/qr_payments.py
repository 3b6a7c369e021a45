"""QR payments: merchants make codes, users pay them from their wallets.

A merchant's code names itself in the payload (EMVCo template 26 with Pacioli's GUI,
subfield 01; or a UPI address `<code>@pacioli`). Paying one trusts the code's record,
not the payload: the payload's CRC must verify, and its amount and currency must agree
with what the merchant made. The payment follows the P2P pattern (record, move with a
ledger key derived from the record, finish) and books:

    payer wallet  →  merchant pending settlement (amount − fee)  +  fee_revenue (fee)

The fee is the merchant's, in basis points of the amount, rounded half up, so the
merchant's share and the fee always add up to the amount. The transaction that marks a
payment succeeded also queues its settlement item (the settlement run later moves the
merchant's share to its balance and pays it out, docs/settlement.md) and appends the
`qr_payment.succeeded` event. `expire_codes` marks dynamic codes past their deadline
`expired` (with a `qr_code.expired` event), for a periodic worker.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import UUID

from sqlalchemy import Engine, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from pacioli.gateways import qr
from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.settlement_items import record_item
from pacioli.payments.tables import merchant_qr_codes, qr_payments

MERCHANT_FEE_BPS = 60  # 0.60% of each QR payment, as Alipay's merchant rate
UPI_DOMAIN = "pacioli"
EXPIRY_SECONDS_MAX = 7 * 24 * 3600
EXPIRY_SWEEP_LIMIT = 500  # codes expired per sweep transaction
QR_PAYMENT_SOURCE = "qr_payment"  # the settlement items' source kind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    """What a QR shows of its merchant."""

    id: UUID
    name: str
    city: str
    country_code: str
    category_code: str = "5999"  # ISO 18245 "miscellaneous and specialty retail"


@dataclass(frozen=True, slots=True)
class QrCode:
    id: UUID
    code: str
    merchant_id: UUID
    kind: str  # static, dynamic
    currency: str
    amount_minor: int | None
    reference: str | None
    expires_at: datetime | None
    status: str  # active, used, revoked, expired
    payload: str
    created_at: datetime

    @property
    def upi_link(self) -> str | None:
        """The same code as a UPI pay link (INR codes only)."""
        if self.currency != "INR":
            return None
        amount = None if self.amount_minor is None else qr_amount(self.amount_minor, 2)
        return qr.encode_upi(qr.UpiPayment(
            payee_address=f"{self.code}@{UPI_DOMAIN}", amount=amount, currency="INR",
            reference=self.reference,
        ))


@dataclass(frozen=True, slots=True)
class QrPayment:
    id: UUID
    qr_id: UUID
    merchant_id: UUID
    payer_user_id: UUID
    currency: str
    amount_minor: int
    fee_minor: int
    status: str
    failure_code: str | None
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Scanned:
    """What a payer sees before paying: whose code, how much, and whether it can be paid."""

    code: QrCode
    merchant_name: str
    payable: bool
    reason: str | None  # why not, as an error code


@dataclass(frozen=True, slots=True)
class QrAnswer:
    value: QrCode | QrPayment
    replayed: bool


def merchant_fee(amount_minor: int, fee_bps: int = MERCHANT_FEE_BPS) -> int:
    return math.floor(Fraction(amount_minor * fee_bps, 10_000) + Fraction(1, 2))


def qr_amount(amount_minor: int, scale: int) -> str:
    """Minor units as the payload's decimal string ("10.50"; "1050" at scale 0)."""
    if scale == 0:
        return str(amount_minor)
    whole, fraction = divmod(amount_minor, 10**scale)
    return f"{whole}.{fraction:0{scale}d}"


class QrPayments:
    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, *, scale_of,
        clock=lambda: datetime.now(UTC), fee_bps: int = MERCHANT_FEE_BPS,
        on_paid: Callable[[QrPayment], object] | None = None,
    ) -> None:
        """`on_paid`, the one extension point, is called with every succeeded payment that
        `pay` answers (first time or replayed), e.g. to pay cashback; it must be idempotent
        per payment, and its failure never fails the payment."""
        self._on_paid = on_paid
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._scale_of = scale_of  # raises UnknownAsset
        self._clock = clock
        self._fee_bps = fee_bps

    # Merchants' codes.

    def create_code(
        self, merchant: MerchantProfile, *, currency: str, amount_minor: int | None = None,
        reference: str | None = None, expires_in_seconds: int | None = None,
        idempotency_key: str,
    ) -> QrAnswer:
        """Make a static code (no amount) or a dynamic one (an amount, paid once).

        Raises: UnknownAsset, InvalidPayment, InvalidQrCode (a field the payload cannot
        carry), IdempotencyKeyReusedForPayment.
        """
        scale = self._scale_of(currency)
        if amount_minor is not None and (type(amount_minor) is not int or amount_minor <= 0):
            raise pe.InvalidPayment("the amount must be a positive number of minor units")
        if expires_in_seconds is not None and (
            amount_minor is None or not 1 <= expires_in_seconds <= EXPIRY_SECONDS_MAX
        ):
            raise pe.InvalidPayment(
                "only a code with an amount expires, within 1 second to 7 days"
            )
        request_hash = records.request_hash(currency, amount_minor, reference, expires_in_seconds)
        existing = self._code_by_key(merchant.id, idempotency_key)
        if existing is not None:
            row = records.same_request(existing, request_hash, idempotency_key)
            return QrAnswer(_code(row), True)
        now = self._clock()
        code = "qr" + secrets.token_hex(10)
        expires_at = (
            None if expires_in_seconds is None else now + timedelta(seconds=expires_in_seconds)
        )
        try:
            payload = qr.encode_emvco(qr.merchant_qr(
                merchant_name=merchant.name[:25], merchant_city=merchant.city[:15],
                country_code=merchant.country_code,
                merchant_category_code=merchant.category_code, currency=currency,
                gui=qr.PACIOLI_GUI, merchant_account_id=code,
                amount=None if amount_minor is None else qr_amount(amount_minor, scale),
                reference=reference, expires_at=expires_at,
            ))
        except qr.QrError as error:
            raise pe.InvalidQrCode(error) from None
        t = merchant_qr_codes
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(t).values(
                    id=uuid7(), code=code, merchant_id=merchant.id,
                    kind="static" if amount_minor is None else "dynamic", currency=currency,
                    amount_minor=amount_minor, reference=reference, expires_at=expires_at,
                    status="active", payload=payload, idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=now,
                ).on_conflict_do_nothing(index_elements=["merchant_id", "idempotency_key"])
                .returning(t)
            ).first()
        if row is None:  # the same key raced us
            existing = self._code_by_key(merchant.id, idempotency_key)
            row = records.same_request(existing, request_hash, idempotency_key)
            return QrAnswer(_code(row), True)
        return QrAnswer(_code(row), False)

    def get_code(self, merchant_id: UUID, qr_id: UUID) -> QrCode:
        """Raises: QrCodeNotFound."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(merchant_qr_codes).where(merchant_qr_codes.c.id == qr_id,
                                                merchant_qr_codes.c.merchant_id == merchant_id)
            ).first()
        if row is None:
            raise pe.QrCodeNotFound(f"no QR code {qr_id}")
        return _code(row)

    def list_codes(self, merchant_id: UUID, *, limit: int = 50,
                   starting_after: UUID | None = None) -> list[QrCode]:
        t = merchant_qr_codes
        query = records.newest_first(t, t.c.merchant_id == merchant_id, limit=limit,
                                     starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_code(row) for row in connection.execute(query)]

    def revoke_code(self, merchant_id: UUID, qr_id: UUID) -> QrCode:
        """Stop a code from being paid. Raises: QrCodeNotFound."""
        t = merchant_qr_codes
        with self._engine.begin() as connection:
            connection.execute(
                update(t).where(t.c.id == qr_id, t.c.merchant_id == merchant_id,
                                t.c.status == "active").values(status="revoked")
            )
        return self.get_code(merchant_id, qr_id)

    # Payers.

    def scan(self, payload: str, merchant_name_of) -> Scanned:
        """Decode a payload and find the code it names, to show before paying.

        Raises: InvalidQrCode (malformed, CRC mismatch, another payment network's code),
        QrCodeNotFound.
        """
        code = self._code_of_payload(payload)
        reason = self._unpayable_reason(code)
        return Scanned(code, merchant_name_of(code.merchant_id), reason is None, reason)

    def pay(
        self, *, payer_user_id: UUID, payload: str, amount_minor: int | None = None,
        idempotency_key: str,
    ) -> QrAnswer:
        """Pay a merchant's code from the payer's wallet.

        A static code needs `amount_minor`; a dynamic one has its own (an amount given
        must equal it). Raises: InvalidQrCode, QrCodeNotFound, QrCodeExpired,
        QrCodeAlreadyUsed, QrCodeRevoked, InvalidPayment, IdempotencyKeyReusedForPayment,
        and the ledger's rejections (InsufficientFunds ...), also when replaying.
        """
        code = self._code_of_payload(payload)
        amount = self._amount_to_pay(code, amount_minor)
        request_hash = records.request_hash(code.id, amount, None, None)
        payment, replayed = self._claim(payer_user_id, code, amount, idempotency_key,
                                        request_hash)
        if payment.status == "created":
            payment = self._move(payment)
        if payment.status == "failed":
            raise pe.rejection_with_code(
                payment.failure_code, f"payment {payment.id} failed: {payment.failure_code}"
            )
        if payment.status == "succeeded" and self._on_paid is not None:
            self._notify_paid(payment)
        return QrAnswer(payment, replayed)

    def _notify_paid(self, payment: QrPayment) -> None:
        # The money has moved: whatever the extension point does, the payment stands.
        try:
            self._on_paid(payment)
        except Exception:
            log.exception("on_paid failed for QR payment %s", payment.id)

    def get_payment(self, *, payment_id: UUID, merchant_id: UUID | None = None,
                    payer_user_id: UUID | None = None) -> QrPayment:
        """A payment seen by its merchant or its payer. Raises: PaymentNotFound."""
        t = qr_payments
        query = select(t).where(t.c.id == payment_id)
        query = query.where(t.c.merchant_id == merchant_id) if merchant_id else query.where(
            t.c.payer_user_id == payer_user_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise pe.PaymentNotFound(f"no payment {payment_id}")
        return _payment(row)

    def list_payments(self, *, merchant_id: UUID | None = None,
                      payer_user_id: UUID | None = None, limit: int = 50,
                      starting_after: UUID | None = None) -> list[QrPayment]:
        t = qr_payments
        owner = (t.c.merchant_id == merchant_id) if merchant_id else (
            t.c.payer_user_id == payer_user_id)
        query = records.newest_first(t, owner, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_payment(row) for row in connection.execute(query)]

    # Steps.

    def _code_of_payload(self, payload: str) -> QrCode:
        try:
            scanned = qr.decode_any(payload)
        except qr.QrError as error:
            raise pe.InvalidQrCode(error) from None
        name, amount, currency = _named_code(scanned)
        t = merchant_qr_codes
        with self._engine.connect() as connection:
            row = connection.execute(select(t).where(t.c.code == name)).first()
        if row is None:
            raise pe.QrCodeNotFound("no merchant has this QR code")
        code = _code(row)
        try:
            amount_minor = None if amount is None else qr.amount_to_minor(
                amount, self._scale_of(code.currency))
        except qr.QrError as error:
            raise pe.InvalidQrCode(error) from None
        if currency != code.currency or amount_minor != code.amount_minor:
            raise pe.QrCodeMismatch("the payload's amount or currency differs from the code's")
        return code

    def _unpayable_reason(self, code: QrCode) -> str | None:
        if code.status == "revoked":
            return pe.QrCodeRevoked.code
        if code.status == "used":
            return pe.QrCodeAlreadyUsed.code
        if code.status == "expired":
            return pe.QrCodeExpired.code
        if code.expires_at is not None and self._clock() >= code.expires_at:
            return pe.QrCodeExpired.code
        return None

    def _amount_to_pay(self, code: QrCode, amount_minor: int | None) -> int:
        if code.amount_minor is None:
            if amount_minor is None:
                raise pe.InvalidPayment("this QR code has no amount: give one")
            if type(amount_minor) is not int or amount_minor <= 0:
                raise pe.InvalidPayment("the amount must be a positive number of minor units")
            return amount_minor
        if amount_minor is not None and amount_minor != code.amount_minor:
            raise pe.InvalidPayment("this QR code is for a fixed amount; pay it or none")
        return code.amount_minor

    def _claim(self, payer_user_id, code: QrCode, amount_minor: int, idempotency_key: str,
               request_hash: str) -> tuple[QrPayment, bool]:
        existing = self._payment_by_key(payer_user_id, idempotency_key)
        if existing is not None:
            return _payment(records.same_request(existing, request_hash, idempotency_key)), True
        reason = self._unpayable_reason(code)
        if reason is not None:
            raise pe.rejection_with_code(reason, f"QR code {code.id} cannot be paid: {reason}")
        fee = merchant_fee(amount_minor, self._fee_bps)
        if fee >= amount_minor:
            raise pe.InvalidPayment("the amount is too small to pay the merchant's fee")
        t = qr_payments
        try:
            with self._engine.begin() as connection:
                row = connection.execute(
                    insert(t).values(
                        id=uuid7(), qr_id=code.id, merchant_id=code.merchant_id,
                        payer_user_id=payer_user_id, dynamic=code.kind == "dynamic",
                        currency=code.currency, amount_minor=amount_minor, fee_minor=fee,
                        status="created", idempotency_key=idempotency_key,
                        request_hash=request_hash, created_at=self._clock(),
                    ).on_conflict_do_nothing(
                        index_elements=["payer_user_id", "idempotency_key"]
                    ).returning(t)
                ).first()
        except IntegrityError:  # another payment of this dynamic code is live
            raise pe.QrCodeAlreadyUsed(f"QR code {code.id} was paid already") from None
        if row is None:
            row = records.same_request(self._payment_by_key(payer_user_id, idempotency_key),
                                request_hash, idempotency_key)
            return _payment(row), True
        return _payment(row), False

    def _move(self, payment: QrPayment) -> QrPayment:
        legs = [
            debit(self._chart.wallet(payment.payer_user_id, payment.currency),
                  payment.amount_minor),
            credit(self._chart.merchant_pending_settlement(payment.merchant_id,
                                                           payment.currency),
                   payment.amount_minor - payment.fee_minor),
        ]
        if payment.fee_minor:
            legs.append(credit(self._chart.platform(Purpose.FEE_REVENUE, payment.currency),
                               payment.fee_minor))
        try:
            transfer = self._ledger.transfer(
                legs,
                metadata={"flow": "qr", "payment_id": str(payment.id), "qr_id": str(payment.qr_id),
                          "merchant_id": str(payment.merchant_id),
                          "payer_user_id": str(payment.payer_user_id)},
                idempotency_key=f"qr:{payment.id}", client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._finish(payment, "failed", failure_code=rejection.code)
        return self._finish(payment, "succeeded", transfer_id=transfer.id)

    def _finish(self, payment: QrPayment, status: str, *, transfer_id=None, failure_code=None):
        t = qr_payments
        now = self._clock()
        with self._engine.begin() as connection:
            finished = connection.execute(
                update(t).where(t.c.id == payment.id, t.c.status == "created").values(
                    status=status, transfer_id=transfer_id, failure_code=failure_code,
                    completed_at=now,
                ).returning(t)
            ).first()
            if finished is not None and status == "succeeded":
                self._record_success(connection, _payment(finished))
            row = finished or connection.execute(select(t).where(t.c.id == payment.id)).one()
        return _payment(row)

    def _record_success(self, connection, payment: QrPayment) -> None:
        """In the transaction that marks `payment` succeeded: use up a dynamic code,
        queue the merchant's settlement item and append `qr_payment.succeeded`."""
        codes = merchant_qr_codes
        # A code the sweep expired while this payment (claimed in time) was moving is
        # used all the same: it was paid.
        code = connection.execute(
            update(codes).where(codes.c.id == payment.qr_id, codes.c.kind == "dynamic",
                                codes.c.status.in_(("active", "expired")))
            .values(status="used").returning(codes.c.reference)
        ).first() or connection.execute(
            select(codes.c.reference).where(codes.c.id == payment.qr_id)
        ).one()
        record_item(
            connection, merchant_id=payment.merchant_id, currency=payment.currency,
            source_kind=QR_PAYMENT_SOURCE, source_id=payment.id,
            gross_minor=payment.amount_minor, fee_minor=payment.fee_minor,
            completed_at=payment.completed_at,
        )
        append_event(connection, "qr_payment.succeeded", "qr_payment", str(payment.id), {
            "payment_id": str(payment.id), "merchant_id": str(payment.merchant_id),
            "payer_user_id": str(payment.payer_user_id),
            "amount_minor": str(payment.amount_minor), "fee_minor": str(payment.fee_minor),
            "net_minor": str(payment.amount_minor - payment.fee_minor),
            "currency": payment.currency, "qr_code_id": str(payment.qr_id),
            "reference": code.reference, "completed_at": payment.completed_at.isoformat(),
        })

    # The expiry sweep.

    def expire_codes(self, now: datetime, *, limit: int = EXPIRY_SWEEP_LIMIT) -> list[QrCode]:
        """Mark active dynamic codes whose deadline is at or before `now` expired, each
        with a `qr_code.expired` event in the same transaction; return them.

        Safe to run from several workers at once (rows are claimed with SKIP LOCKED and
        updated only while active). A code with a payment under way is left alone: that
        payment was claimed in time and will use it up.
        """
        codes, payments = merchant_qr_codes, qr_payments
        candidate = codes.alias("candidate")
        due = (
            select(candidate.c.id)
            .where(candidate.c.status == "active", candidate.c.expires_at <= now,
                   ~exists().where(payments.c.qr_id == candidate.c.id,
                                   payments.c.status != "failed"))
            .order_by(candidate.c.expires_at).limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(
                update(codes).where(codes.c.id.in_(due.scalar_subquery()),
                                    codes.c.status == "active")
                .values(status="expired").returning(codes)
            ).all()
            for row in rows:
                append_event(connection, "qr_code.expired", "qr_code", str(row.id), {
                    "qr_code_id": str(row.id), "merchant_id": str(row.merchant_id),
                    "reference": row.reference, "expires_at": row.expires_at.isoformat(),
                })
        return [_code(row) for row in rows]

    def _code_by_key(self, merchant_id: UUID, key: str):
        t = merchant_qr_codes
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.merchant_id == merchant_id, t.c.idempotency_key == key)
            ).first()

    def _payment_by_key(self, payer_user_id: UUID, key: str):
        t = qr_payments
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.payer_user_id == payer_user_id, t.c.idempotency_key == key)
            ).first()


def _named_code(scanned) -> tuple[str, str | None, str]:
    """The Pacioli code a payload names, with its amount string and alpha currency.

    Raises: InvalidQrCode (a code of another payment network).
    """
    if isinstance(scanned, qr.UpiPayment):
        name, _, domain = scanned.payee_address.partition("@")
        if domain.lower() != UPI_DOMAIN:
            raise pe.InvalidQrCode.unsupported("this UPI address is not a Pacioli merchant")
        return name, scanned.amount, scanned.currency
    for account in scanned.merchant_accounts:
        if account.gui == qr.PACIOLI_GUI and "01" in account.fields:
            currency = qr.currency_by_numeric(scanned.currency_numeric)
            if currency is None:
                raise pe.InvalidQrCode.unsupported("the QR code's currency is not supported")
            return account.fields["01"], scanned.amount, currency.alpha
    raise pe.InvalidQrCode.unsupported("this QR code belongs to another payment network")






def _code(row) -> QrCode:
    return QrCode(
        id=row.id, code=row.code, merchant_id=row.merchant_id, kind=row.kind,
        currency=row.currency, amount_minor=row.amount_minor, reference=row.reference,
        expires_at=row.expires_at, status=row.status, payload=row.payload,
        created_at=row.created_at,
    )


def _payment(row) -> QrPayment:
    return QrPayment(
        id=row.id, qr_id=row.qr_id, merchant_id=row.merchant_id,
        payer_user_id=row.payer_user_id, currency=row.currency,
        amount_minor=row.amount_minor, fee_minor=row.fee_minor, status=row.status,
        failure_code=row.failure_code, transfer_id=row.transfer_id,
        created_at=row.created_at, completed_at=row.completed_at,
    )
