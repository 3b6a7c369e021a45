"""Offers and cashback: the platform or a merchant funds cashback on qualifying payments.

An offer is a rule (cashback in basis points of a payment, a cap per payment, a minimum
payment, optionally one merchant, a validity window, optionally a number of uses per
user) with a funder: the platform or a merchant. Each funder has a promotions pool per
currency, a credit-normal ledger account that refuses overdraft, so cashback is paid
only from money put there in advance:

    platform:  bank_settlement          →  promotions (scope "")
    merchant:  merchant's balance        →  promotions (scope "merchant:<id>")
    cashback:  the funder's promotions   →  the payer's wallet

A succeeded payment is rewarded (`reward`) by at most one offer: the applicable one that
pays the most, then the oldest. The choice depends only on the payment and on the offers
that existed when it was paid, so a retry chooses the same. One `cashbacks` row per
payment (unique), and the ledger key `cashback:<payment id>`, make the cashback paid at
most once under retries and concurrent retries. An empty pool pays nothing: the cashback
is recorded `unfunded` and the payment stays as it was. The update that records a
cashback `paid` appends `cashback.credited` to the outbox in its own transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from uuid import UUID

from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.errors import InsufficientFunds
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import offer_errors as oe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.offer_tables import cashbacks, offer_uses, offers, promotion_fundings

PLATFORM_FUNDER = "platform"
MERCHANT_FUNDER_PREFIX = "merchant:"
DESCRIPTION_LENGTH_MAX = 200
PAGE_LIMIT_MAX = 200


def merchant_funder(merchant_id: UUID) -> str:
    return f"{MERCHANT_FUNDER_PREFIX}{merchant_id}"


def funder_merchant_id(funder: str) -> UUID | None:
    """The merchant a funder names, or None for the platform."""
    if funder == PLATFORM_FUNDER:
        return None
    return UUID(funder.removeprefix(MERCHANT_FUNDER_PREFIX))


def pool_scope(funder: str) -> str:
    """The chart scope of a funder's promotions pool ("" for the platform's)."""
    return "" if funder == PLATFORM_FUNDER else funder


@dataclass(frozen=True, slots=True)
class OfferRule:
    """What an offer pays and when; the input of `create_offer`."""

    currency: str
    cashback_bps: int
    cap_minor: int
    min_payment_minor: int = 0
    merchant_id: UUID | None = None
    starts_at: datetime | None = None  # None: now
    ends_at: datetime | None = None  # None: until ended
    uses_per_user_max: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Offer:
    id: UUID
    funder: str
    merchant_id: UUID | None
    currency: str
    cashback_bps: int
    cap_minor: int
    min_payment_minor: int
    uses_per_user_max: int | None
    starts_at: datetime
    ends_at: datetime | None
    status: str  # active, ended
    description: str
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class QualifyingPayment:
    """A succeeded payment that may earn cashback."""

    kind: str  # qr_payment
    id: UUID
    user_id: UUID
    merchant_id: UUID
    currency: str
    amount_minor: int
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class Cashback:
    id: UUID
    payment_kind: str
    payment_id: UUID
    offer_id: UUID
    funder: str
    user_id: UUID
    merchant_id: UUID
    currency: str
    amount_minor: int
    status: str  # created, paid, unfunded, failed
    failure_code: str | None
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class PromotionFunding:
    id: UUID
    funder: str
    currency: str
    amount_minor: int
    status: str  # created, succeeded, failed
    failure_code: str | None
    transfer_id: UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OfferAnswer:
    """A write's result, and whether an earlier request with the same key produced it."""

    value: Offer | PromotionFunding
    replayed: bool


def cashback_for(offer: Offer, amount_minor: int) -> int:
    """What `offer` pays on a payment of `amount_minor`: rounded down, at most the cap,
    and nothing below the minimum payment (the platform never pays a fraction)."""
    if amount_minor < offer.min_payment_minor:
        return 0
    return min(math.floor(Fraction(amount_minor * offer.cashback_bps, 10_000)), offer.cap_minor)


class _LostRace(Exception):
    """Another claim recorded this payment's cashback first; roll ours back."""


