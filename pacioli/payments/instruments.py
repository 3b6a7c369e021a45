"""Linked cards and bank accounts: tokenized at the gateway, kept as token, brand and last four.

A card number and its CVC pass through `link_card` to the gateway's `tokenize_card`
and go no further: they are not stored, logged, hashed or put in an error message.
What Pacioli keeps is what the gateway returns (token, brand, last four, expiry). A bank
account is kept as its token, last four digits and routing number.

Linking is idempotent per (user, kind, Idempotency-Key). The request hash that tells a
replay from a reused key is over what may be kept (last four and expiry, or last four and
routing number), never the full number: a reused key with another card of the same last
four and expiry replays the first link, which links nothing new.

A bank account is a payout destination: when the user has an authenticator enrolled,
linking one needs its code (docs/payments.md, "Top-up and withdrawal"). The code is
checked in the transaction that records the link, so it is spent only if the link is,
and `payout_destination.added` is appended to the outbox in that transaction too (a
replayed link adds nothing, so announces nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways.base import PaymentGateway
from pacioli.gateways.cards import normalize_card_number, validate_bank_account
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import funding_errors as fe
from pacioli.payments import records, totp
from pacioli.payments.funding_tables import funding_instruments
from pacioli.payments.identity_errors import SecondFactorRequired

CARD = "card"
BANK_ACCOUNT = "bank_account"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A linked card or bank account; `token` is the gateway's and is never shown."""

    id: UUID
    user_id: UUID
    kind: str  # card, bank_account
    gateway: str
    token: str
    brand: str | None
    last4: str
    exp_month: int | None
    exp_year: int | None
    routing_number: str | None
    status: str  # active, removed
    created_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class InstrumentAnswer:
    """A link, and whether an earlier request with the same key made it."""

    value: Instrument
    replayed: bool


