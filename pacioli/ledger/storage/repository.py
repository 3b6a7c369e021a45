"""Loading and writing what one batch of ledger commands needs, inside its transaction.

Accounts are locked with SELECT … FOR UPDATE in id order, so two batches that touch the
same accounts queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.orm import aliased

from pacioli.ledger.domain.model import (
    PENDING_STATUS_BY_RESOLUTION,
    AccountFlags,
    AccountState,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    PendingStatus,
    Posting,
    Transfer,
    TransferKind,
)
from pacioli.ledger.domain.money import Asset
from pacioli.ledger.domain.state_machine import Effects, StoredKey
from pacioli.ledger.storage.tables import (
    accounts,
    assets,
    idempotency_keys,
    open_pending_transfers,
    outbox,
    postings,
    transfers,
)

_BALANCE_COLUMNS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


def load_assets(connection: Connection) -> dict[str, Asset]:
    rows = connection.execute(select(assets.c.code, assets.c.scale))
    return {code: Asset(code, scale) for code, scale in rows}


def load_keys(
    connection: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StoredKey]:
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    t = idempotency_keys
    rows = connection.execute(
        select(t.c.client_id, t.c.key, t.c.request_hash, t.c.command_type, t.c.result_refs)
        .where(tuple_(t.c.client_id, t.c.key).in_(pairs))
    )
    return {
        (row.client_id, row.key): StoredKey(
            bytes(row.request_hash), row.command_type, tuple(row.result_refs)
        )
        for row in rows
    }


def lock_accounts(connection: Connection, ids: Iterable[UUID]) -> dict[UUID, AccountState]:
    """Load and lock the accounts with these ids, in id order."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = connection.execute(
        select(accounts).where(accounts.c.id.in_(ids)).order_by(accounts.c.id).with_for_update()
    )
    return {row.id: account_state_from_row(row) for row in rows}


def account_state_from_row(row) -> AccountState:
    return AccountState(
        id=row.id,
        asset_code=row.asset_code,
        normal_side=Direction(row.normal_side),
        status=AccountStatus(row.status),
        flags=AccountFlags(
            debits_must_not_exceed_credits=row.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=row.credits_must_not_exceed_debits,
        ),
        limit_minor=row.limit_minor,
        balances=Balances(*(getattr(row, name) for name in _BALANCE_COLUMNS)),
        posting_count=row.posting_count,
        metadata=row.metadata,
        created_at=row.created_at,
    )


def load_transfers(connection: Connection, ids: Iterable[UUID]) -> dict[UUID, Transfer]:
    """Transfers with their postings, and what resolved or reversed them, by id."""
    ids = list(set(ids))
    if not ids:
        return {}
    resolution = aliased(transfers, name="resolution")
    reversal = aliased(transfers, name="reversal")
    rows = connection.execute(
        select(
            transfers,
            resolution.c.id.label("resolved_by_id"),
            resolution.c.kind.label("resolved_kind"),
            reversal.c.id.label("reversed_by_id"),
        )
        .outerjoin(resolution, resolution.c.pending_id == transfers.c.id)
        .outerjoin(reversal, reversal.c.reverses_id == transfers.c.id)
        .where(transfers.c.id.in_(ids))
    ).all()
    postings_by_transfer = _load_postings(connection, ids)
    return {
        row.id: _transfer_from_row(row, postings_by_transfer.get(row.id, ())) for row in rows
    }


def _load_postings(connection: Connection, transfer_ids: list[UUID]) -> dict[UUID, list[Posting]]:
    rows = connection.execute(
        select(postings)
        .where(postings.c.transfer_id.in_(transfer_ids))
        .order_by(postings.c.transfer_id, postings.c.leg_index)
    )
    grouped: dict[UUID, list[Posting]] = {}
    for row in rows:
        grouped.setdefault(row.transfer_id, []).append(posting_from_row(row))
    return grouped


def posting_from_row(row) -> Posting:
    return Posting(
        account_id=row.account_id,
        account_seq=row.account_seq,
        transfer_id=row.transfer_id,
        asset_code=row.asset_code,
        direction=Direction(row.direction),
        layer=Layer(row.layer),
        amount_minor=row.amount_minor,
        balances_after=Balances(
            row.debits_posted_after,
            row.credits_posted_after,
            row.debits_pending_after,
            row.credits_pending_after,
        ),
        created_at=row.created_at,
    )


def _transfer_from_row(row, transfer_postings) -> Transfer:
    kind = TransferKind(row.kind)
    pending_status = None
    if kind is TransferKind.PENDING:
        pending_status = (
            PENDING_STATUS_BY_RESOLUTION[TransferKind(row.resolved_kind)]
            if row.resolved_kind
            else PendingStatus.PENDING
        )
    return Transfer(
        id=row.id,
        kind=kind,
        postings=tuple(transfer_postings),
        metadata=row.metadata,
        created_at=row.created_at,
        pending_id=row.pending_id,
        reverses_id=row.reverses_id,
        batch_id=row.batch_id,
        expires_at=row.expires_at,
        pending_status=pending_status,
        resolved_by_id=row.resolved_by_id,
        reversed_by_id=row.reversed_by_id,
    )