class Offers:
    """Offers, promotions pools and cashback (see the module's docstring)."""

    def __init__(self, engine: Engine, ledger: Ledger, chart: Chart, *,
                 clock=lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._clock = clock

    # Offers.

    def create_offer(self, funder: str, rule: OfferRule, *, idempotency_key: str) -> OfferAnswer:
        """Make an offer funded by `funder`; a merchant's offer covers its own payments only.

        Raises: InvalidOffer, UnknownAsset, IdempotencyKeyReusedForPayment.
        """
        merchant = funder_merchant_id(funder)
        if merchant is not None:
            if rule.merchant_id not in (None, merchant):
                raise oe.InvalidOffer("a merchant's offer covers payments to that merchant only")
            rule = _replace_merchant(rule, merchant)
        now = self._clock()
        starts_at = rule.starts_at or now
        _check_rule(rule, starts_at)
        self._pool(funder, rule.currency)  # refuses an unknown currency before recording
        request_hash = records.request_hash(
            funder, rule.currency, rule.cashback_bps, rule.cap_minor, rule.min_payment_minor,
            rule.merchant_id, rule.starts_at, rule.ends_at, rule.uses_per_user_max,
            rule.description,
        )
        t = offers
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(t).values(
                    id=uuid7(), funder=funder, merchant_id=rule.merchant_id,
                    currency=rule.currency, cashback_bps=rule.cashback_bps,
                    cap_minor=rule.cap_minor, min_payment_minor=rule.min_payment_minor,
                    uses_per_user_max=rule.uses_per_user_max, starts_at=starts_at,
                    ends_at=rule.ends_at, status="active", description=rule.description,
                    idempotency_key=idempotency_key, request_hash=request_hash, created_at=now,
                ).on_conflict_do_nothing(index_elements=["funder", "idempotency_key"])
                .returning(t)
            ).first()
            if row is not None:
                return OfferAnswer(_offer(row), replayed=False)
            row = connection.execute(
                select(t).where(t.c.funder == funder, t.c.idempotency_key == idempotency_key)
            ).one()
        records.same_request(row, request_hash, idempotency_key)
        return OfferAnswer(_offer(row), replayed=True)

    def end_offer(self, funder: str, offer_id: UUID) -> Offer:
        """Stop an offer: payments from now on do not qualify. Ending twice is harmless.

        Raises: OfferNotFound.
        """
        t = offers
        with self._engine.begin() as connection:
            connection.execute(
                update(t).where(t.c.id == offer_id, t.c.funder == funder, t.c.status == "active")
                .values(status="ended", ended_at=self._clock())
            )
        return self.get_offer(offer_id, funder=funder)

    def get_offer(self, offer_id: UUID, *, funder: str | None = None) -> Offer:
        """An offer (of `funder`, when given). Raises: OfferNotFound."""
        query = select(offers).where(offers.c.id == offer_id)
        if funder is not None:
            query = query.where(offers.c.funder == funder)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise oe.OfferNotFound(f"no offer {offer_id}")
        return _offer(row)

    def list_offers(
        self, *, funder: str | None = None, status: str | None = None,
        currency: str | None = None, merchant_id: UUID | None = None, limit: int = 50,
        starting_after: UUID | None = None, unexpired_at: datetime | None = None,
    ) -> list[Offer]:
        """Offers, newest first; `merchant_id` keeps those a payment to it could earn,
        `unexpired_at` those whose window has not closed by then."""
        t = offers
        query = select(t).order_by(t.c.id.desc()).limit(min(limit, PAGE_LIMIT_MAX + 1))
        if unexpired_at is not None:
            query = query.where(or_(t.c.ends_at.is_(None), t.c.ends_at > unexpired_at))
        if funder is not None:
            query = query.where(t.c.funder == funder)
        if status is not None:
            query = query.where(t.c.status == status)
        if currency is not None:
            query = query.where(t.c.currency == currency)
        if merchant_id is not None:
            query = query.where(or_(t.c.merchant_id.is_(None), t.c.merchant_id == merchant_id))
        if starting_after is not None:
            query = query.where(t.c.id < starting_after)
        with self._engine.connect() as connection:
            return [_offer(row) for row in connection.execute(query)]

    # Promotions pools.

    def fund_pool(self, funder: str, *, currency: str, amount_minor: int,
                  idempotency_key: str) -> OfferAnswer:
        """Move money into the funder's pool: the platform's from its bank account, a
        merchant's from its own balance.

        Raises: InvalidPromotionFunding, UnknownAsset, IdempotencyKeyReusedForPayment, and
        the ledger's rejections (InsufficientFunds: the merchant's balance is short),
        also when replaying a failed funding.
        """
        if type(amount_minor) is not int or amount_minor <= 0:
            raise oe.InvalidPromotionFunding("the amount must be a positive number of minor units")
        self._pool(funder, currency)
        request_hash = records.request_hash(currency, amount_minor)
        funding, replayed = self._claim_funding(funder, currency, amount_minor,
                                                idempotency_key, request_hash)
        if funding.status == "created":
            funding = self._move_funding(funding)
        if funding.status == "failed":
            raise pe.rejection_with_code(
                funding.failure_code, f"funding {funding.id} failed: {funding.failure_code}")
        return OfferAnswer(funding, replayed)

    def pool_balance(self, funder: str, currency: str) -> int:
        """What the funder's pool can still pay, in minor units. Raises: UnknownAsset."""
        account = self._ledger.get_account(self._pool(funder, currency))
        return account.balances.available(account.normal_side)

    def _pool(self, funder: str, currency: str) -> UUID:
        return self._chart.platform(Purpose.PROMOTIONS, currency, scope=pool_scope(funder))

    def _claim_funding(self, funder, currency, amount_minor, idempotency_key, request_hash):
        t = promotion_fundings
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(t).values(
                    id=uuid7(), funder=funder, currency=currency, amount_minor=amount_minor,
                    status="created", idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=self._clock(),
                ).on_conflict_do_nothing(index_elements=["funder", "idempotency_key"])
                .returning(t)
            ).first()
            if row is not None:
                return _funding(row), False
            row = connection.execute(
                select(t).where(t.c.funder == funder, t.c.idempotency_key == idempotency_key)
            ).one()
        return _funding(records.same_request(row, request_hash, idempotency_key)), True

    def _move_funding(self, funding: PromotionFunding) -> PromotionFunding:
        merchant = funder_merchant_id(funding.funder)
        source = (self._chart.platform(Purpose.BANK_SETTLEMENT, funding.currency)
                  if merchant is None
                  else self._chart.merchant_balance(merchant, funding.currency))
        status, transfer_id, failure_code = "succeeded", None, None
        try:
            transfer_id = self._ledger.transfer(
                [debit(source, funding.amount_minor),
                 credit(self._pool(funding.funder, funding.currency), funding.amount_minor)],
                metadata={"flow": "promotion_funding", "funding_id": str(funding.id),
                          "funder": funding.funder},
                idempotency_key=f"promotions:fund:{funding.id}", client_id=PAYMENTS_CLIENT_ID,
            ).value.id
        except DomainError as rejection:
            status, failure_code = "failed", rejection.code
        t = promotion_fundings
        with self._engine.begin() as connection:
            connection.execute(
                update(t).where(t.c.id == funding.id, t.c.status == "created").values(
                    status=status, transfer_id=transfer_id, failure_code=failure_code,
                    completed_at=self._clock(),
                )
            )
            return _funding(connection.execute(select(t).where(t.c.id == funding.id)).one())

    # Cashback.

    def reward_qr_payment(self, payment) -> Cashback | None:
        """The `on_paid` extension point of QrPayments: reward a succeeded QR payment."""
        return self.reward(QualifyingPayment(
            kind="qr_payment", id=payment.id, user_id=payment.payer_user_id,
            merchant_id=payment.merchant_id, currency=payment.currency,
            amount_minor=payment.amount_minor,
            paid_at=payment.completed_at or payment.created_at,
        ))

    def reward(self, payment: QualifyingPayment) -> Cashback | None:
        """Pay the cashback a succeeded payment earned, once; None when no offer applies.

        Safe to call again for the same payment (a retry finishes an unfinished cashback
        and pays nothing twice). Never raises a ledger rejection: an empty pool records
        the cashback `unfunded`, another rejection `failed`.
        """
        cashback = self.cashback_of_payment(payment.id)
        if cashback is None:
            cashback = self._claim_cashback(payment)
        if cashback is not None and cashback.status == "created":
            cashback = self._pay_cashback(cashback)
        return cashback

    def cashback_of_payment(self, payment_id: UUID) -> Cashback | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(cashbacks).where(cashbacks.c.payment_id == payment_id)
            ).first()
        return None if row is None else _cashback(row)

    def applicable_offers(self, connection, payment: QualifyingPayment) -> list[Offer]:
        """Offers that applied when the payment was made, best first: the most cashback,
        then the oldest. Offers made or ended after the payment do not count, so a retry
        ranks the same offers."""
        t = offers
        rows = connection.execute(
            select(t).where(
                t.c.currency == payment.currency,
                t.c.created_at <= payment.paid_at,
                t.c.starts_at <= payment.paid_at,
                or_(t.c.ends_at.is_(None), t.c.ends_at > payment.paid_at),
                or_(t.c.ended_at.is_(None), t.c.ended_at > payment.paid_at),
                t.c.min_payment_minor <= payment.amount_minor,
                or_(t.c.merchant_id.is_(None), t.c.merchant_id == payment.merchant_id),
            )
        )
        ranked = [(cashback_for(o, payment.amount_minor), o) for o in map(_offer, rows)]
        ranked.sort(key=lambda pair: (-pair[0], pair[1].created_at, pair[1].id))
        return [offer for amount, offer in ranked if amount > 0]

    def _claim_cashback(self, payment: QualifyingPayment) -> Cashback | None:
        """Record the cashback of the best applicable offer with a use left for the user."""
        try:
            with self._engine.begin() as connection:
                for offer in self.applicable_offers(connection, payment):
                    if offer.uses_per_user_max is not None and not _take_use(
                        connection, offer, payment.user_id
                    ):
                        continue
                    row = connection.execute(
                        insert(cashbacks).values(
                            id=uuid7(), payment_kind=payment.kind, payment_id=payment.id,
                            offer_id=offer.id, funder=offer.funder, user_id=payment.user_id,
                            merchant_id=payment.merchant_id, currency=payment.currency,
                            amount_minor=cashback_for(offer, payment.amount_minor),
                            status="created", created_at=self._clock(),
                        ).on_conflict_do_nothing(index_elements=["payment_id"])
                        .returning(cashbacks)
                    ).first()
                    if row is None:
                        raise _LostRace()
                    return _cashback(row)
        except _LostRace:
            pass
        # No offer had a use left, or a concurrent claim of this payment got there first
        # (its use of the offer is the one that counts): read what it recorded.
        return self.cashback_of_payment(payment.id)

    def _pay_cashback(self, cashback: Cashback) -> Cashback:
        status, transfer_id, failure_code = "paid", None, None
        try:
            transfer_id = self._ledger.transfer(
                [debit(self._pool(cashback.funder, cashback.currency), cashback.amount_minor),
                 credit(self._chart.wallet(cashback.user_id, cashback.currency),
                        cashback.amount_minor)],
                metadata={"flow": "cashback", "cashback_id": str(cashback.id),
                          "payment_id": str(cashback.payment_id),
                          "offer_id": str(cashback.offer_id), "funder": cashback.funder},
                idempotency_key=f"cashback:{cashback.id}", client_id=PAYMENTS_CLIENT_ID,
            ).value.id
        except InsufficientFunds as rejection:
            status, failure_code = "unfunded", rejection.code
        except DomainError as rejection:
            status, failure_code = "failed", rejection.code
        return self._finish_cashback(cashback, status, transfer_id, failure_code)

    def _finish_cashback(self, cashback: Cashback, status: str, transfer_id, failure_code):
        t = cashbacks
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(t).where(t.c.id == cashback.id, t.c.status == "created").values(
                    status=status, transfer_id=transfer_id, failure_code=failure_code,
                    completed_at=self._clock(),
                ).returning(t)
            ).first()
            if changed is not None and status == "paid":
                _announce_credited(connection, changed)
            if changed is not None and status != "paid":
                # A use that paid nothing is given back to the user.
                connection.execute(
                    update(offer_uses).where(
                        and_(offer_uses.c.offer_id == cashback.offer_id,
                             offer_uses.c.user_id == cashback.user_id, offer_uses.c.uses > 0)
                    ).values(uses=offer_uses.c.uses - 1)
                )
            return _cashback(connection.execute(select(t).where(t.c.id == cashback.id)).one())


