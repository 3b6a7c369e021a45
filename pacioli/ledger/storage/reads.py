"""Queries that read the ledger: accounts, postings, balances at an instant, transfers.

Lists are cursor-paginated: a page holds at most `limit` rows after the cursor, and the
next page starts after the last row returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, exists, select

from pacioli.ledger.domain.model import Account, Balances, Posting, Transfer
from pacioli.ledger.domain.money import Asset
from pacioli.ledger.storage.repository import (
    account_state_from_row,
    load_transfers,
    posting_from_row,
)
from pacioli.ledger.storage.tables import accounts, assets, postings, transfers


def get_assets(connection: Connection) -> list[Asset]:
    rows = connection.execute(select(assets.c.code, assets.c.scale).order_by(assets.c.code))
    return [Asset(code, scale) for code, scale in rows]


def get_account(connection: Connection, account_id: UUID) -> Account | None:
    row = connection.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return Account.from_state(account_state_from_row(row)) if row else None


def list_accounts(
    connection: Connection,
    *,
    limit: int,
    starting_after: UUID | None = None,
    asset_code: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[Account]:
    query = select(accounts).order_by(accounts.c.id).limit(limit)
    if starting_after is not None:
        query = query.where(accounts.c.id > starting_after)
    if asset_code is not None:
        query = query.where(accounts.c.asset_code == asset_code)
    if metadata:
        query = query.where(accounts.c.metadata.contains(metadata))
    return [Account.from_state(account_state_from_row(row)) for row in connection.execute(query)]


def list_postings(
    connection: Connection,
    account_id: UUID,
    *,
    limit: int,
    starting_after: int | None = None,
) -> list[Posting]:
    """The account's postings oldest first, each with the balances after it."""
    query = (
        select(postings)
        .where(postings.c.account_id == account_id)
        .order_by(postings.c.account_seq)
        .limit(limit)
    )
    if starting_after is not None:
        query = query.where(postings.c.account_seq > starting_after)
    return [posting_from_row(row) for row in connection.execute(query)]


def balances_at(connection: Connection, account_id: UUID, at: datetime) -> Balances:
    """The account's balances as they stood at instant `at` (zero before its first posting)."""
    row = connection.execute(
        select(postings)
        .where(postings.c.account_id == account_id, postings.c.created_at <= at)
        .order_by(postings.c.account_seq.desc())
        .limit(1)
    ).first()
    return posting_from_row(row).balances_after if row else Balances()


def get_transfer(connection: Connection, transfer_id: UUID) -> Transfer | None:
    return load_transfers(connection, [transfer_id]).get(transfer_id)


def get_transfers(connection: Connection, ids: list[UUID]) -> list[Transfer]:
    loaded = load_transfers(connection, ids)
    return [loaded[i] for i in ids if i in loaded]


def list_transfers(
    connection: Connection,
    *,
    limit: int,
    starting_after: UUID | None = None,
    account_id: UUID | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[Transfer]:
    """Transfers in creation order (ids are time-ordered), filtered, one page at a time."""
    query = select(transfers.c.id).order_by(transfers.c.id).limit(limit)
    if starting_after is not None:
        query = query.where(transfers.c.id > starting_after)
    if account_id is not None:
        query = query.where(
            exists().where(
                postings.c.transfer_id == transfers.c.id, postings.c.account_id == account_id
            )
        )
    if created_from is not None:
        query = query.where(transfers.c.created_at >= created_from)
    if created_before is not None:
        query = query.where(transfers.c.created_at < created_before)
    if metadata:
        query = query.where(transfers.c.metadata.contains(metadata))
    ids = list(connection.execute(query).scalars())
    return get_transfers(connection, ids)
