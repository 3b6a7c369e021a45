"""International transfers through HTTP: quote, execute once, and the refusals."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import UserApi, assert_problem, signed_up_user


@pytest.fixture
def bruno(client) -> UserApi:
    return signed_up_user(client, display_name="Bruno")


def quote(user: UserApi, to: UserApi, amount="100.00", source="USD", target="EUR", key=None):
    return user.post("/v1/fx/quotes", {"to": {"user_id": to.id}, "amount": amount,
                                       "source_currency": source, "target_currency": target},
                     key=key)


def test_a_quote_shows_fee_rate_and_target_and_executes_once(user, bruno, fund):
    fund(user, 200_00)
    quoted = quote(user, bruno)
    assert quoted.status_code == 201, quoted.text
    body = quoted.json()
    assert (body["fee"], body["target_amount"], body["rate"]) == ("0.50", "90.62", "0.9108000000")
    assert body["recipient"] == {"user_id": bruno.id, "display_name": "Bruno"}

    executed = user.post(f"/v1/fx/quotes/{body['id']}/execute", key="run")
    replayed = user.post(f"/v1/fx/quotes/{body['id']}/execute", key="run")
    other_key = user.post(f"/v1/fx/quotes/{body['id']}/execute", key="again")

    assert executed.status_code == 200, executed.text
    assert executed.json()["status"] == "executed" and len(executed.json()["transfer_ids"]) == 2
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert_problem(other_key, 409, "fx_quote_already_executed")
    assert user.get("/v1/me/wallets/USD").json()["available"] == "100.00"
    assert bruno.get("/v1/me/wallets/EUR").json()["available"] == "90.62"


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"target": "USD"}, 422, "validation_error"),
        ({"target": "BTC"}, 422, "fx_pair_unavailable"),
        ({"target": "XXX"}, 422, "fx_pair_unavailable"),
        ({"amount": "1.005"}, 422, "invalid_amount"),
        ({"amount": "0.01"}, 422, "validation_error"),
    ],
)
def test_bad_quotes_are_problems(user, bruno, fields, status, code):
    assert_problem(quote(user, bruno, **fields), status, code)


def test_executing_without_funds_is_refused_and_moves_nothing(user, bruno, fund):
    fund(user, 10_00)
    quoted = quote(user, bruno, amount="50.00").json()

    assert_problem(user.post(f"/v1/fx/quotes/{quoted['id']}/execute"), 422, "insufficient_funds")
    assert user.get("/v1/me/wallets/USD").json()["available"] == "10.00"
    assert user.get(f"/v1/fx/quotes/{quoted['id']}").json()["status"] == "open"


def test_nobody_else_sees_or_executes_a_quote(client, user, bruno, fund):
    fund(user, 100_00)
    quoted = quote(user, bruno).json()
    mallory = signed_up_user(client)

    assert_problem(mallory.get(f"/v1/fx/quotes/{quoted['id']}"), 404, "fx_quote_not_found")
    assert_problem(bruno.post(f"/v1/fx/quotes/{quoted['id']}/execute"), 404,
                   "fx_quote_not_found")
    assert user.get("/v1/me/wallets/USD").json()["available"] == "100.00"