def _announce_credited(connection, row) -> None:
    """`cashback.credited`, in the transaction that recorded the cashback paid."""
    append_event(connection, "cashback.credited", "cashback", str(row.id), {
        "payment_id": str(row.payment_id), "user_id": str(row.user_id),
        "merchant_id": str(row.merchant_id), "amount_minor": str(int(row.amount_minor)),
        "currency": row.currency,
    })


def _take_use(connection, offer: Offer, user_id: UUID) -> bool:
    """Count one use of `offer` by `user_id` if one is left; atomic under concurrency (the
    upsert locks the (offer, user) row, so two payments cannot both take the last use)."""
    taken = connection.execute(
        text(
            "INSERT INTO offer_uses (offer_id, user_id, uses) VALUES (:offer_id, :user_id, 1) "
            "ON CONFLICT (offer_id, user_id) DO UPDATE SET uses = offer_uses.uses + 1 "
            "WHERE offer_uses.uses < :uses_max RETURNING uses"
        ),
        {"offer_id": offer.id, "user_id": user_id, "uses_max": offer.uses_per_user_max},
    ).first()
    return taken is not None


def _check_rule(rule: OfferRule, starts_at: datetime) -> None:
    """Raises: InvalidOffer."""
    def positive_int(value) -> bool:
        return type(value) is int and value > 0

    if not positive_int(rule.cashback_bps) or rule.cashback_bps > 10_000:
        raise oe.InvalidOffer("cashback_bps is a whole number of basis points, 1 to 10000")
    if not positive_int(rule.cap_minor):
        raise oe.InvalidOffer("the cap per payment must be a positive amount")
    if type(rule.min_payment_minor) is not int or rule.min_payment_minor < 0:
        raise oe.InvalidOffer("the minimum payment must be zero or a positive amount")
    if rule.uses_per_user_max is not None and not positive_int(rule.uses_per_user_max):
        raise oe.InvalidOffer("uses_per_user_max must be a positive whole number")
    if rule.ends_at is not None and rule.ends_at <= starts_at:
        raise oe.InvalidOffer("an offer must end after it starts")
    if len(rule.description) > DESCRIPTION_LENGTH_MAX:
        raise oe.InvalidOffer(f"a description has at most {DESCRIPTION_LENGTH_MAX} characters")


