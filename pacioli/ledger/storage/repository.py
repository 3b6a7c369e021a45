"""Loading and writing what one batch of ledger commands needs, inside its transaction.

Accounts are locked with SELECT … FOR UPDATE in id order, so two batches that touch the
same accounts queue behind each other instead of deadlocking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, select
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
from pacioli.ledger.storage.tables import assets, open_pending_transfers, postings, transfers

_BALANCE_COLUMNS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


def load_assets(connection: Connection) -> dict[str, Asset]:
    rows = connection.execute(select(assets.c.code, assets.c.scale))
    return {code: Asset(code, scale) for code, scale in rows}


_LOAD_KEYS_SQL = (
    "SELECT k.client_id, k.key, k.request_hash, k.command_type, k.result_refs"
    " FROM idempotency_keys AS k"
    " JOIN unnest(%b::text[], %b::text[]) AS wanted(client_id, key)"
    " ON k.client_id = wanted.client_id AND k.key = wanted.key"
)


def load_keys(
    connection: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StoredKey]:
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    client_ids, keys = _columns(pairs)
    with connection.connection.driver_connection.cursor(row_factory=namedtuple_row) as cursor:
        rows = cursor.execute(_LOAD_KEYS_SQL, [client_ids, keys]).fetchall()
    return {
        (row.client_id, row.key): StoredKey(
            bytes(row.request_hash), row.command_type, tuple(row.result_refs)
        )
        for row in rows
    }


_LOCK_ACCOUNTS_SQL = (
    "SELECT id, asset_code, normal_side, status, debits_must_not_exceed_credits,"
    " credits_must_not_exceed_debits, limit_minor, debits_posted, credits_posted,"
    " debits_pending, credits_pending, posting_count, metadata, created_at"
    " FROM accounts WHERE id = ANY(%b::uuid[]) ORDER BY id FOR UPDATE"
)


def lock_accounts(connection: Connection, ids: Iterable[UUID]) -> dict[UUID, AccountState]:
    """Load and lock the accounts with these ids, in id order (so lockers never deadlock)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    with connection.connection.driver_connection.cursor(row_factory=namedtuple_row) as cursor:
        rows = cursor.execute(_LOCK_ACCOUNTS_SQL, [ids]).fetchall()
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
        limit_minor=None if row.limit_minor is None else int(row.limit_minor),
        # Raw psycopg rows carry NUMERIC as Decimal; int() of a scale-0 Decimal is exact.
        balances=Balances(*(int(getattr(row, name)) for name in _BALANCE_COLUMNS)),
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
    """Persist one batch's effects in one round trip.

    Each table gets at most one statement whose rows arrive as arrays (`unnest`), so the
    statement text never changes (psycopg prepares it once) and a batch of hundreds of
    commands costs the same handful of statements as a batch of one. The statements are
    sent in a single pipeline.
    """
    opened = set(effects.opened_account_ids)
    changed = [states[i] for i in sorted(effects.changed_account_ids - opened)]
    statements = []
    if effects.assets:
        statements.append(_insert_assets(effects, now))
    if opened:
        statements.append(_insert_accounts([states[i] for i in effects.opened_account_ids], now))
    if changed:
        statements.append(_update_accounts(changed, now))
    if effects.transfers:
        statements += _insert_transfers(effects)
    if effects.keys:
        statements.append(_insert_keys(effects))
    if effects.events:
        statements.append(_insert_events(effects))
    driver_connection = connection.connection.driver_connection
    with driver_connection.pipeline(), driver_connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def _json(value) -> str:
    """JSON text, sent as text and cast to jsonb by the statement (cheaper than Jsonb dumps)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False) if value else (
        "{}" if isinstance(value, dict) else "[]"
    )


def _columns(rows: list[tuple]) -> list[list]:
    """Rows to columns, the shape `unnest` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


def _insert_assets(effects: Effects, now: datetime) -> tuple[str, list]:
    sql = (
        "INSERT INTO assets (code, scale, created_at)"
        " SELECT * FROM unnest(%b::text[], %b::int2[], %b::timestamptz[])"
    )
    return sql, _columns([(a.code, a.scale, now) for a in effects.assets])


def _insert_accounts(opened: list[AccountState], now: datetime) -> tuple[str, list]:
    sql = (
        "INSERT INTO accounts (id, asset_code, normal_side, status,"
        " debits_must_not_exceed_credits, credits_must_not_exceed_debits, limit_minor,"
        " debits_posted, credits_posted, debits_pending, credits_pending, posting_count,"
        " metadata, created_at, updated_at)"
        " SELECT id, asset_code, normal_side, status, dnec, cned, limit_minor, dp, cp, dq, cq,"
        " posting_count, metadata::jsonb, created_at, updated_at"
        " FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[], %b::bool[],"
        " %b::bool[], %b::numeric[], %b::numeric[], %b::numeric[], %b::numeric[],"
        " %b::numeric[], %b::int8[], %b::text[], %b::timestamptz[], %b::timestamptz[])"
        " AS v(id, asset_code, normal_side, status, dnec, cned, limit_minor, dp, cp, dq, cq,"
        " posting_count, metadata, created_at, updated_at)"
    )
    rows = [
        (
            s.id, s.asset_code, s.normal_side.value, s.status.value,
            s.flags.debits_must_not_exceed_credits, s.flags.credits_must_not_exceed_debits,
            s.limit_minor, *_balance_values(s.balances), s.posting_count, _json(s.metadata),
            s.created_at, now,
        )
        for s in opened
    ]
    return sql, _columns(rows)


