"""End-to-end fixtures: the real app over the real database, driven through HTTP.

One app and one TestClient serve the whole session (its lifespan opens the app's own
Ledger). Tests keep to accounts they open themselves; `Api` adds the admin key and a
fresh Idempotency-Key to every write unless a test gives its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from pacioli.api.admin_keys import create_admin_key
from pacioli.api.app import create_app


class Api:
    """An HTTP client of the API acting with one admin key."""

    def __init__(self, client: TestClient, admin_key: str) -> None:
        self.client = client
        self.admin_key = admin_key

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers())

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> httpx.Response:
        key = key if key is not None else uuid.uuid4().hex
        return self.client.post(path, json=body, headers=self.headers(key))

    # Shortcuts that must succeed.

    def open_account(
        self, asset: str = "USD", normal_side: str = "credit", *, no_overdraft: bool = True,
        **fields: Any,
    ) -> dict:
        body = {
            "asset": asset,
            "normal_side": normal_side,
            "flags": {"debits_must_not_exceed_credits": no_overdraft},
            **fields,
        }
        response = self.post("/v1/accounts", body)
        assert response.status_code == 201, response.text
        return response.json()

    def account(self, account_id: str) -> dict:
        response = self.get(f"/v1/accounts/{account_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def move(
        self, *, debit_id: str, credit_id: str, amount: str, currency: str = "USD",
        key: str | None = None, **fields: Any,
    ) -> httpx.Response:
        """POST a two-leg transfer from `debit_id` to `credit_id`."""
        body = move_body(debit_id, credit_id, amount, currency, **fields)
        return self.post("/v1/transfers", body, key=key)

    def funded_wallet(self, amount: str, currency: str = "USD", **fields: Any) -> dict:
        """A no-overdraft wallet holding `amount`, funded from a bank account of its own."""
        bank = self.open_account(currency, "debit", no_overdraft=False)
        wallet = self.open_account(currency, "credit", **fields)
        response = self.move(
            debit_id=bank["id"], credit_id=wallet["id"], amount=amount, currency=currency
        )
        assert response.status_code == 201, response.text
        return self.account(wallet["id"])


def move_body(
    debit_id: str, credit_id: str, amount: Any, currency: str = "USD", **fields: Any
) -> dict:
    return {
        "legs": [
            {"account_id": debit_id, "direction": "debit", "amount": amount, "currency": currency},
            {"account_id": credit_id, "direction": "credit", "amount": amount,
             "currency": currency},
        ],
        **fields,
    }


class UserApi:
    """An HTTP client of the API acting as one signed-up, logged-in user."""

    def __init__(
        self, client: TestClient, user: dict, token: str, *, email: str, password: str
    ) -> None:
        self.client = client
        self.user = user
        self.id: str = user["id"]
        self.token = token
        self.email = email
        self.password = password

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers())

    def post(
        self, path: str, body: Any = None, *, key: str | None = None, **headers: str
    ) -> httpx.Response:
        key = key if key is not None else uuid.uuid4().hex
        return self.client.post(path, json=body, headers=self.headers(key, **headers))

    def put(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.client.put(path, json=body, headers=self.headers(**headers))

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers=self.headers())


PASSWORD = "correct horse battery"


def sign_up(client: TestClient, **fields: Any) -> httpx.Response:
    """POST /v1/users with a fresh Idempotency-Key."""
    return client.post(
        "/v1/users", json=fields, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


def log_in(client: TestClient, password: str = PASSWORD, **login: str) -> httpx.Response:
    return client.post("/v1/sessions", json={**login, "password": password})


def signed_up_user(client: TestClient, **fields: Any) -> UserApi:
    """A new user with a unique email address, logged in."""
    email = fields.pop("email", f"user-{uuid.uuid4().hex[:12]}@example.com")
    password = fields.pop("password", PASSWORD)
    response = sign_up(client, email=email, password=password, **fields)
    assert response.status_code == 201, response.text
    session = log_in(client, password, email=email)
    assert session.status_code == 201, session.text
    return UserApi(
        client, response.json(), session.json()["token"], email=email, password=password
    )


class MerchantApi:
    """An HTTP client of the API acting with one merchant secret key."""

    def __init__(self, client: TestClient, merchant: dict, secret: str) -> None:
        self.client = client
        self.merchant = merchant
        self.id: str = merchant["id"]
        self.secret = secret

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.secret}", **extra}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers())

    def post(
        self, path: str, body: Any = None, *, key: str | None = None, **headers: str
    ) -> httpx.Response:
        key = key if key is not None else uuid.uuid4().hex
        return self.client.post(path, json=body, headers=self.headers(key, **headers))

    def put(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.client.put(path, json=body, headers=self.headers(**headers))

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers=self.headers())


def registered_merchant(
    api: Api, owner: UserApi | None = None, *, name: str = "Corner Shop", mode: str = "test"
) -> MerchantApi:
    """An approved merchant registered by the admin, owned by `owner` (or a new user)."""
    owner = owner or signed_up_user(api.client)
    response = api.post(
        "/v1/merchants", {"name": name, "owner_user_id": owner.id, "mode": mode}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return MerchantApi(api.client, body["merchant"], body["api_key"]["secret"])


def enrolled_totp(user: UserApi) -> str:
    """Enrol and confirm an authenticator for `user`; return its secret.

    The confirmation spends the previous time step's code, so the current and the next
    step's codes are still unused for the test.
    """
    from pacioli.payments import totp

    secret = user.post("/v1/me/totp").json()["secret"]
    code = totp.code_at(secret, totp.step_of(datetime.now(UTC)) - 1)
    response = user.post("/v1/me/totp/confirm", {"code": code})
    assert response.status_code == 200, response.text
    return secret


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    """The response is an RFC 9457 problem document with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"].endswith(code)
    assert problem["title"] and problem["detail"]
    return problem


# Cheap argon2id parameters: every e2e test signs users up and logs them in, and the
# production parameters cost ~100 ms a hash. tests/integration/test_users.py checks those.
E2E_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def app(engine: Engine) -> FastAPI:
    return create_app(engine, password_hasher=E2E_PASSWORD_HASHER)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def admin_key(engine: Engine) -> str:
    return create_admin_key(engine, "e2e tests")[1]


@pytest.fixture(scope="session")
def api(client: TestClient, admin_key: str) -> Api:
    return Api(client, admin_key)


@pytest.fixture
def user(client: TestClient) -> UserApi:
    """A new, logged-in user for one test."""
    return signed_up_user(client, display_name="Ada")


@pytest.fixture
def fund(app: FastAPI, engine: Engine):
    """Credit a user's wallet from the platform's bank account, as a bank deposit would.

    Through the app's own ledger, not a flow: the tests of a flow need funded wallets
    without depending on the top-up flow and its gateway.
    """
    from pacioli.ledger import credit, debit
    from pacioli.payments.chart import Chart, Purpose

    def fund(user: UserApi, amount_minor: int, currency: str = "USD") -> None:
        chart = Chart(engine, app.state.ledger)
        app.state.ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
             credit(chart.wallet(uuid.UUID(user.id), currency), amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    return fund


@pytest.fixture
def tag() -> str:
    """A metadata value no other test uses, to list only this test's objects."""
    return uuid.uuid4().hex