class Instruments:
    """Links, lists and removes a user's cards and bank accounts."""

    def __init__(self, engine: Engine, gateway: PaymentGateway) -> None:
        self._engine = engine
        self._gateway = gateway

    def link_card(
        self, *, user_id: UUID, number: str, exp_month: int, exp_year: int, cvc: str,
        idempotency_key: str,
    ) -> InstrumentAnswer:
        """Tokenize a card at the gateway and keep its token, brand, last four and expiry.

        Raises: InvalidCardNumber, CardBrandUnsupported, InvalidCardExpiry, CardExpired,
        InvalidCvc, GatewayUnavailable, IdempotencyKeyReusedForFunding.
        """
        last4 = normalize_card_number(number)[-4:]
        request_hash = records.request_hash(CARD, last4, exp_month, exp_year)
        existing = self._find(user_id, CARD, idempotency_key)
        if existing is not None:
            return InstrumentAnswer(_replayed(existing, request_hash, idempotency_key), True)
        token = self._gateway.tokenize_card(number, exp_month, exp_year, cvc)
        return self._record(
            user_id, CARD, idempotency_key, request_hash, code_needed=False, code=None,
            token=token.token, brand=str(token.brand), last4=token.last4,
            exp_month=token.exp_month, exp_year=token.exp_year,
        )

    def link_bank_account(
        self, *, user_id: UUID, account_number: str, routing_number: str,
        idempotency_key: str, one_time_code: str | None = None,
    ) -> InstrumentAnswer:
        """Tokenize a bank account (a payout destination) and keep its token and last four.

        Needs the authenticator's code when the user has one enrolled.

        Raises: InvalidBankAccount, SecondFactorRequired, InvalidSecondFactor,
        GatewayUnavailable, IdempotencyKeyReusedForFunding.
        """
        account, routing = validate_bank_account(account_number, routing_number)
        request_hash = records.request_hash(BANK_ACCOUNT, account[-4:], routing)
        existing = self._find(user_id, BANK_ACCOUNT, idempotency_key)
        if existing is not None:
            return InstrumentAnswer(_replayed(existing, request_hash, idempotency_key), True)
        code_needed = totp.is_enrolled(self._engine, user_id)
        if code_needed and not one_time_code:
            raise SecondFactorRequired(
                "linking a payout destination needs the authenticator's code in Pacioli-OTP"
            )
        token = self._gateway.tokenize_bank_account(account, routing)
        return self._record(
            user_id, BANK_ACCOUNT, idempotency_key, request_hash, code_needed=code_needed,
            code=one_time_code, token=token.token, last4=token.last4,
            routing_number=token.routing_number,
        )

    def get(self, user_id: UUID, instrument_id: UUID, kind: str | None = None) -> Instrument:
        """One of the user's instruments (also a removed one). Raises: InstrumentNotFound."""
        t = funding_instruments
        query = select(t).where(t.c.id == instrument_id, t.c.user_id == user_id)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise fe.InstrumentNotFound(f"no {kind or 'instrument'} {instrument_id}")
        return _instrument(row)

    def usable(self, user_id: UUID, instrument_id: UUID, kind: str) -> Instrument:
        """An active instrument of the user. Raises: InstrumentNotFound, InstrumentRemoved."""
        instrument = self.get(user_id, instrument_id, kind)
        if instrument.status != "active":
            raise fe.InstrumentRemoved(f"{kind} {instrument_id} was removed")
        return instrument

    def list(
        self, user_id: UUID, kind: str, *, limit: int = 50, starting_after: UUID | None = None
    ) -> list[Instrument]:
        """The user's active instruments of one kind, newest first."""
        t = funding_instruments
        query = records.newest_first(
            t, t.c.user_id == user_id, t.c.kind == kind, t.c.status == "active",
            limit=limit, starting_after=starting_after,
        )
        with self._engine.connect() as connection:
            return [_instrument(row) for row in connection.execute(query)]

    def remove(self, user_id: UUID, instrument_id: UUID, kind: str) -> Instrument:
        """Stop using an instrument; past top-ups and withdrawals keep naming it.

        Removing twice is harmless. Raises: InstrumentNotFound.
        """
        self.get(user_id, instrument_id, kind)
        t = funding_instruments
        with self._engine.begin() as connection:
            connection.execute(
                update(t).where(t.c.id == instrument_id, t.c.status == "active")
                .values(status="removed", removed_at=datetime.now(UTC))
            )
        return self.get(user_id, instrument_id, kind)

    def _find(self, user_id: UUID, kind: str, idempotency_key: str):
        t = funding_instruments
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.kind == kind,
                                t.c.idempotency_key == idempotency_key)
            ).first()

    def _record(
        self, user_id: UUID, kind: str, idempotency_key: str, request_hash: str, *,
        code_needed: bool, code: str | None, **values: Any,
    ) -> InstrumentAnswer:
        """Insert the link (checking the second factor in the same transaction)."""
        t = funding_instruments
        with self._engine.begin() as connection:
            if code_needed:
                totp.verify_code(connection, user_id, code)
            inserted = connection.execute(
                insert(t).values(
                    id=uuid7(), user_id=user_id, kind=kind, gateway=self._gateway.name,
                    status="active", idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=datetime.now(UTC), **values,
                )
                .on_conflict_do_nothing(index_elements=["user_id", "kind", "idempotency_key"])
                .returning(t)
            ).first()
            if inserted is not None and kind == BANK_ACCOUNT:
                _announce_payout_destination(connection, inserted)
        if inserted is not None:
            return InstrumentAnswer(_instrument(inserted), False)
        # A concurrent request with the same key linked first; its token is the one kept.
        existing = self._find(user_id, kind, idempotency_key)
        return InstrumentAnswer(_replayed(existing, request_hash, idempotency_key), True)


def _announce_payout_destination(connection, row) -> None:
    """`payout_destination.added` for a bank account just linked (withdrawals pay to it)."""
    append_event(connection, "payout_destination.added", "user", str(row.user_id), {
        "user_id": str(row.user_id), "kind": BANK_ACCOUNT, "masked": f"•••• {row.last4}",
        "destination_id": str(row.id),
    })


def _replayed(row, request_hash: str, idempotency_key: str) -> Instrument:
    """The record an earlier request with this key made.

    Raises: IdempotencyKeyReusedForFunding.
    """
    return _instrument(
        records.same_request(row, request_hash, idempotency_key, fe.IdempotencyKeyReusedForFunding)
    )


def _instrument(row) -> Instrument:
    return Instrument(**{column.name: getattr(row, column.name)
                         for column in funding_instruments.columns
                         if column.name not in ("idempotency_key", "request_hash")})
