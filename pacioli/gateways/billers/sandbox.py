"""The sandbox billers: a registry of pretend billers that behave like real ones.

Magic customer references choose the outcome (the table is in docs/payments.md, section
"Bill payments"; keep the two in step). A reference's *prefix* is magic, so a test can add
a unique suffix and never meet another test's bill:

    PEND...  the payment stays pending for ever
    FAIL...  the biller rejects the payment (status failed, code biller_rejected)
    NONE...  the biller knows no such customer: fetch_bill and submit_payment raise
             UnknownCustomerReference (code bill_not_found)
    LOST...  the first submission is recorded but its answer is lost (BillerUnavailable);
             submitting again with the same payment reference finds it; then it confirms
    other    the payment confirms at the first fetch_status after submission

A bill follows from (biller, customer reference) alone: its amount, minimum due, name and
reference are derived from a SHA-256 digest, so fetching twice shows the same bill.
Submitted payments are kept in the table `sandbox_biller_payments` (migration 0005), so a
status can be fetched later, from any process, as from a real biller.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways.billers.base import (
    AmountRule,
    Bill,
    Biller,
    BillerCategory,
    BillerInfo,
    BillerPayment,
    BillerReferenceNotFound,
    BillerRejectedRequest,
    BillerStatus,
    BillerUnavailable,
    BillFetchNotSupported,
    PaymentReferenceReused,
    Presentment,
    UnknownBiller,
    UnknownCustomerReference,
    amount_allowed,
)
from pacioli.ledger.domain.errors import invariant

SANDBOX_BILLERS: tuple[BillerInfo, ...] = (
    BillerInfo("sandbox_card", "Sandbox Bank Credit Card", BillerCategory.CREDIT_CARD,
               Presentment.FETCH_THEN_PAY, AmountRule.MINIMUM, "USD", "Card account number"),
    BillerInfo("sandbox_grid_in", "Sandbox Grid Corporation", BillerCategory.ELECTRICITY,
               Presentment.FETCH_THEN_PAY, AmountRule.EXACT, "INR", "Consumer number"),
    BillerInfo("sandbox_mobile_postpaid", "Sandbox Mobile Postpaid", BillerCategory.MOBILE,
               Presentment.FETCH_THEN_PAY, AmountRule.EXACT, "USD", "Phone number"),
    BillerInfo("sandbox_mobile_prepaid", "Sandbox Mobile Prepaid", BillerCategory.MOBILE,
               Presentment.DIRECT_PAY, AmountRule.ANY, "USD", "Phone number"),
    BillerInfo("sandbox_power", "Sandbox Power & Light", BillerCategory.ELECTRICITY,
               Presentment.FETCH_THEN_PAY, AmountRule.EXACT, "USD", "Account number"),
    BillerInfo("sandbox_water", "Sandbox Water Works", BillerCategory.WATER,
               Presentment.FETCH_THEN_PAY, AmountRule.ANY, "USD", "Connection id"),
)

CUSTOMER_REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9+\-]{4,32}")
# A sandbox bill is between 10.00 and 499.99 in its (2-decimal) currency.
BILL_AMOUNT_MIN_MINOR = 10_00
BILL_AMOUNT_SPAN_MINOR = 490_00
# A credit card's minimum due is a tenth of the statement balance.
MINIMUM_DUE_DIVISOR = 10
CUSTOMER_NAMES = ("A. Lovelace", "C. Babbage", "G. Hopper", "A. Turing", "E. Noether")
FAILURE_CODE_REJECTED = "biller_rejected"


class Behavior(StrEnum):
    """What a customer reference makes the sandbox do (chosen by its prefix)."""

    CONFIRM = "confirm"
    FAIL = "fail"
    STAY_PENDING = "stay_pending"
    NOT_FOUND = "not_found"
    LOSE_FIRST_ANSWER = "lose_first_answer"


MAGIC_PREFIXES = {
    "PEND": Behavior.STAY_PENDING,
    "FAIL": Behavior.FAIL,
    "NONE": Behavior.NOT_FOUND,
    "LOST": Behavior.LOSE_FIRST_ANSWER,
}


def behavior_of(customer_reference: str) -> Behavior:
    return MAGIC_PREFIXES.get(customer_reference[:4].upper(), Behavior.CONFIRM)


metadata = MetaData()

# Payments submitted to the sandbox billers: the billers' own state, which no other part
# of Pacioli reads.
sandbox_biller_payments = Table(
    "sandbox_biller_payments",
    metadata,
    Column("biller_reference", Text, primary_key=True),
    Column("biller_id", Text, nullable=False),
    Column("payment_reference", Text, nullable=False),
    Column("customer_reference", Text, nullable=False),
    Column("bill_reference", Text),
    Column("amount_minor", Numeric(39, 0), nullable=False),
    Column("currency", Text, nullable=False),
    Column("behavior", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("failure_code", Text),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("biller_id", "payment_reference",
                     name="uq_sandbox_biller_payments_payment_reference"),
)


class SandboxBiller:
    """One sandbox biller (a `Biller`), keeping its payments in the database."""

    def __init__(
        self, info: BillerInfo, engine: Engine, *, today: Callable[[], date] | None = None
    ) -> None:
        self.info = info
        self._engine = engine
        self._today = today or (lambda: datetime.now(UTC).date())

    def fetch_bill(self, customer_reference: str) -> Bill:
        """Raises: BillFetchNotSupported, BillerRejectedRequest, UnknownCustomerReference."""
        if self.info.presentment is Presentment.DIRECT_PAY:
            raise BillFetchNotSupported(f"{self.info.id} is direct-pay: it presents no bills")
        self._check_reference(customer_reference)
        digest = _digest(self.info.id, customer_reference)
        amount_minor = BILL_AMOUNT_MIN_MINOR + digest % BILL_AMOUNT_SPAN_MINOR
        return Bill(
            bill_reference=f"{self.info.id}-{digest % 10**12:012d}",
            customer_reference=customer_reference,
            customer_name=CUSTOMER_NAMES[digest % len(CUSTOMER_NAMES)],
            amount_minor=amount_minor,
            minimum_due_minor=_minimum_due(self.info.amount_rule, amount_minor),
            currency=self.info.currency,
            due_date=self._today() + timedelta(days=5 + digest % 25),
        )

    def submit_payment(
        self, *, customer_reference: str, bill_reference: str | None, amount_minor: int,
        currency: str, payment_reference: str,
    ) -> BillerPayment:
        """Raises: UnknownCustomerReference, BillerRejectedRequest, PaymentReferenceReused,
        BillerUnavailable (LOST... references, on the first submission only)."""
        self._check_payment(customer_reference, bill_reference, amount_minor, currency)
        request_hash = _request_hash(customer_reference, bill_reference, amount_minor, currency)
        now = datetime.now(UTC)
        t = sandbox_biller_payments
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(t).values(
                    biller_reference=f"BLR-{uuid.uuid4().hex[:20].upper()}",
                    biller_id=self.info.id, payment_reference=payment_reference,
                    customer_reference=customer_reference, bill_reference=bill_reference,
                    amount_minor=amount_minor, currency=currency,
                    behavior=behavior_of(customer_reference), status=BillerStatus.PENDING,
                    request_hash=request_hash, created_at=now, updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["biller_id", "payment_reference"])
                .returning(t)
            ).first()
            row = inserted or connection.execute(
                select(t).where(t.c.biller_id == self.info.id,
                                t.c.payment_reference == payment_reference)
            ).one()
        if row.request_hash != request_hash:
            raise PaymentReferenceReused(
                f"payment reference {payment_reference!r} was submitted with another payment"
            )
        if inserted is not None and row.behavior == Behavior.LOSE_FIRST_ANSWER:
            raise BillerUnavailable(f"{self.info.id} did not answer (the payment was recorded)")
        return _payment(row)

    def fetch_status(self, biller_reference: str) -> BillerPayment:
        """Resolves a pending payment as its reference's behaviour says.

        Raises: BillerReferenceNotFound.
        """
        t = sandbox_biller_payments
        where = (t.c.biller_reference == biller_reference) & (t.c.biller_id == self.info.id)
        with self._engine.begin() as connection:
            row = connection.execute(select(t).where(where)).first()
            if row is None:
                raise BillerReferenceNotFound(f"{self.info.id} has no payment {biller_reference}")
            outcome = _outcome(Behavior(row.behavior))
            if row.status == BillerStatus.PENDING and outcome is not None:
                status, failure_code = outcome
                # The condition on status makes two concurrent checks resolve it once.
                connection.execute(
                    update(t).where(where, t.c.status == BillerStatus.PENDING)
                    .values(status=status, failure_code=failure_code,
                            updated_at=datetime.now(UTC))
                )
                row = connection.execute(select(t).where(where)).one()
        return _payment(row)

    def _check_reference(self, customer_reference: str) -> None:
        if not CUSTOMER_REFERENCE_PATTERN.fullmatch(customer_reference):
            raise BillerRejectedRequest(
                "a customer reference is 4 to 32 letters, digits, '+' or '-'"
            )
        if behavior_of(customer_reference) is Behavior.NOT_FOUND:
            raise UnknownCustomerReference(
                f"{self.info.id} has no customer {customer_reference!r}"
            )

    def _check_payment(
        self, customer_reference: str, bill_reference: str | None, amount_minor: int,
        currency: str,
    ) -> None:
        """The biller's own checks, so a bad submission is refused, not recorded."""
        self._check_reference(customer_reference)
        if currency != self.info.currency:
            raise BillerRejectedRequest(f"{self.info.id} takes {self.info.currency} only")
        if type(amount_minor) is not int or amount_minor <= 0:
            raise BillerRejectedRequest("the amount must be a positive number of minor units")
        if self.info.presentment is Presentment.DIRECT_PAY:
            return
        bill = self.fetch_bill(customer_reference)
        if bill_reference != bill.bill_reference:
            raise BillerRejectedRequest(f"no bill {bill_reference!r} is due for this customer")
        if not amount_allowed(self.info.amount_rule, bill, amount_minor):
            raise BillerRejectedRequest(
                f"{self.info.id} does not take {amount_minor} for this bill"
            )


