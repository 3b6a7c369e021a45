"""/v1/me/notifications and /v1/me/notification-settings over HTTP: the feed, unread count,
marking read, thresholds, and nobody reaching another user's notifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pacioli.ledger.outbox import Event, append_event
from pacioli.ledger.storage.tables import outbox
from pacioli.payments.notifications import Notifications
from tests.e2e.conftest import UserApi, assert_problem, signed_up_user


@pytest.fixture
def consumer(app, engine) -> Notifications:
    return Notifications(engine, app.state.ledger, low_balance_defaults_minor={"USD": 10_00})


@pytest.fixture
def notify(engine, consumer):
    """Hand the consumer an order fill for `user` (a cheap event that notifies one user)."""

    def notify(user: UserApi, market: str = "BTC-USD") -> None:
        with engine.begin() as connection:
            event = append_event(connection, "order.filled", "order", str(uuid.uuid4()), {
                "order_id": str(uuid.uuid4()), "user_id": user.id, "market": market,
                "side": "buy", "filled_size": "1", "price": "10.00",
            }, now=datetime.now(UTC))
        consumer.handle(event)

    return notify


def test_the_feed_lists_newest_first_with_cursor_pages(user, notify):
    for market in ("M1", "M2", "M3"):
        notify(user, market)

    first = user.get("/v1/me/notifications", {"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [n["title"] for n in page["data"]] == ["Order filled on M3", "Order filled on M2"]
    assert page["has_more"] and page["next_cursor"] == page["data"][-1]["id"]
    item = page["data"][0]
    assert item["kind"] == "order_filled" and item["read"] is False and item["read_at"] is None
    assert item["data"]["market"] == "M3"

    rest = user.get("/v1/me/notifications",
                    {"limit": 2, "starting_after": page["next_cursor"]}).json()
    assert [n["title"] for n in rest["data"]] == ["Order filled on M1"]
    assert not rest["has_more"] and rest["next_cursor"] is None


def test_marking_read_updates_the_unread_count_and_the_unread_filter(user, notify):
    notify(user, "M1")
    notify(user, "M2")
    assert user.get("/v1/me/notifications/unread-count").json() == {"unread": 2}
    newest = user.get("/v1/me/notifications").json()["data"][0]

    read = user.post(f"/v1/me/notifications/{newest['id']}/read")
    again = user.post(f"/v1/me/notifications/{newest['id']}/read")

    assert read.status_code == 200, read.text
    assert read.json()["read"] is True and again.json()["read_at"] == read.json()["read_at"]
    assert user.get("/v1/me/notifications/unread-count").json() == {"unread": 1}
    unread = user.get("/v1/me/notifications", {"unread": "true"}).json()["data"]
    assert [n["title"] for n in unread] == ["Order filled on M1"]


def test_read_all_marks_every_unread_notification(user, notify):
    for market in ("M1", "M2", "M3"):
        notify(user, market)

    response = user.post("/v1/me/notifications/read-all")

    assert response.status_code == 200, response.text
    assert response.json() == {"marked_read": 3}
    assert user.get("/v1/me/notifications/unread-count").json() == {"unread": 0}
    assert user.post("/v1/me/notifications/read-all").json() == {"marked_read": 0}


def test_another_users_notifications_are_not_found(client, user, notify):
    notify(user)
    mine = user.get("/v1/me/notifications").json()["data"][0]
    stranger = signed_up_user(client)

    assert_problem(stranger.post(f"/v1/me/notifications/{mine['id']}/read"), 404,
                   "notification_not_found")
    assert stranger.get("/v1/me/notifications").json()["data"] == []
    assert stranger.post("/v1/me/notifications/read-all").json() == {"marked_read": 0}
    assert user.get("/v1/me/notifications/unread-count").json() == {"unread": 1}
    assert_problem(user.post(f"/v1/me/notifications/{uuid.uuid4()}/read"), 404,
                   "notification_not_found")


def test_the_feed_needs_a_user_token(client):
    assert_problem(client.get("/v1/me/notifications"), 401, "unauthorized")


def test_thresholds_default_per_currency_and_the_user_replaces_them(user):
    defaults = user.get("/v1/me/notification-settings")
    assert defaults.status_code == 200, defaults.text
    assert defaults.json()["low_balance_thresholds"]["USD"] == "10.00"

    put = user.put("/v1/me/notification-settings",
                   {"low_balance_thresholds": {"USD": "25.5", "JPY": "0"}})

    assert put.status_code == 200, put.text
    thresholds = put.json()["low_balance_thresholds"]
    assert thresholds["USD"] == "25.50" and thresholds["JPY"] == "0"
    assert user.get("/v1/me/notification-settings").json()["low_balance_thresholds"] == thresholds

    # A currency left out goes back to its default.
    reset = user.put("/v1/me/notification-settings", {"low_balance_thresholds": {}}).json()
    assert reset["low_balance_thresholds"]["USD"] == "10.00"


@pytest.mark.parametrize(("thresholds", "code"), [
    ({"XXX": "1.00"}, "unknown_asset"),
    ({"USD": "1.005"}, "invalid_amount"),
    ({"USD": 5}, "invalid_amount"),
    ({"USD": "-1"}, "invalid_amount"),
])
def test_bad_thresholds_are_refused_and_change_nothing(user, thresholds, code):
    response = user.put("/v1/me/notification-settings", {"low_balance_thresholds": thresholds})

    problem = assert_problem(response, 422, code)
    assert problem["detail"]
    assert user.get("/v1/me/notification-settings").json()["low_balance_thresholds"][
        "USD"] == "10.00"


def test_a_users_threshold_drives_the_low_balance_alert(user, fund, engine, consumer, client):
    fund(user, 30_00)
    user.put("/v1/me/notification-settings", {"low_balance_thresholds": {"USD": "50.00"}})
    payee = signed_up_user(client, display_name="Payee")

    paid = user.post("/v1/p2p/payments",
                     {"to": {"user_id": payee.id}, "amount": "5.00", "currency": "USD"})
    assert paid.status_code == 201, paid.text
    consumer.handle(outbox_event(engine, "p2p_payment.succeeded", paid.json()["id"]))

    titles = [n["title"] for n in user.get("/v1/me/notifications").json()["data"]]
    assert titles == ["Low balance: 25.00 USD"]
    received = payee.get("/v1/me/notifications").json()["data"]
    assert [n["body"] for n in received] == ["Ada sent you 5.00 USD."]


def outbox_event(engine, event_type: str, aggregate_id: str) -> Event:
    """The event the flow wrote to the outbox, as the relay would send it."""
    with engine.connect() as connection:
        row = connection.execute(
            select(outbox).where(outbox.c.event_type == event_type,
                                 outbox.c.aggregate_id == aggregate_id)
        ).one()
    return Event(row.event_id, row.event_type, row.aggregate_type, row.aggregate_id,
                 row.payload, row.created_at)


def test_a_real_login_becomes_a_new_login_notification(client, engine, consumer):
    user = signed_up_user(client)  # signs up, then logs in: the flow writes user.logged_in
    consumer.handle(outbox_event(engine, "user.logged_in", user.id))

    (login,) = user.get("/v1/me/notifications").json()["data"]
    assert login["kind"] == "new_login" and login["title"] == "New login to your account"
    assert "If this was not you, change your password now." in login["body"]
