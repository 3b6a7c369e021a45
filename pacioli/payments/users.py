"""Users: sign-up with an email address or phone number and a password, and password checks.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher), which verifies in
constant time. A check against an unknown login still verifies a hash, so the time a
login takes does not tell whether an account exists. When the hashing parameters change
(settings `password_hash_*`), a successful login rehashes the password.

Emails are stored lower-case; phone numbers in E.164 (`+` and 8-15 digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, Table, Text, Uuid, select
from sqlalchemy.exc import IntegrityError

from pacioli.config import Settings, get_settings
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.service.ledger import Written
from pacioli.payments import identity_idempotency as idempotency
from pacioli.payments.identity_errors import (
    ContactRequired,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidPhone,
    PhoneTaken,
    UserNotFound,
    WeakPassword,
)
from pacioli.payments.identity_idempotency import WriteKey

PASSWORD_LENGTH_MIN = 10
# Argon2 hashes whatever it is given; a limit keeps one request from costing too much.
PASSWORD_LENGTH_MAX = 1024
EMAIL_LENGTH_MAX = 254
DISPLAY_NAME_LENGTH_MAX = 100

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9][0-9]{7,14}")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=True, unique=True),
    Column("phone", Text, nullable=True, unique=True),
    Column("display_name", Text, nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class User:
    """A user as others in the system may know them (no password hash)."""

    id: UUID
    email: str | None
    phone: str | None
    display_name: str | None
    created_at: datetime


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
    )


def password_hasher(settings: Settings | None = None) -> PasswordHasher:
    """The argon2id hasher with the configured parameters."""
    settings = settings or get_settings()
    return _hasher(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )


@lru_cache(maxsize=4)
def _decoy_hash(hasher: PasswordHasher) -> str:
    """A hash no password matches, verified when the login names no account."""
    return hasher.hash(uuid7().hex)


# Validation.


def normalize_email(email: str) -> str:
    """The address lower-cased and stripped. Raises: InvalidEmail."""
    normalized = email.strip().lower()
    if len(normalized) > EMAIL_LENGTH_MAX or not _EMAIL.fullmatch(normalized):
        raise InvalidEmail(f"{email!r} is not an email address")
    return normalized


def normalize_phone(phone: str) -> str:
    """The number in E.164, with spaces, dashes and parentheses removed. Raises: InvalidPhone."""
    normalized = re.sub(r"[\s\-().]", "", phone)
    if not _PHONE.fullmatch(normalized):
        raise InvalidPhone(f"{phone!r} is not an E.164 phone number (+ and 8-15 digits)")
    return normalized


def check_password(password: str) -> None:
    """Raises: WeakPassword."""
    if not PASSWORD_LENGTH_MIN <= len(password) <= PASSWORD_LENGTH_MAX:
        raise WeakPassword(
            f"a password has {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters"
        )


# Commands.


def sign_up(
    engine: Engine,
    *,
    email: str | None,
    phone: str | None,
    password: str,
    display_name: str | None = None,
    write_key: WriteKey,
    hasher: PasswordHasher | None = None,
) -> Written[User]:
    """Create a user; a retry with the same key and fields returns the first user.

    Raises: ContactRequired, InvalidEmail, InvalidPhone, WeakPassword, EmailTaken,
    PhoneTaken, IdempotencyKeyReused.
    """
    if email is None and phone is None:
        raise ContactRequired()
    email = normalize_email(email) if email is not None else None
    phone = normalize_phone(phone) if phone is not None else None
    check_password(password)
    # The password stays out of the stored request digest: SHA-256 of it would be a fast
    # hash of the password in the database.
    fields = {"email": email, "phone": phone, "display_name": display_name}
    # Hash before the transaction: no row lock is held for the 50 ms argon2 takes.
    password_hash = (hasher or password_hasher()).hash(password)
    try:
        with engine.begin() as connection:
            refs = idempotency.claim(connection, write_key, "sign_up", fields)
            if refs is not None:
                return Written(get_user_in(connection, UUID(refs["user_id"])), replayed=True)
            _refuse_taken(connection, email=email, phone=phone)
            user = User(uuid7(), email, phone, display_name, datetime.now(UTC))
            connection.execute(
                users.insert().values(
                    id=user.id, email=email, phone=phone, display_name=display_name,
                    password_hash=password_hash, created_at=user.created_at,
                )
            )
            idempotency.record(connection, write_key, {"user_id": str(user.id)})
            return Written(user, replayed=False)
    except IntegrityError as error:
        # A concurrent sign-up took the address between the check and the insert.
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", "")
        if constraint == "uq_users_email":
            raise EmailTaken() from None
        if constraint == "uq_users_phone":
            raise PhoneTaken() from None
        raise


def _refuse_taken(connection: Connection, *, email: str | None, phone: str | None) -> None:
    """Raises: EmailTaken, PhoneTaken."""
    if email is not None and connection.execute(
        select(users.c.id).where(users.c.email == email)
    ).first():
        raise EmailTaken()
    if phone is not None and connection.execute(
        select(users.c.id).where(users.c.phone == phone)
    ).first():
        raise PhoneTaken()


def verify_password(
    engine: Engine, *, login: str, password: str, hasher: PasswordHasher | None = None
) -> User:
    """The user whose email or phone is `login` and whose password this is.

    A login starting with `+` is a phone number, anything else an email address.
    Raises: InvalidCredentials (also for a malformed login, so nothing is revealed).
    """
    hasher = hasher or password_hasher()
    row = _find_credentials(engine, login)
    if row is None:
        # Spend the same time as a real check so timing does not reveal accounts.
        _verifies(hasher, _decoy_hash(hasher), password)
        raise InvalidCredentials()
    if not _verifies(hasher, row.password_hash, password):
        raise InvalidCredentials()
    if hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as connection:
            connection.execute(
                users.update().where(users.c.id == row.id)
                .values(password_hash=hasher.hash(password))
            )
    return _user_of(row)


def _verifies(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _find_credentials(engine: Engine, login: str):
    try:
        if login.strip().startswith("+"):
            where = users.c.phone == normalize_phone(login)
        else:
            where = users.c.email == normalize_email(login)
    except (InvalidEmail, InvalidPhone):
        return None
    with engine.connect() as connection:
        return connection.execute(select(users).where(where)).first()


# Reads.


def get_user(engine: Engine, user_id: UUID) -> User:
    """Raises: UserNotFound."""
    with engine.connect() as connection:
        return get_user_in(connection, user_id)


def find_user(engine: Engine, *, email: str | None = None, phone: str | None = None) -> User:
    """The user with this email address or phone number (for P2P by contact).

    Raises: UserNotFound (also for a malformed address or number), ContactRequired.
    """
    if (email is None) == (phone is None):
        raise ContactRequired("give exactly one of email and phone")
    try:
        where = (
            users.c.email == normalize_email(email) if email is not None
            else users.c.phone == normalize_phone(phone or "")
        )
    except (InvalidEmail, InvalidPhone):
        raise UserNotFound() from None
    with engine.connect() as connection:
        row = connection.execute(select(users).where(where)).first()
    if row is None:
        raise UserNotFound()
    return _user_of(row)


def get_user_in(connection: Connection, user_id: UUID) -> User:
    """The user, read in the caller's transaction. Raises: UserNotFound."""
    row = connection.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise UserNotFound()
    return _user_of(row)


def _user_of(row) -> User:
    return User(row.id, row.email, row.phone, row.display_name, row.created_at)
