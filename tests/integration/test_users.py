"""Users, sessions and TOTP against the real database, below the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from pacioli.ledger.domain.errors import IdempotencyKeyReused
from pacioli.payments import sessions, totp, users
from pacioli.payments.identity_errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidSecondFactor,
    PhoneTaken,
    SecondFactorRequired,
    UserNotFound,
)
from pacioli.payments.identity_idempotency import ANONYMOUS, WriteKey

PASSWORD = "a long enough password"
# Cheap parameters, so tests that only need some hash do not spend 100 ms on each.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _email() -> str:
    return f"i-{uuid.uuid4().hex[:12]}@example.com"


def _key() -> WriteKey:
    return WriteKey(ANONYMOUS, uuid.uuid4().hex)


def _sign_up(engine, *, hasher=FAST, **fields):
    fields.setdefault("email", _email())
    fields.setdefault("phone", None)
    return users.sign_up(engine, password=PASSWORD, write_key=_key(), hasher=hasher,
                         **fields).value


def test_passwords_are_stored_as_argon2id_hashes_with_the_configured_parameters(engine):
    user = _sign_up(engine, hasher=None)
    with engine.connect() as connection:
        stored = connection.execute(
            select(users.users.c.password_hash).where(users.users.c.id == user.id)
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in stored
    assert PASSWORD not in stored
    assert users.verify_password(engine, login=user.email, password=PASSWORD).id == user.id


def test_a_login_with_changed_parameters_rehashes_the_password(engine):
    user = _sign_up(engine)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    users.verify_password(engine, login=user.email, password=PASSWORD, hasher=stronger)
    with engine.connect() as connection:
        stored = connection.execute(
            select(users.users.c.password_hash).where(users.users.c.id == user.id)
        ).scalar_one()
    assert "m=16,t=2,p=1" in stored
    assert users.verify_password(engine, login=user.email, password=PASSWORD,
                                 hasher=stronger).id == user.id


def test_a_login_for_an_unknown_account_still_verifies_a_hash(engine, monkeypatch):
    calls = []
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    original = PasswordHasher.verify
    monkeypatch.setattr(
        PasswordHasher, "verify", lambda self, *a: calls.append(a) or original(self, *a)
    )
    with pytest.raises(InvalidCredentials):
        users.verify_password(engine, login=_email(), password=PASSWORD, hasher=hasher)
    with pytest.raises(InvalidCredentials):
        users.verify_password(engine, login="not an email", password=PASSWORD, hasher=hasher)
    assert len(calls) == 2


def test_a_phone_taken_by_another_user_is_refused(engine):
    phone = f"+4420{uuid.uuid4().int % 10**8:08d}"
    _sign_up(engine, phone=phone)
    with pytest.raises(PhoneTaken):
        _sign_up(engine, phone=phone)


def test_concurrent_sign_ups_with_one_email_make_one_user(engine):
    from concurrent.futures import ThreadPoolExecutor

    email = _email()

    def attempt(_):
        try:
            return _sign_up(engine, email=email)
        except EmailTaken:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert len([r for r in results if r is not None]) == 1


def test_concurrent_sign_ups_with_one_key_make_one_user(engine):
    from concurrent.futures import ThreadPoolExecutor

    email, key = _email(), _key()

    def attempt(_):
        return users.sign_up(engine, email=email, phone=None, password=PASSWORD,
                             write_key=key, hasher=FAST)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert len({w.value.id for w in results}) == 1
    assert sum(not w.replayed for w in results) == 1


def test_a_key_reused_for_another_sign_up_is_refused_and_creates_nothing(engine):
    key, email = _key(), _email()
    users.sign_up(engine, email=_email(), phone=None, password=PASSWORD, write_key=key,
                  hasher=FAST)
    with pytest.raises(IdempotencyKeyReused):
        users.sign_up(engine, email=email, phone=None, password=PASSWORD, write_key=key,
                      hasher=FAST)
    with pytest.raises(UserNotFound):
        users.find_user(engine, email=email)


def test_a_refused_sign_up_leaves_its_key_free(engine):
    taken, key = _sign_up(engine).email, _key()
    with pytest.raises(EmailTaken):
        users.sign_up(engine, email=taken, phone=None, password=PASSWORD, write_key=key,
                      hasher=FAST)
    fresh = users.sign_up(engine, email=_email(), phone=None, password=PASSWORD,
                          write_key=key, hasher=FAST)
    assert not fresh.replayed


def test_find_user_by_email_or_phone(engine):
    phone = f"+9180{uuid.uuid4().int % 10**8:08d}"
    user = _sign_up(engine, phone=phone)
    assert users.find_user(engine, email=user.email.upper()).id == user.id
    assert users.find_user(engine, phone=phone).id == user.id
    with pytest.raises(UserNotFound):
        users.find_user(engine, email="nobody@example.com")


def test_a_session_lives_until_it_expires_or_is_revoked(engine):
    user = _sign_up(engine)
    now = datetime.now(UTC)
    session = sessions.open_session(engine, user.id, ttl_seconds=60, now=now)
    assert sessions.find_session(engine, session.token, now=now).user_id == user.id
    assert sessions.find_session(engine, session.token, now=now + timedelta(seconds=61)) is None
    sessions.revoke_session(engine, session.id)
    assert sessions.find_session(engine, session.token) is None


def test_only_the_token_digest_is_stored(engine):
    user = _sign_up(engine)
    session = sessions.open_session(engine, user.id)
    with engine.connect() as connection:
        stored = connection.execute(
            select(sessions.user_sessions.c.token_hash)
            .where(sessions.user_sessions.c.id == session.id)
        ).scalar_one()
    assert stored == sessions.token_digest(session.token)
    assert session.token.encode() not in stored


def test_revoke_all_sessions_ends_every_token_of_the_user(engine):
    user = _sign_up(engine)
    tokens = [sessions.open_session(engine, user.id).token for _ in range(3)]
    assert sessions.revoke_all_sessions(engine, user.id) == 3
    assert all(sessions.find_session(engine, token) is None for token in tokens)


# TOTP.


def _enrolled(engine):
    user = _sign_up(engine)
    enrolment = totp.enrol(engine, user.id, account_name=user.email)
    now = datetime.now(UTC)
    # Confirm with the previous step's code, so the tests below have fresh steps.
    code = totp.code_at(enrolment.secret, totp.step_of(now) - 1)
    totp.confirm(engine, user.id, code, now=now)
    return user, enrolment.secret


def test_a_code_verifies_once_and_never_again(engine):
    user, secret = _enrolled(engine)
    code = pyotp.TOTP(secret).now()
    with engine.begin() as connection:
        totp.verify_code(connection, user.id, code)
    with pytest.raises(InvalidSecondFactor), engine.begin() as connection:
        totp.verify_code(connection, user.id, code)


def test_a_code_spent_in_a_rolled_back_transaction_can_be_used_again(engine):
    user, secret = _enrolled(engine)
    code = pyotp.TOTP(secret).now()
    with engine.connect() as connection, connection.begin() as transaction:
        totp.verify_code(connection, user.id, code)
        transaction.rollback()
    with engine.begin() as connection:
        totp.verify_code(connection, user.id, code)


def test_verification_without_an_authenticator_or_a_code_needs_a_second_factor(engine):
    plain = _sign_up(engine)
    with pytest.raises(SecondFactorRequired), engine.begin() as connection:
        totp.verify_code(connection, plain.id, "123456")
    user, _ = _enrolled(engine)
    with pytest.raises(SecondFactorRequired), engine.begin() as connection:
        totp.verify_code(connection, user.id, None)


def test_amounts_up_to_the_threshold_need_no_code(engine):
    plain = _sign_up(engine)
    threshold = totp.get_settings().second_factor_threshold_minor
    with engine.begin() as connection:
        totp.require_second_factor(connection, plain.id, None, amount_minor=threshold)
    with pytest.raises(SecondFactorRequired), engine.begin() as connection:
        totp.require_second_factor(connection, plain.id, None, amount_minor=threshold + 1)


# The migration.


def test_the_identity_migration_downgrades_and_upgrades_again(fresh_database_url):
    from alembic import command
    from sqlalchemy import inspect

    from pacioli.ledger.storage.database import make_engine
    from pacioli.ledger.storage.migrate import alembic_config, upgrade

    identity_tables = {"users", "user_sessions", "user_totp", "merchants",
                       "merchant_api_keys", "merchant_settlement_accounts", "api_idempotency"}
    engine = make_engine(fresh_database_url, pool_size=1)
    try:
        assert identity_tables <= set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(fresh_database_url), "0002@0001")
        assert not identity_tables & set(inspect(engine).get_table_names())
        assert "accounts" in inspect(engine).get_table_names()
        upgrade(fresh_database_url)
        assert identity_tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_two_concurrent_uses_of_one_code_accept_it_once(engine):
    from concurrent.futures import ThreadPoolExecutor

    user, secret = _enrolled(engine)
    code = pyotp.TOTP(secret).now()

    def attempt(_):
        try:
            with engine.begin() as connection:
                totp.verify_code(connection, user.id, code)
            return True
        except InvalidSecondFactor:
            return False

    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(attempt, range(6))) == [False] * 5 + [True]


# Merchant keys.


def test_a_rotated_key_works_until_its_grace_period_ends(engine):
    from pacioli.payments import merchants

    owner = _sign_up(engine)
    registration = merchants.register_merchant(
        engine, name="Shop", owner_user_id=owner.id, approved=True, write_key=_key()
    ).value
    old = registration.api_key
    now = datetime.now(UTC)
    new = merchants.rotate_key(
        engine, registration.merchant.id, current_key_id=old.key.id, mode=old.key.mode,
        expire_current_after_seconds=600, write_key=_key(), now=now,
    ).value
    later = now + timedelta(seconds=599)
    assert merchants.find_key_holder(engine, old.secret, now=later).key_id == old.key.id
    ended = now + timedelta(seconds=601)
    assert merchants.find_key_holder(engine, old.secret, now=ended) is None
    assert merchants.find_key_holder(engine, new.secret, now=ended).key_id == new.key.id


def test_a_merchant_owned_by_an_unknown_user_is_not_registered(engine):
    from pacioli.payments import merchants

    with pytest.raises(UserNotFound):
        merchants.register_merchant(engine, name="Ghost", owner_user_id=uuid.uuid4(),
                                    approved=True, write_key=_key())


def test_check_second_factor_spends_a_code_only_above_the_threshold(engine):
    user, secret = _enrolled(engine)
    threshold = totp.get_settings().second_factor_threshold_minor
    totp.check_second_factor(engine, user.id, None, amount_minor=threshold)
    code = pyotp.TOTP(secret).now()
    totp.check_second_factor(engine, user.id, code, amount_minor=threshold + 1)
    with pytest.raises(InvalidSecondFactor):
        totp.check_second_factor(engine, user.id, code)
