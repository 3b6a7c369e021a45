"""A merchant's settlement bank account: where its payouts go.

One account per merchant: an IBAN, or a US-style account number with an ABA routing
number, and the account holder's name. The full number is stored because a payout
needs it; the API only ever shows it masked (last four characters). Encrypting it at
rest is out of scope (see docs/users.md).

Setting the first account needs nothing more than the merchant's key. Replacing it
needs the owning user's TOTP code (header Pacioli-OTP), checked in the same database
transaction as the change: redirecting payouts is what an attacker holding a leaked
merchant key would do. Sending the same details again changes nothing and needs no code.

A payout goes through the payment gateway, which pays to a token, not to a number: an
account number with a routing number is tokenized (`tokenize_bank_account`, before the
database transaction, never inside it) and the token kept beside the details. Each new
account on file gets a new `destination_id` and a `payout_destination.added` event in
the transaction that writes it. The gateway's Protocol tokenizes US ACH accounts only,
so an IBAN is kept but cannot be paid out to (`SettlementAccountNotPayable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Engine, MetaData, Table, Text, Uuid, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways.base import PaymentGateway
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import totp
from pacioli.payments.identity_errors import InvalidBankAccount, SettlementAccountNotFound
from pacioli.payments.settlement_errors import SettlementAccountNotPayable

HOLDER_LENGTH_MAX = 140

_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_ACCOUNT_NUMBER = re.compile(r"[0-9]{4,17}")
_ROUTING_NUMBER = re.compile(r"[0-9]{9}")

metadata = MetaData()

settlement_accounts = Table(
    "merchant_settlement_accounts",
    metadata,
    Column("merchant_id", Uuid, primary_key=True),
    Column("account_holder", Text, nullable=False),
    Column("iban", Text, nullable=True),
    Column("account_number", Text, nullable=True),
    Column("routing_number", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Migration 0013: the gateway's token for payouts, and which account this is.
    Column("payout_gateway", Text, nullable=True),
    Column("payout_token", Text, nullable=True),
    Column("destination_id", Uuid, nullable=False),
)


@dataclass(frozen=True, slots=True)
class BankDetails:
    """Validated, normalized bank details: an IBAN, or an account and routing number."""

    account_holder: str
    iban: str | None = None
    account_number: str | None = None
    routing_number: str | None = None

    @property
    def masked(self) -> str:
        """The number with all but its last four characters hidden."""
        number = self.iban or self.account_number or ""
        head = self.iban[:2] if self.iban else ""
        return f"{head}{'*' * (len(number) - 4 - len(head))}{number[-4:]}"

    @property
    def last4(self) -> str:
        return (self.iban or self.account_number or "")[-4:]


@dataclass(frozen=True, slots=True)
class SettlementAccount:
    merchant_id: UUID
    details: BankDetails
    created_at: datetime
    updated_at: datetime
    destination_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class PayoutDestination:
    """Where a merchant's payouts go: the gateway's token for its settlement account."""

    merchant_id: UUID
    destination_id: UUID
    gateway: str
    token: str


# Pure validation.


def bank_details(
    *,
    account_holder: str,
    iban: str | None = None,
    account_number: str | None = None,
    routing_number: str | None = None,
) -> BankDetails:
    """Normalize and check bank details. Raises: InvalidBankAccount."""
    holder = " ".join(account_holder.split())
    if not 1 <= len(holder) <= HOLDER_LENGTH_MAX:
        raise InvalidBankAccount(f"the account holder has 1 to {HOLDER_LENGTH_MAX} characters")
    if iban is not None and account_number is None and routing_number is None:
        return BankDetails(holder, iban=_checked_iban(iban))
    if iban is None and account_number is not None and routing_number is not None:
        number = re.sub(r"[\s-]", "", account_number)
        if not _ACCOUNT_NUMBER.fullmatch(number):
            raise InvalidBankAccount("an account number has 4 to 17 digits")
        return BankDetails(holder, account_number=number,
                           routing_number=_checked_routing(routing_number))
    raise InvalidBankAccount("give either an iban, or an account_number with a routing_number")


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as 10-35, mod 97 = 1."""
    if not _IBAN.fullmatch(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def routing_is_valid(routing: str) -> bool:
    """An ABA routing number: 9 digits whose 3-7-1 weighted sum is a multiple of 10."""
    if not _ROUTING_NUMBER.fullmatch(routing):
        return False
    digits = [int(char) for char in routing]
    weighted = sum(w * d for w, d in zip([3, 7, 1] * 3, digits, strict=True))
    return weighted % 10 == 0


def _checked_iban(iban: str) -> str:
    normalized = re.sub(r"\s", "", iban).upper()
    if not iban_is_valid(normalized):
        raise InvalidBankAccount("the IBAN is malformed or its check digits are wrong")
    return normalized


def _checked_routing(routing: str) -> str:
    normalized = routing.strip()
    if not routing_is_valid(normalized):
        raise InvalidBankAccount("the routing number is not 9 digits with a valid checksum")
    return normalized


# Commands and reads.


def set_settlement_account(
    engine: Engine,
    merchant_id: UUID,
    *,
    owner_user_id: UUID,
    details: BankDetails,
    one_time_code: str | None,
    gateway: PaymentGateway,
) -> tuple[SettlementAccount, bool]:
    """Put `details` on file; return the account and whether it changed.

    An account and routing number are tokenized at `gateway` first, outside the
    database transaction; a new account appends `payout_destination.added`.

    Raises: SecondFactorRequired, InvalidSecondFactor (replacing an existing account
    without a valid code of the owner's authenticator), and the gateway's
    InvalidBankAccount or GatewayUnavailable (then nothing is written).
    """
    current = _row(engine, merchant_id)
    if current is not None and _account_of(current).details == details and (
        current.payout_gateway == gateway.name or details.iban is not None
    ):
        return _account_of(current), False
    token = _tokenized(gateway, details)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        row = connection.execute(
            select(settlement_accounts)
            .where(settlement_accounts.c.merchant_id == merchant_id).with_for_update()
        ).first()
        if row is not None and _account_of(row).details == details:
            # The same account (tokenized again only if it was on file without a token).
            row = _store_token(connection, row, gateway.name, token) or row
            return _account_of(row), False
        if row is not None:
            totp.verify_code(connection, owner_user_id, one_time_code)
        # From here on the change is allowed and is written.
        values = {"account_holder": details.account_holder, "iban": details.iban,
                  "account_number": details.account_number,
                  "routing_number": details.routing_number, "updated_at": now,
                  "payout_gateway": None if token is None else gateway.name,
                  "payout_token": token, "destination_id": uuid7()}
        written = connection.execute(
            insert(settlement_accounts)
            .values(merchant_id=merchant_id, created_at=now, **values)
            .on_conflict_do_update(index_elements=[settlement_accounts.c.merchant_id],
                                   set_=values)
            .returning(settlement_accounts)
        ).one()
        _destination_added(connection, written, owner_user_id, now)
    return _account_of(written), True


def payout_destination(
    engine: Engine, gateway: PaymentGateway, merchant_id: UUID
) -> PayoutDestination:
    """The token a payout to the merchant's settlement account uses at `gateway`.

    An account put on file before payouts existed (or under another gateway) is
    tokenized now, outside any database transaction.

    Raises: SettlementAccountNotFound, SettlementAccountNotPayable (an IBAN), and the
    gateway's InvalidBankAccount or GatewayUnavailable.
    """
    row = _row(engine, merchant_id)
    if row is None:
        raise SettlementAccountNotFound()
    if row.payout_token is None or row.payout_gateway != gateway.name:
        token = _tokenized(gateway, _account_of(row).details)
        if token is None:
            raise SettlementAccountNotPayable(
                "payouts go to a US account and routing number; this account is an IBAN"
            )
        with engine.begin() as connection:
            _store_token(connection, row, gateway.name, token)
        row = _row(engine, merchant_id)
    return PayoutDestination(merchant_id, row.destination_id, row.payout_gateway,
                             row.payout_token)


def _tokenized(gateway: PaymentGateway, details: BankDetails) -> str | None:
    """The gateway's token for an account and routing number; None for an IBAN."""
    if details.account_number is None or details.routing_number is None:
        return None
    return gateway.tokenize_bank_account(details.account_number, details.routing_number).token


def _store_token(connection, row, gateway_name: str, token: str | None):
    """Keep a token for the account `row` shows, unless the account changed meanwhile."""
    if token is None or (row.payout_token is not None and row.payout_gateway == gateway_name):
        return None
    t = settlement_accounts
    return connection.execute(
        update(t).where(t.c.merchant_id == row.merchant_id,
                        t.c.destination_id == row.destination_id)
        .values(payout_gateway=gateway_name, payout_token=token).returning(t)
    ).first()


def _destination_added(connection, row, owner_user_id: UUID, now: datetime) -> None:
    append_event(connection, "payout_destination.added", "merchant", str(row.merchant_id), {
        "merchant_id": str(row.merchant_id), "owner_user_id": str(owner_user_id),
        "kind": "settlement_account",
        "masked": f"\u2022\u2022\u2022\u2022 {(row.iban or row.account_number)[-4:]}",
        "destination_id": str(row.destination_id),
    }, now=now)


def _row(engine: Engine, merchant_id: UUID):
    with engine.connect() as connection:
        return connection.execute(
            select(settlement_accounts).where(settlement_accounts.c.merchant_id == merchant_id)
        ).first()


def get_settlement_account(engine: Engine, merchant_id: UUID) -> SettlementAccount:
    """Raises: SettlementAccountNotFound."""
    with engine.connect() as connection:
        row = connection.execute(
            select(settlement_accounts).where(settlement_accounts.c.merchant_id == merchant_id)
        ).first()
    if row is None:
        raise SettlementAccountNotFound()
    return _account_of(row)


def _account_of(row) -> SettlementAccount:
    details = BankDetails(row.account_holder, row.iban, row.account_number, row.routing_number)
    return SettlementAccount(row.merchant_id, details, row.created_at, row.updated_at,
                             row.destination_id)