def _replace_merchant(rule: OfferRule, merchant_id: UUID) -> OfferRule:
    return replace(rule, merchant_id=merchant_id)






def _offer(row) -> Offer:
    return Offer(
        id=row.id, funder=row.funder, merchant_id=row.merchant_id, currency=row.currency,
        cashback_bps=row.cashback_bps, cap_minor=int(row.cap_minor),
        min_payment_minor=int(row.min_payment_minor), uses_per_user_max=row.uses_per_user_max,
        starts_at=row.starts_at, ends_at=row.ends_at, status=row.status,
        description=row.description, created_at=row.created_at, ended_at=row.ended_at,
    )


def _cashback(row) -> Cashback:
    return Cashback(
        id=row.id, payment_kind=row.payment_kind, payment_id=row.payment_id,
        offer_id=row.offer_id, funder=row.funder, user_id=row.user_id,
        merchant_id=row.merchant_id, currency=row.currency, amount_minor=int(row.amount_minor),
        status=row.status, failure_code=row.failure_code, transfer_id=row.transfer_id,
        created_at=row.created_at, completed_at=row.completed_at,
    )


def _funding(row) -> PromotionFunding:
    return PromotionFunding(
        id=row.id, funder=row.funder, currency=row.currency,
        amount_minor=int(row.amount_minor), status=row.status, failure_code=row.failure_code,
        transfer_id=row.transfer_id, created_at=row.created_at,
    )