def write_effects(
    connection: Connection, effects: Effects, states: dict[UUID, AccountState], now: datetime
) -> None:
    """Persist one batch's effects: a fixed, small number of statements per batch."""
    if effects.assets:
        connection.execute(
            insert(assets),
            [{"code": a.code, "scale": a.scale, "created_at": now} for a in effects.assets],
        )
    opened = set(effects.opened_account_ids)
    if opened:
        connection.execute(
            insert(accounts),
            [_account_row(states[i], now) for i in effects.opened_account_ids],
        )
    changed = [states[i] for i in sorted(effects.changed_account_ids - opened)]
    if changed:
        _update_accounts(connection, changed, now)
    if effects.transfers:
        _insert_transfers(connection, effects)
    if effects.keys:
        connection.execute(
            insert(idempotency_keys),
            [
                {
                    "client_id": k.client_id,
                    "key": k.idempotency_key,
                    "request_hash": k.stored.request_hash,
                    "command_type": k.stored.command_type,
                    "result_refs": list(k.stored.result_refs),
                    "created_at": k.created_at,
                }
                for k in effects.keys
            ],
        )
    if effects.events:
        connection.execute(
            insert(outbox),
            [
                {
                    "event_id": ev.event_id,
                    "event_type": ev.event_type,
                    "aggregate_type": ev.aggregate_type,
                    "aggregate_id": ev.aggregate_id,
                    "payload": ev.payload,
                    "created_at": ev.created_at,
                }
                for ev in effects.events
            ],
        )


def _account_row(state: AccountState, now: datetime) -> dict:
    return {
        "id": state.id,
        "asset_code": state.asset_code,
        "normal_side": state.normal_side.value,
        "status": state.status.value,
        "debits_must_not_exceed_credits": state.flags.debits_must_not_exceed_credits,
        "credits_must_not_exceed_debits": state.flags.credits_must_not_exceed_debits,
        "limit_minor": state.limit_minor,
        **{name: getattr(state.balances, name) for name in _BALANCE_COLUMNS},
        "posting_count": state.posting_count,
        "metadata": state.metadata,
        "created_at": state.created_at,
        "updated_at": now,
    }


def _update_accounts(connection: Connection, changed: list[AccountState], now: datetime) -> None:
    statement = (
        update(accounts)
        .where(accounts.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            posting_count=bindparam("b_posting_count"),
            updated_at=bindparam("b_updated_at"),
            **{name: bindparam(f"b_{name}", type_=accounts.c[name].type)
               for name in _BALANCE_COLUMNS},
        )
    )
    connection.execute(
        statement,
        [
            {
                "b_id": s.id,
                "b_status": s.status.value,
                "b_posting_count": s.posting_count,
                "b_updated_at": now,
                **{f"b_{name}": getattr(s.balances, name) for name in _BALANCE_COLUMNS},
            }
            for s in changed
        ],
    )


def _insert_transfers(connection: Connection, effects: Effects) -> None:
    connection.execute(
        insert(transfers),
        [
            {
                "id": t.id,
                "kind": t.kind.value,
                "pending_id": t.pending_id,
                "reverses_id": t.reverses_id,
                "batch_id": t.batch_id,
                "expires_at": t.expires_at,
                "metadata": t.metadata,
                "created_at": t.created_at,
            }
            for t in effects.transfers
        ],
    )
    connection.execute(
        insert(postings),
        [
            {
                "account_id": p.account_id,
                "account_seq": p.account_seq,
                "transfer_id": p.transfer_id,
                "leg_index": index,
                "asset_code": p.asset_code,
                "direction": p.direction.value,
                "layer": p.layer.value,
                "amount_minor": p.amount_minor,
                "debits_posted_after": p.balances_after.debits_posted,
                "credits_posted_after": p.balances_after.credits_posted,
                "debits_pending_after": p.balances_after.debits_pending,
                "credits_pending_after": p.balances_after.credits_pending,
                "created_at": p.created_at,
            }
            for t in effects.transfers
            for index, p in enumerate(t.postings)
        ],
    )
    opened_holds = [
        {"transfer_id": t.id, "expires_at": t.expires_at}
        for t in effects.transfers
        if t.kind is TransferKind.PENDING
    ]
    closed_holds = [t.pending_id for t in effects.transfers if t.pending_id is not None]
    if opened_holds:
        connection.execute(insert(open_pending_transfers), opened_holds)
    if closed_holds:
        connection.execute(
            delete(open_pending_transfers).where(
                open_pending_transfers.c.transfer_id.in_(closed_holds)
            )
        )


def expired_pending_ids(connection: Connection, now: datetime, limit: int) -> list[UUID]:
    """Ids of holds whose deadline has passed and that nobody resolved yet, oldest first."""
    t = open_pending_transfers
    return list(
        connection.execute(
            select(t.c.transfer_id)
            .where(t.c.expires_at <= now)
            .order_by(t.c.expires_at, t.c.transfer_id)
            .limit(limit)
        ).scalars()
    )


def clock(connection: Connection) -> datetime:
    return connection.execute(select(func.clock_timestamp())).scalar_one()