def _update_accounts(changed: list[AccountState], now: datetime) -> tuple[str, list]:
    sql = (
        "UPDATE accounts AS a SET status = v.status, debits_posted = v.debits_posted,"
        " credits_posted = v.credits_posted, debits_pending = v.debits_pending,"
        " credits_pending = v.credits_pending, posting_count = v.posting_count,"
        " updated_at = %b"
        " FROM unnest(%b::uuid[], %b::text[], %b::numeric[], %b::numeric[], %b::numeric[],"
        " %b::numeric[], %b::int8[]) AS v(id, status, debits_posted, credits_posted,"
        " debits_pending, credits_pending, posting_count)"
        " WHERE a.id = v.id"
    )
    rows = [
        (s.id, s.status.value, *_balance_values(s.balances), s.posting_count) for s in changed
    ]
    return sql, [now, *_columns(rows)]


def _balance_values(balances: Balances) -> tuple[int, int, int, int]:
    return (
        balances.debits_posted, balances.credits_posted,
        balances.debits_pending, balances.credits_pending,
    )


def _insert_transfers(effects: Effects) -> list[tuple[str, list]]:
    statements = []
    transfer_sql = (
        "INSERT INTO transfers (id, kind, pending_id, reverses_id, batch_id, expires_at,"
        " metadata, created_at) SELECT id, kind, pending_id, reverses_id, batch_id, expires_at,"
        " metadata::jsonb, created_at FROM unnest(%b::uuid[], %b::text[], %b::uuid[],"
        " %b::uuid[], %b::uuid[], %b::timestamptz[], %b::text[], %b::timestamptz[])"
        " AS v(id, kind, pending_id, reverses_id, batch_id, expires_at, metadata, created_at)"
    )
    transfer_rows = [
        (
            t.id, t.kind.value, t.pending_id, t.reverses_id, t.batch_id, t.expires_at,
            _json(t.metadata), t.created_at,
        )
        for t in effects.transfers
    ]
    statements.append((transfer_sql, _columns(transfer_rows)))
    posting_sql = (
        "INSERT INTO postings (account_id, account_seq, transfer_id, leg_index, asset_code,"
        " direction, layer, amount_minor, debits_posted_after, credits_posted_after,"
        " debits_pending_after, credits_pending_after, created_at)"
        " SELECT * FROM unnest(%b::uuid[], %b::int8[], %b::uuid[], %b::int2[], %b::text[],"
        " %b::text[], %b::text[], %b::numeric[], %b::numeric[], %b::numeric[], %b::numeric[],"
        " %b::numeric[], %b::timestamptz[])"
    )
    posting_rows = [
        (
            p.account_id, p.account_seq, p.transfer_id, index, p.asset_code,
            p.direction.value, p.layer.value, p.amount_minor,
            *_balance_values(p.balances_after), p.created_at,
        )
        for t in effects.transfers
        for index, p in enumerate(t.postings)
    ]
    statements.append((posting_sql, _columns(posting_rows)))
    opened_holds = [
        (t.id, t.expires_at) for t in effects.transfers if t.kind is TransferKind.PENDING
    ]
    if opened_holds:
        statements.append((
            "INSERT INTO open_pending_transfers (transfer_id, expires_at)"
            " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[])",
            _columns(opened_holds),
        ))
    closed_holds = [t.pending_id for t in effects.transfers if t.pending_id is not None]
    if closed_holds:
        statements.append((
            "DELETE FROM open_pending_transfers WHERE transfer_id = ANY(%b::uuid[])",
            [closed_holds],
        ))
    return statements


def _insert_keys(effects: Effects) -> tuple[str, list]:
    sql = (
        "INSERT INTO idempotency_keys (client_id, key, request_hash, command_type,"
        " result_refs, created_at) SELECT client_id, key, request_hash, command_type,"
        " result_refs::jsonb, created_at FROM unnest(%b::text[], %b::text[], %b::bytea[],"
        " %b::text[], %b::text[], %b::timestamptz[])"
        " AS v(client_id, key, request_hash, command_type, result_refs, created_at)"
    )
    rows = [
        (
            k.client_id, k.idempotency_key, k.stored.request_hash, k.stored.command_type,
            _json(k.stored.result_refs), k.created_at,
        )
        for k in effects.keys
    ]
    return sql, _columns(rows)


def _insert_events(effects: Effects) -> tuple[str, list]:
    sql = (
        "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload,"
        " created_at) SELECT event_id, event_type, aggregate_type, aggregate_id,"
        " payload::jsonb, created_at FROM unnest(%b::uuid[], %b::text[], %b::text[],"
        " %b::text[], %b::text[], %b::timestamptz[])"
        " AS v(event_id, event_type, aggregate_type, aggregate_id, payload, created_at)"
    )
    rows = [
        (
            ev.event_id, ev.event_type, ev.aggregate_type, ev.aggregate_id, _json(ev.payload),
            ev.created_at,
        )
        for ev in effects.events
    ]
    return sql, _columns(rows)


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


