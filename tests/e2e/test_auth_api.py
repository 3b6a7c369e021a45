"""Admin-key authentication, and idempotency keys scoped per admin key."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import update

from pacioli.api.admin_keys import api_keys, create_admin_key
from pacioli.api.deps import AdminKeyCache
from tests.e2e.conftest import Api, assert_problem


def test_a_request_without_a_key_is_unauthorized(client):
    response = client.get("/v1/accounts")
    problem = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in problem["detail"]


def test_a_request_with_an_unknown_key_is_unauthorized(client):
    response = client.get("/v1/assets", headers={"Authorization": "Bearer pk_admin_nope"})
    assert_problem(response, 401, "unauthorized")


def test_a_key_sent_with_another_scheme_is_unauthorized(client, admin_key):
    response = client.get("/v1/assets", headers={"Authorization": f"Basic {admin_key}"})
    assert_problem(response, 401, "unauthorized")


def test_an_unauthorized_write_changes_nothing(client, api, tag):
    response = client.post(
        "/v1/accounts",
        json={"asset": "USD", "normal_side": "credit", "metadata": {"tag": tag}},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(response, 401, "unauthorized")
    assert api.get("/v1/accounts", {"metadata[tag]": tag}).json()["data"] == []


LEDGER_PREFIXES = ("/v1/assets", "/v1/accounts", "/v1/transfers")


def test_every_ledger_route_requires_the_admin_key(client, app):
    """Ledger-level routes are the admin's; user and merchant routes have their own tests."""
    ledger_routes = [r for r in app.openapi()["paths"] if r.startswith(LEDGER_PREFIXES)]
    assert len(ledger_routes) == 14
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith(LEDGER_PREFIXES):
            continue
        concrete = path.replace("{account_id}", str(uuid.uuid4())).replace(
            "{transfer_id}", str(uuid.uuid4())
        )
        for method in operations:
            response = client.request(method.upper(), concrete)
            assert_problem(response, 401, "unauthorized")


def test_idempotency_keys_are_scoped_per_admin_key(client, engine, api, tag):
    other = Api(client, create_admin_key(engine, "another client")[1])
    key = uuid.uuid4().hex
    mine = api.post("/v1/accounts", {"asset": "USD", "normal_side": "credit",
                                     "metadata": {"tag": tag}}, key=key)
    theirs = other.post("/v1/accounts", {"asset": "EUR", "normal_side": "debit",
                                         "metadata": {"tag": tag}}, key=key)
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert len(api.get("/v1/accounts", {"metadata[tag]": tag}).json()["data"]) == 2


def test_a_revoked_key_stops_working_once_its_cache_entry_lapses(engine):
    key_id, key = create_admin_key(engine, "soon revoked")
    cache = AdminKeyCache(engine, ttl_s=0.2)
    assert cache.client_id_of(key) == str(key_id)
    with engine.begin() as connection:
        connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=datetime.now(UTC))
        )
    time.sleep(0.25)
    assert cache.client_id_of(key) is None
