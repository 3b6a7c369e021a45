"""The notifications consumer: turns committed events into users' notifications.

`Notifications.handle(event)` is fed by the outbox relay (consumer name
"notifications"). For each event it

1. drafts the notifications the event causes (`notification_messages.drafts_for`: who is
   told what), reading names and scales first, outside any transaction;
2. stores them in one transaction, each with a `pending` delivery row per outside channel
   of its kind (`store`); the unique (user, source event, kind) makes a re-sent event a
   no-op, so the effect happens once however often the relay sends it;
3. watches the balance of every wallet the event moved (`watch_balance`): a wallet whose
   available balance fell below the user's threshold gets one low-balance alert, and the
   alert re-arms only once an event finds the balance back at or above the threshold.

Channels are not called here: `notification_delivery.deliver_due` sends the pending
deliveries later, outside any transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.config import get_settings
from pacioli.gateways.billers import BillerRegistry
from pacioli.gateways.billers.base import UnknownBiller
from pacioli.gateways.channels import Channel
from pacioli.ledger import Ledger, format_minor
from pacioli.ledger.domain.errors import UnknownAsset
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import Event
from pacioli.payments.chart import Chart, ChartKey, OwnerKind, Purpose
from pacioli.payments.directory import display_names
from pacioli.payments.merchants import merchants
from pacioli.payments.notification_messages import (
    CHANNELS,
    Draft,
    MerchantRef,
    WalletChange,
    drafts_for,
    low_balance_draft,
    wallet_changes,
)
from pacioli.payments.notification_tables import (
    low_balance_alerts,
    notification_deliveries,
    notifications,
)
from pacioli.payments.users import users

CONSUMER_NAME = "notifications"
# How a user without a display name is named to others.
UNNAMED_USER = "A Pacioli user"


class Notifications:
    """The consumer: `handle(event)` notifies the users an event concerns, once."""

    name = CONSUMER_NAME

    def __init__(
        self, engine: Engine, ledger: Ledger, *, billers: BillerRegistry | None = None,
        low_balance_defaults_minor: Mapping[str, int] | None = None,
    ) -> None:
        """`low_balance_defaults_minor` defaults to the setting
        `notification_low_balance_default_minor`."""
        self._engine = engine
        self._ledger = ledger
        self._chart = Chart(engine, ledger)
        self._lookup = DirectoryLookup(engine, ledger, billers)
        if low_balance_defaults_minor is None:
            low_balance_defaults_minor = get_settings().notification_low_balance_default_minor
        self._defaults = dict(low_balance_defaults_minor)

    @property
    def lookup(self) -> DirectoryLookup:
        return self._lookup

    def handle(self, event: Event) -> None:
        """Notify for `event`; a type notifications do not map is ignored."""
        drafts = drafts_for(event, self._lookup)
        if drafts:
            with self._engine.begin() as connection:
                store(connection, drafts, source_event_id=event.event_id)
        for change in wallet_changes(event):
            self.watch_balance(change, source_event_id=event.event_id)

    def watch_balance(self, change: WalletChange, *, source_event_id: UUID) -> bool:
        """Alert once when the wallet is below the threshold; re-arm once it is not.

        The user's alert row is locked while the balance is read, so two events for the
        same wallet are judged one after the other, the later against the later balance.
        Only a debit raises an alert; any event may find the balance recovered.
        Returns whether an alert was stored.
        """
        t = low_balance_alerts
        key = (t.c.user_id == change.user_id) & (t.c.currency == change.currency)
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            connection.execute(
                insert(t).values(user_id=change.user_id, currency=change.currency,
                                 updated_at=now).on_conflict_do_nothing()
            )
            watch = connection.execute(select(t).where(key).with_for_update()).one()
            threshold_minor = _threshold(watch.threshold_minor, self._defaults, change.currency)
            available_minor = self._available(change)
            if threshold_minor is None or available_minor is None:
                return False
            below = available_minor < threshold_minor
            if below and change.debited and watch.alerted_at is None:
                draft = low_balance_draft(
                    change.user_id, change.currency, available_minor=available_minor,
                    threshold_minor=threshold_minor, lookup=self._lookup,
                )
                store(connection, [draft], source_event_id=source_event_id, now=now)
                connection.execute(update(t).where(key).values(alerted_at=now, updated_at=now))
                return True
            if not below and watch.alerted_at is not None:
                connection.execute(update(t).where(key).values(alerted_at=None, updated_at=now))
            return False

    def _available(self, change: WalletChange) -> int | None:
        """The wallet's available balance, or None when the user never had one."""
        account_id = self._chart.find(
            ChartKey(OwnerKind.USER, str(change.user_id), Purpose.WALLET, change.currency)
        )
        if account_id is None:
            return None
        account = self._ledger.get_account(account_id)
        return account.balances.available(account.normal_side)


