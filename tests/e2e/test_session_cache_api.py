"""The API's session cache: a session ended in this process stops working at once, one
ended elsewhere within SESSION_CACHE_TTL_S, an expired one at its expiry."""

from __future__ import annotations

import time
import uuid

from pacioli.api.caches import SessionCache
from pacioli.payments import sessions
from tests.e2e.conftest import log_in, signed_up_user


def test_logout_ends_a_cached_session_at_once(client):
    user = signed_up_user(client)
    assert user.get("/v1/me").status_code == 200  # the session is now cached

    assert user.delete("/v1/sessions/current").status_code == 204

    assert user.get("/v1/me").status_code == 401


def test_logging_out_everywhere_ends_every_cached_session_of_the_user(client):
    user = signed_up_user(client)
    other_token = log_in(client, email=user.email).json()["token"]
    other = {"Authorization": f"Bearer {other_token}"}
    assert client.get("/v1/me", headers=other).status_code == 200

    assert client.delete("/v1/sessions", headers=user.headers()).status_code == 204

    assert client.get("/v1/me", headers=other).status_code == 401


def test_a_session_revoked_by_another_process_stops_working_once_its_entry_lapses(
    client, engine
):
    user_id = uuid.UUID(signed_up_user(client).id)
    issued = sessions.open_session(engine, user_id)
    cache = SessionCache(engine, ttl_s=0.2)
    assert cache.look_up(issued.token).id == issued.id

    sessions.revoke_session(engine, issued.id)  # not through this cache: another process
    assert cache.cached(issued.token) is not None  # the documented bound: up to the TTL
    time.sleep(0.25)

    assert cache.cached(issued.token) is None
    assert cache.look_up(issued.token) is None


def test_a_cached_session_stops_working_at_its_expiry(client, engine):
    user_id = uuid.UUID(signed_up_user(client).id)
    issued = sessions.open_session(engine, user_id, ttl_seconds=1)
    cache = SessionCache(engine, ttl_s=60)
    assert cache.look_up(issued.token) is not None

    time.sleep(1.05)

    assert cache.cached(issued.token) is None and cache.look_up(issued.token) is None


def test_unknown_tokens_are_never_cached(client, engine):
    cache = SessionCache(engine)
    token = sessions.TOKEN_PREFIX + "A" * 43
    assert cache.look_up(token) is None
    issued = sessions.open_session(engine, uuid.UUID(signed_up_user(client).id))
    assert cache.look_up(issued.token) is not None
