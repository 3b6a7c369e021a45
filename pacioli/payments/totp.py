"""Second factor: TOTP (RFC 6238) enrolment, confirmation and verification, with pyotp.

Enrolment makes a random base32 secret and returns it with its `otpauth://` URI once;
the user adds it to an authenticator app and confirms with a first code. Until then the
second factor is not active. Verification accepts the code of the current 30-second
step or of one step either side (clock drift), and never a step at or before the last
one accepted, so a code cannot be used twice (RFC 6238 section 5.2).

Secrets are stored as they are: encrypting them at rest (a KMS-held key) is out of scope
(see docs/users.md). Actions that need a second factor call `verify_code` (or
`require_second_factor` for amounts) inside the transaction of the action they guard.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pyotp
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    Text,
    Uuid,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from pacioli.config import get_settings
from pacioli.payments.identity_errors import (
    InvalidSecondFactor,
    SecondFactorRequired,
    TotpAlreadyEnrolled,
    TotpNotEnrolled,
)

ISSUER = "Pacioli"
STEP_SECONDS = 30
DIGITS = 6
# Steps either side of the current one whose codes are still accepted.
WINDOW_STEPS = 1

metadata = MetaData()

user_totp = Table(
    "user_totp",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("secret", Text, nullable=False),
    Column("last_used_step", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A new TOTP secret and its provisioning URI, shown this once."""

    secret: str
    otpauth_uri: str


# Pure leaves.


def step_of(now: datetime) -> int:
    """The TOTP time step (counter) that contains `now`."""
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code of `secret` at time step `step`."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(
    secret: str, code: str, *, now: datetime, last_used_step: int | None
) -> int | None:
    """The step within the window whose code is `code` and is newer than the last used one.

    Every candidate is compared (in constant time), so timing does not say which matched.
    """
    current = step_of(now)
    found = None
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    if found is None or (last_used_step is not None and found <= last_used_step):
        return None
    return found


# Commands.


def enrol(engine: Engine, user_id: UUID, *, account_name: str) -> Enrolment:
    """A new secret for the user, replacing one not yet confirmed.

    Raises: TotpAlreadyEnrolled (a confirmed authenticator exists).
    """
    secret = pyotp.random_base32()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        replaced = connection.execute(
            insert(user_totp)
            .values(user_id=user_id, secret=secret, created_at=now)
            .on_conflict_do_update(
                index_elements=[user_totp.c.user_id],
                set_={"secret": secret, "created_at": now, "last_used_step": None},
                where=user_totp.c.confirmed_at.is_(None),
            )
            .returning(user_totp.c.user_id)
        ).first()
        if replaced is None:
            raise TotpAlreadyEnrolled()
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_name, issuer_name=ISSUER
    )
    return Enrolment(secret, uri)


def confirm(engine: Engine, user_id: UUID, code: str, *, now: datetime | None = None) -> None:
    """Activate the pending authenticator with a first code.

    Raises: TotpNotEnrolled, TotpAlreadyEnrolled, InvalidSecondFactor.
    """
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        row = _lock(connection, user_id)
        if row is None:
            raise TotpNotEnrolled()
        if row.confirmed_at is not None:
            raise TotpAlreadyEnrolled()
        step = matching_step(row.secret, code, now=now, last_used_step=row.last_used_step)
        if step is None:
            raise InvalidSecondFactor()
        connection.execute(
            user_totp.update().where(user_totp.c.user_id == user_id)
            .values(confirmed_at=now, last_used_step=step)
        )


def verify_code(
    connection: Connection, user_id: UUID, code: str | None, *, now: datetime | None = None
) -> None:
    """Accept the user's code once, inside the caller's transaction (so it is spent
    only if the guarded action commits).

    Raises: SecondFactorRequired (no code given, or no confirmed authenticator),
    InvalidSecondFactor (wrong, outside the window, or already used).
    """
    row = _lock(connection, user_id)
    if row is None or row.confirmed_at is None:
        raise SecondFactorRequired(
            "this action needs a second factor: enrol an authenticator (POST /v1/me/totp)"
        )
    if not code:
        raise SecondFactorRequired("send the authenticator's code in the Pacioli-OTP header")
    step = matching_step(row.secret, code, now=now or datetime.now(UTC),
                         last_used_step=row.last_used_step)
    if step is None:
        raise InvalidSecondFactor()
    connection.execute(
        user_totp.update().where(user_totp.c.user_id == user_id).values(last_used_step=step)
    )


def second_factor_needed(amount_minor: int) -> bool:
    """Whether moving `amount_minor` out (a withdrawal, a payout) needs a TOTP code."""
    return amount_minor > get_settings().second_factor_threshold_minor


def require_second_factor(
    connection: Connection,
    user_id: UUID,
    code: str | None,
    *,
    amount_minor: int,
    now: datetime | None = None,
) -> None:
    """Verify the code when the amount is above the threshold; otherwise do nothing.

    Raises: SecondFactorRequired, InvalidSecondFactor.
    """
    if second_factor_needed(amount_minor):
        verify_code(connection, user_id, code, now=now)


def check_second_factor(
    engine: Engine, user_id: UUID, code: str | None, *, amount_minor: int | None = None
) -> None:
    """`verify_code` (or, given an amount, `require_second_factor`) in a transaction of
    its own, for flows whose guarded write is not on this database connection (a ledger
    command). The code is spent even if the flow then fails; the user enters the next one.

    Raises: SecondFactorRequired, InvalidSecondFactor.
    """
    with engine.begin() as connection:
        if amount_minor is None:
            verify_code(connection, user_id, code)
        else:
            require_second_factor(connection, user_id, code, amount_minor=amount_minor)


def is_enrolled(engine: Engine, user_id: UUID) -> bool:
    """Whether the user has a confirmed authenticator."""
    with engine.connect() as connection:
        confirmed_at = connection.execute(
            select(user_totp.c.confirmed_at).where(user_totp.c.user_id == user_id)
        ).scalar()
    return confirmed_at is not None


def _lock(connection: Connection, user_id: UUID):
    # FOR UPDATE: two requests with the same code cannot both see it unused.
    return connection.execute(
        select(user_totp).where(user_totp.c.user_id == user_id).with_for_update()
    ).first()