def store(
    connection: Connection, drafts: Sequence[Draft], *, source_event_id: UUID,
    now: datetime | None = None,
) -> list[UUID]:
    """Insert the drafts and their channel deliveries, in the caller's transaction.

    A draft whose (user, source, kind) is stored already is skipped with its deliveries.
    Email and SMS deliveries are made only for users with that address.
    Returns the ids of the notifications inserted.
    """
    now = now or datetime.now(UTC)
    addresses = _addresses(connection, {draft.user_id for draft in drafts})
    inserted = []
    for draft in drafts:
        notification_id = connection.execute(
            insert(notifications).values(
                id=uuid7(), user_id=draft.user_id, kind=str(draft.kind), title=draft.title,
                body=draft.body, data=draft.data, source_event_id=source_event_id,
                created_at=now,
            ).on_conflict_do_nothing().returning(notifications.c.id)
        ).scalar()
        if notification_id is None:
            continue
        inserted.append(notification_id)
        channels = _reachable(CHANNELS[draft.kind], addresses.get(draft.user_id))
        if channels:
            connection.execute(insert(notification_deliveries), [
                {"notification_id": notification_id, "channel": str(channel),
                 "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
                for channel in sorted(channels)
            ])
    return inserted


def _addresses(connection: Connection, user_ids: set[UUID]) -> dict[UUID, tuple[bool, bool]]:
    """(has an email, has a phone) of each known user."""
    rows = connection.execute(
        select(users.c.id, users.c.email, users.c.phone).where(users.c.id.in_(user_ids))
    )
    return {row.id: (row.email is not None, row.phone is not None) for row in rows}


def _reachable(
    channels: frozenset[Channel], address: tuple[bool, bool] | None
) -> frozenset[Channel]:
    """The channels that can reach a user: email and SMS need the user's address."""
    has_email, has_phone = address or (False, False)
    unreachable = {Channel.EMAIL} if not has_email else set()
    if not has_phone:
        unreachable.add(Channel.SMS)
    return channels - unreachable


def _threshold(own_minor: int | None, defaults: Mapping[str, int], currency: str) -> int | None:
    return own_minor if own_minor is not None else defaults.get(currency)


class DirectoryLookup:
    """Names and scales for the messages, read from the users, merchants, billers and ledger.

    Asset scales never change once an asset exists, so they are kept; a miss reloads them.
    """

    def __init__(
        self, engine: Engine, ledger: Ledger, billers: BillerRegistry | None = None
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._billers = billers
        self._scales: dict[str, int] = {}
        self._lock = threading.Lock()

    def user_name(self, user_id: UUID) -> str:
        return display_names(self._engine, [user_id]).get(user_id) or UNNAMED_USER

    def merchant(self, merchant_id: UUID) -> MerchantRef | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(merchants.c.name, merchants.c.owner_user_id)
                .where(merchants.c.id == merchant_id)
            ).first()
        return None if row is None else MerchantRef(row.name, row.owner_user_id)

    def biller_name(self, biller_id: str) -> str:
        if self._billers is None:
            return biller_id
        try:
            return self._billers.get(biller_id).info.name
        except UnknownBiller:
            return biller_id

    def money(self, amount_minor: int, currency: str) -> str:
        return f"{format_minor(amount_minor, self.scale_of(currency))} {currency}"

    def scale_of(self, currency: str) -> int:
        """Raises: UnknownAsset."""
        scale = self._scales.get(currency)
        if scale is None:
            with self._lock:
                self._scales = {asset.code: asset.scale for asset in self._ledger.list_assets()}
            scale = self._scales.get(currency)
        if scale is None:
            raise UnknownAsset(f"no asset has the code {currency!r}")
        return scale
