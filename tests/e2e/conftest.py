"""End-to-end fixtures: the real app over the real database, driven through HTTP.

One app and one TestClient serve the whole session (its lifespan opens the app's own
Ledger). Tests keep to accounts they open themselves; `Api` adds the admin key and a
fresh Idempotency-Key to every write unless a test gives its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
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


@pytest.fixture(scope="session")
def app(engine: Engine) -> FastAPI:
    return create_app(engine)


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
def tag() -> str:
    """A metadata value no other test uses, to list only this test's objects."""
    return uuid.uuid4().hex
