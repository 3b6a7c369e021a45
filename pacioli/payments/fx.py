"""International transfers: a short-lived quote, then one linked ledger batch.

A quote fixes, for a source amount, the fee, the customer rate (the mid rate less the
platform's spread), the target amount and the rounding remainder; it is valid for
`QUOTE_TTL_S` seconds and executes once. Executing posts two transfers together (a
linked batch, so both or neither):

    source currency: sender wallet  → fee_revenue (fee) + fx_liquidity (converted)
                                      + rounding (what rounding the target down left)
    target currency: fx_liquidity   → recipient wallet (target amount)

so every asset balances on its own, and no fraction of a minor unit is lost: the target
is rounded down, and the source units it did not need are booked to `rounding`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import UUID

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways.fx import FxRateSource, FxRateUnavailable
from pacioli.ledger import Ledger, TransferSpec, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.tables import fx_quotes

QUOTE_TTL_S = 60
FEE_BPS = 50  # 0.50% of the source amount, rounded half up
SPREAD_BPS = 100  # the customer rate is 1.00% below the mid rate
BPS = 10_000


@dataclass(frozen=True, slots=True)
class FxPrice:
    source_amount_minor: int  # debited from the sender
    fee_minor: int
    converted_minor: int  # source units that buy the target amount
    rounding_minor: int  # source units left over by rounding the target down
    target_amount_minor: int  # credited to the recipient
    customer_rate: Fraction  # target major units per source major unit


def price(
    source_amount_minor: int, *, source_scale: int, target_scale: int, mid_rate: Fraction,
    fee_bps: int = FEE_BPS, spread_bps: int = SPREAD_BPS,
) -> FxPrice:
    """Price a conversion exactly. Raises: InvalidPayment (too small to convert)."""
    if type(source_amount_minor) is not int or source_amount_minor <= 0:
        raise pe.InvalidPayment("the amount must be a positive number of minor units")
    fee = _round_half_up(Fraction(source_amount_minor * fee_bps, BPS))
    net = source_amount_minor - fee
    customer_rate = mid_rate * Fraction(BPS - spread_bps, BPS)
    # Target minor units per source minor unit.
    per_minor = customer_rate * Fraction(10**target_scale, 10**source_scale)
    target = math.floor(net * per_minor)
    if net <= 0 or target <= 0:
        raise pe.InvalidPayment("the amount is too small to convert")
    converted = math.ceil(target / per_minor)
    return FxPrice(source_amount_minor, fee, converted, net - converted, target, customer_rate)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class FxQuote:
    id: UUID
    user_id: UUID
    recipient_user_id: UUID
    source_currency: str
    target_currency: str
    source_amount_minor: int
    fee_minor: int
    converted_minor: int
    rounding_minor: int
    target_amount_minor: int
    customer_rate: str  # exact, as "numerator/denominator"
    mid_rate: str
    status: str  # open, executed
    created_at: datetime
    expires_at: datetime
    executed_at: datetime | None
    transfer_ids: list[str]

    def rate(self) -> Fraction:
        return Fraction(self.customer_rate)


@dataclass(frozen=True, slots=True)
class FxAnswer:
    value: FxQuote
    replayed: bool


class InternationalTransfers:
    """Quotes and executes transfers between wallets in different currencies."""

    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, rates: FxRateSource,
        *, scale_of, clock=lambda: datetime.now(UTC), quote_ttl_s: int = QUOTE_TTL_S,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._rates = rates
        self._scale_of = scale_of  # currency -> scale; raises UnknownAsset
        self._clock = clock
        self._quote_ttl_s = quote_ttl_s

    def quote(
        self, *, user_id: UUID, recipient_user_id: UUID, source_currency: str,
        target_currency: str, source_amount_minor: int, idempotency_key: str,
    ) -> FxAnswer:
        """Raises: InvalidPayment, UnknownAsset, FxPairUnavailable,
        IdempotencyKeyReusedForPayment."""
        if source_currency == target_currency:
            raise pe.InvalidPayment("source and target currencies must differ")
        request_hash = records.request_hash(recipient_user_id, source_currency, target_currency,
                             source_amount_minor)
        existing = self._quote_by_key(user_id, idempotency_key)
        if existing is not None:
            return self._replay(existing, request_hash, idempotency_key)
        try:
            mid = self._rates.mid_rate(source_currency, target_currency)
        except FxRateUnavailable as error:
            raise pe.FxPairUnavailable(str(error)) from None
        priced = price(
            source_amount_minor, source_scale=self._scale_of(source_currency),
            target_scale=self._scale_of(target_currency), mid_rate=mid.rate,
        )
        now = self._clock()
        t = fx_quotes
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(t).values(
                    id=uuid7(), user_id=user_id, recipient_user_id=recipient_user_id,
                    source_currency=source_currency, target_currency=target_currency,
                    source_amount_minor=priced.source_amount_minor, fee_minor=priced.fee_minor,
                    converted_minor=priced.converted_minor,
                    rounding_minor=priced.rounding_minor,
                    target_amount_minor=priced.target_amount_minor,
                    customer_rate=str(priced.customer_rate), mid_rate=str(mid.rate),
                    status="open", created_at=now,
                    expires_at=now + timedelta(seconds=self._quote_ttl_s),
                    idempotency_key=idempotency_key, request_hash=request_hash,
                ).on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                .returning(t)
            ).first()
        if row is None:  # a concurrent request with the same key won the insert
            return self._replay(self._quote_by_key(user_id, idempotency_key), request_hash,
                                idempotency_key)
        return FxAnswer(_quote(row), replayed=False)

    def execute(self, *, user_id: UUID, quote_id: UUID, idempotency_key: str) -> FxAnswer:
        """Post the quoted transfer, once.

        Raises: FxQuoteNotFound, FxQuoteExpired, FxQuoteAlreadyExecuted (another key
        executed it), and the ledger's rejections (InsufficientFunds ...).
        """
        quote = self.get_quote(user_id, quote_id)
        if quote.status == "executed":
            if self._executed_with(quote_id) == idempotency_key:
                return FxAnswer(quote, replayed=True)
            raise pe.FxQuoteAlreadyExecuted(f"quote {quote_id} was executed already")
        transfers = self._post(quote)
        t = fx_quotes
        with self._engine.begin() as connection:
            executed_row = connection.execute(
                update(t).where(t.c.id == quote.id, t.c.status == "open").values(
                    status="executed", executed_at=self._clock(),
                    execution_key=idempotency_key,
                    transfer_ids=[str(transfer.id) for transfer in transfers],
                ).returning(t)
            ).first()
            if executed_row is not None:  # Not when a concurrent execution recorded it.
                _announce_executed(connection, executed_row)
        executed = self.get_quote(user_id, quote_id)
        if self._executed_with(quote_id) != idempotency_key:
            # Two executions with different keys raced: the ledger posted once (its key is
            # the quote's), and the other key recorded the execution.
            raise pe.FxQuoteAlreadyExecuted(f"quote {quote_id} was executed already")
        return FxAnswer(executed, replayed=False)

    def get_quote(self, user_id: UUID, quote_id: UUID) -> FxQuote:
        """A quote the user asked for. Raises: FxQuoteNotFound."""
        t = fx_quotes
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.id == quote_id, t.c.user_id == user_id)
            ).first()
        if row is None:
            raise pe.FxQuoteNotFound(f"no quote {quote_id}")
        return _quote(row)

    def _specs(self, quote: FxQuote) -> list[TransferSpec]:
        src, tgt = quote.source_currency, quote.target_currency
        metadata = {"flow": "fx", "quote_id": str(quote.id), "rate": quote.customer_rate}
        source_legs = [
            debit(self._chart.wallet(quote.user_id, src), quote.source_amount_minor),
            credit(self._chart.platform(Purpose.FX_LIQUIDITY, src), quote.converted_minor),
        ]
        if quote.fee_minor:
            source_legs.append(credit(self._chart.platform(Purpose.FEE_REVENUE, src),
                                      quote.fee_minor))
        if quote.rounding_minor:
            source_legs.append(credit(self._chart.platform(Purpose.ROUNDING, src),
                                      quote.rounding_minor))
        target_legs = [
            debit(self._chart.platform(Purpose.FX_LIQUIDITY, tgt), quote.target_amount_minor),
            credit(self._chart.wallet(quote.recipient_user_id, tgt), quote.target_amount_minor),
        ]
        return [
            TransferSpec(tuple(source_legs), metadata, False, None, None),
            TransferSpec(tuple(target_legs), metadata, False, None, None),
        ]

    def _post(self, quote: FxQuote) -> list:
        """Post the quote's batch (once: the ledger key is the quote's).

        After the quote expired, only the transfers an earlier execution posted before
        dying unrecorded are returned: that money moved at the quoted price, so the quote
        is finished (and announced) rather than left open. Raises: FxQuoteExpired (nothing
        was posted), and the ledger's rejections.
        """
        if self._clock() < quote.expires_at:
            return self._ledger.transfer_batch(
                self._specs(quote), idempotency_key=f"fx:{quote.id}",
                client_id=PAYMENTS_CLIENT_ID,
            ).value
        posted = self._ledger.list_transfers(
            metadata={"flow": "fx", "quote_id": str(quote.id)}, limit=2
        )
        if not posted:
            raise pe.FxQuoteExpired(
                f"quote {quote.id} expired at {quote.expires_at.isoformat()}")
        return posted

    def _quote_by_key(self, user_id: UUID, idempotency_key: str):
        t = fx_quotes
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.idempotency_key == idempotency_key)
            ).first()

    def _executed_with(self, quote_id: UUID) -> str | None:
        with self._engine.connect() as connection:
            return connection.execute(
                select(fx_quotes.c.execution_key).where(fx_quotes.c.id == quote_id)
            ).scalar()

    @staticmethod
    def _replay(row, request_hash: str, idempotency_key: str) -> FxAnswer:
        records.same_request(row, request_hash, idempotency_key)
        return FxAnswer(_quote(row), replayed=True)


def _announce_executed(connection, row) -> None:
    """`international_transfer.succeeded`, in the transaction that marked the quote
    executed; the transfer's id is the quote's."""
    append_event(connection, "international_transfer.succeeded", "international_transfer",
                 str(row.id), {
                     "transfer_id": str(row.id), "sender_user_id": str(row.user_id),
                     "recipient_user_id": str(row.recipient_user_id),
                     "source_amount_minor": str(int(row.source_amount_minor)),
                     "source_currency": row.source_currency,
                     "target_amount_minor": str(int(row.target_amount_minor)),
                     "target_currency": row.target_currency,
                 })


def _quote(row) -> FxQuote:
    return FxQuote(
        id=row.id, user_id=row.user_id, recipient_user_id=row.recipient_user_id,
        source_currency=row.source_currency, target_currency=row.target_currency,
        source_amount_minor=row.source_amount_minor, fee_minor=row.fee_minor,
        converted_minor=row.converted_minor, rounding_minor=row.rounding_minor,
        target_amount_minor=row.target_amount_minor, customer_rate=row.customer_rate,
        mid_rate=row.mid_rate, status=row.status, created_at=row.created_at,
        expires_at=row.expires_at, executed_at=row.executed_at,
        transfer_ids=list(row.transfer_ids or []),
    )