class SandboxBillerRegistry:
    """The sandbox billers (a `BillerRegistry`)."""

    def __init__(self, engine: Engine, *, today: Callable[[], date] | None = None) -> None:
        self._billers: dict[str, Biller] = {
            info.id: SandboxBiller(info, engine, today=today) for info in SANDBOX_BILLERS
        }
        for info in SANDBOX_BILLERS:
            # Without a bill there is nothing to compare an exact or minimum amount with.
            invariant(info.presentment is Presentment.FETCH_THEN_PAY
                      or info.amount_rule is AmountRule.ANY,
                      f"direct-pay biller {info.id} must take any amount")

    def list_billers(self, category: BillerCategory | None = None) -> list[BillerInfo]:
        return sorted(
            (b.info for b in self._billers.values()
             if category is None or b.info.category == category),
            key=lambda info: info.id,
        )

    def get(self, biller_id: str) -> Biller:
        """Raises: UnknownBiller."""
        biller = self._billers.get(biller_id)
        if biller is None:
            raise UnknownBiller(f"no biller has the id {biller_id!r}")
        return biller


def _minimum_due(rule: AmountRule, amount_minor: int) -> int | None:
    if rule is AmountRule.EXACT:
        return amount_minor
    if rule is AmountRule.MINIMUM:
        return amount_minor // MINIMUM_DUE_DIVISOR
    return None


def _outcome(behavior: Behavior) -> tuple[BillerStatus, str | None] | None:
    """The final status a behaviour reaches at its first status check, if any."""
    if behavior in (Behavior.CONFIRM, Behavior.LOSE_FIRST_ANSWER):
        return BillerStatus.SUCCEEDED, None
    if behavior is Behavior.FAIL:
        return BillerStatus.FAILED, FAILURE_CODE_REJECTED
    return None


def _digest(biller_id: str, customer_reference: str) -> int:
    data = f"{biller_id}:{customer_reference}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _request_hash(customer_reference, bill_reference, amount_minor, currency) -> str:
    body = [customer_reference, bill_reference, str(amount_minor), currency]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _payment(row) -> BillerPayment:
    return BillerPayment(
        biller_reference=row.biller_reference, payment_reference=row.payment_reference,
        status=BillerStatus(row.status), amount_minor=int(row.amount_minor),
        currency=row.currency, failure_code=row.failure_code,
    )
