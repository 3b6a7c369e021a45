"""The ledger as an accounting file: Beancount, or a ledger-cli/hledger journal.

`export_ledger` reads one consistent snapshot of the ledger (a REPEATABLE READ, read-only
transaction) and writes, in this order: commodity directives for the assets, an open
directive for each account (dated at its creation), with `--since` one opening-balances
transaction, one transaction per transfer that moved posted funds (in time order), and
balance assertions for every account on the day after the window. Transfers and their
postings are read through a server-side cursor and written as they arrive, so the size of
the ledger does not decide the memory needed.

What is in the books: the posted layer only. A pending transfer reserves funds without
moving them, so a hold, its void and its expiry carry pending-layer postings alone and
are left out; posting a hold (in full or in part) moves posted funds and is exported,
linked to the hold it posts; a reversal is exported and linked to what it reverses.

Dates are UTC. The file is written next to its destination and renamed into place, so a
failed export never leaves half a file behind.
"""

from __future__ import annotations

import enum
import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select, true
from sqlalchemy.sql import Select

from pacioli.ledger import Direction, TransferKind
from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.ledger.storage.tables import accounts, assets, postings, transfers
from pacioli.payments.tables import payment_accounts
from pacioli.reconciliation.export_names import (
    AccountNamer,
    AccountRow,
    commodity_name,
    needs_slug,
)
from pacioli.reconciliation.export_writers import (
    Assertion,
    BeancountWriter,
    Commodity,
    Entry,
    JournalWriter,
    Leg,
    OpenAccount,
    metadata_strings,
)

ROWS_PER_FETCH = 2000
TITLE = "Pacioli ledger export"
# Keys the export writes itself on transactions and open directives.
RESERVED_META_KEYS = frozenset(
    {"transfer", "kind", "pending", "reverses", "batch", "account", "status", "normal-side"}
)
_NARRATION_KEYS = ("description", "memo", "note")
_KIND_NARRATIONS = {
    TransferKind.POSTED: "transfer",
    TransferKind.POST_PENDING: "hold posted",
    TransferKind.REVERSAL: "reversal",
}
# Beancount adds amounts in Python's default decimal context, 28 significant digits: an
# amount or balance of 10**28 minor units or more may be rounded by bean-check (not by
# hledger or ledger-cli, nor in the file, which is exact).
BEANCOUNT_DIGITS = 28
_UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class ExportFormat(enum.StrEnum):
    BEANCOUNT = "beancount"
    LEDGER = "ledger"  # the journal ledger-cli and hledger read


class InvalidExportWindow(InvalidCommand):
    """The --since/--until window is not a date or time, or ends before it starts."""

    code = "invalid_export_window"


class UnknownOperatingCurrency(InvalidCommand):
    """An --operating-currency is not one of the ledger's assets."""

    code = "unknown_operating_currency"


@dataclass(frozen=True, slots=True)
class ExportWindow:
    """Transfers created at or after `since` and before `end` (both optional, UTC)."""

    since: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> ExportWindow:
        """`since` starts the window; `until` is its last day (a date) or instant (a time).

        Raises: InvalidExportWindow.
        """
        start = _instant(since, "--since") if since else None
        end = None
        if until:
            if _is_date(until):
                end = _day_start(date.fromisoformat(until) + timedelta(days=1))
            else:
                end = _instant(until, "--until") + timedelta(microseconds=1)
        if start is not None and end is not None and end <= start:
            raise InvalidExportWindow(f"--until {until} comes before --since {since}")
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    format: ExportFormat
    path: Path
    commodities: int
    accounts: int
    transactions: int
    postings: int
    opening_balances: int  # accounts with a balance carried into the window
    assertions: int
    assertion_date: date | None
    wide_amounts: int  # amounts beyond Beancount's 28 digits (see BEANCOUNT_DIGITS)


def export_ledger(
    engine: Engine,
    path: Path,
    *,
    format: ExportFormat = ExportFormat.BEANCOUNT,
    window: ExportWindow = ExportWindow(),
    operating_currencies: tuple[str, ...] = (),
) -> ExportSummary:
    """Write the ledger (or the window of it) to `path`; see the module's docstring.

    Raises: UnknownOperatingCurrency (and nothing is written).
    """
    path = Path(path)
    # Created with open() rather than mkstemp so the file gets the usual permissions (the
    # umask's), not mkstemp's owner-only ones; "x" refuses to reuse an existing name.
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8", newline="\n") as out, \
                engine.connect() as connection:
            # One snapshot for every query, so transfers and balances agree.
            connection.execution_options(isolation_level="REPEATABLE READ",
                                         postgresql_readonly=True)
            with connection.begin():
                # Plan the cursors for the whole result, not for the first rows: a
                # first-rows plan nests loops, which on tables without statistics (a new
                # or freshly loaded database) was seen to cost 30x more.
                connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
                writer = BeancountWriter(out) if format is ExportFormat.BEANCOUNT \
                    else JournalWriter(out)
                counts = _Export(connection, writer, window).run(list(operating_currencies))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return ExportSummary(format, path, **counts)


class _Export:
    """One export run: reads the snapshot and hands records to the writer in file order."""

    def __init__(
        self, connection: Connection, writer: BeancountWriter | JournalWriter, window: ExportWindow
    ) -> None:
        self._connection = connection
        self._writer = writer
        self._window = window
        self._namer = AccountNamer(self._slug_owner_rows())
        self._commodities: dict[str, Commodity] = {}
        self._last_day: date | None = None
        self._wide_amounts = 0

    def run(self, operating_currencies: list[str]) -> dict:
        """Raises: UnknownOperatingCurrency."""
        self._commodities = {c.asset_code: c for c in self._read_commodities()}
        unknown = [code for code in operating_currencies if code not in self._commodities]
        if unknown:
            raise UnknownOperatingCurrency(
                f"--operating-currency {', '.join(unknown)}: not an asset of this ledger"
                f" (it has {', '.join(sorted(self._commodities))})"
            )
        self._writer.header(
            TITLE, [self._commodities[code].name for code in operating_currencies]
        )
        for commodity in self._commodities.values():
            self._writer.commodity(commodity)
        opened = self._write_opens()
        opening = self._write_opening_balances()
        transactions, legs = self._write_transfers()
        assertions, assertion_date = self._write_assertions()
        return {
            "commodities": len(self._commodities), "accounts": opened,
            "transactions": transactions, "postings": legs, "opening_balances": opening,
            "assertions": assertions, "assertion_date": assertion_date,
            "wide_amounts": self._wide_amounts,
        }

    # The sections of the file.

    def _write_opens(self) -> int:
        self._writer.section("Accounts, opened on the day the ledger opened them")
        query = _account_query().order_by(accounts.c.created_at, accounts.c.id)
        if self._window.end is not None:
            query = query.where(accounts.c.created_at < self._window.end)
        count = 0
        for row in self._stream(query):
            account = _account_row(row)
            meta = {"account": str(account.id), "normal-side": str(account.normal_side)}
            if row.status != "open":
                meta["status"] = row.status
            meta.update(metadata_strings(row.metadata, RESERVED_META_KEYS))
            on = _day(row.created_at)
            self._writer.open(OpenAccount(self._namer.name(account),
                                          self._commodities[account.asset_code], on, meta))
            self._see(on)
            count += 1
        return count

    def _write_opening_balances(self) -> int:
        """With --since, one transaction carrying every account's balance into the window.

        It needs no equity leg: at any instant a double-entry ledger's posted balances sum
        to zero per asset, so the legs balance by themselves (and if they did not, the
        checkers would refuse the file, which is the alarm one would want).
        """
        since = self._window.since
        if since is None:
            return 0
        legs = (
            Leg(name, self._commodities[asset_code], self._measured(balance))
            for name, asset_code, balance in self._balances(before=since)
            if balance != 0
        )
        first = next(legs, None)
        if first is None:
            return 0
        self._writer.section(f"Balances carried in from before {since.isoformat()}")
        self._see(_day(since))
        return self._writer.entry(
            Entry(_day(since), "Opening balances", (), {}, itertools.chain([first], legs))
        )

    def _write_transfers(self) -> tuple[int, int]:
        self._writer.section("Transfers that moved posted funds, in the order they were made")
        transactions = legs_written = 0
        rows = self._stream(self._transfer_query())
        for _, group in itertools.groupby(rows, key=lambda row: row.transfer_id):
            entry = self._entry(list(group))
            legs_written += self._writer.entry(entry)
            self._see(entry.on)
            transactions += 1
        return transactions, legs_written

    def _write_assertions(self) -> tuple[int, date | None]:
        """Every account's posted balance at the window's end, as the ledger recorded it.

        The balances are the ledger's own running totals (the account row, or the balances
        stored with its last posting before --until), not sums of the exported legs, so
        the checkers compare the transactions with the ledger's records.
        """
        if self._window.end is not None:
            on = _day(self._window.end - timedelta(microseconds=1)) + timedelta(days=1)
        elif self._last_day is not None:
            on = self._last_day + timedelta(days=1)
        else:
            return 0, None
        self._writer.section(f"Every account's posted balance at the start of {on}")
        count = self._writer.assertions(on, (
            Assertion(name, self._commodities[asset_code], self._measured(balance))
            for name, asset_code, balance in self._balances(before=self._window.end)
        ))
        return count, on

    # Reading the snapshot.

    def _stream(self, query: Select):
        """Rows through a server-side cursor, a batch at a time."""
        return self._connection.execute(
            query, execution_options={"stream_results": True, "yield_per": ROWS_PER_FETCH}
        )

    def _slug_owner_rows(self) -> Iterator[AccountRow]:
        """Chart accounts whose owner id is not a UUID, in opening order (a small set)."""
        t = payment_accounts
        query = (
            _account_query()
            .where(t.c.owner_id.op("!~")(_UUID_PATTERN))
            .order_by(t.c.created_at, t.c.account_id)
        )
        for row in self._stream(query):
            if needs_slug(row.owner_kind, row.owner_id):
                yield _account_row(row)

    def _read_commodities(self) -> list[Commodity]:
        """Every asset, dated at its creation or its first account's, whichever is earlier
        (assets seeded by a migration may be younger than accounts made with a test clock)."""
        first_account = (
            select(accounts.c.asset_code, func.min(accounts.c.created_at).label("first"))
            .group_by(accounts.c.asset_code).subquery()
        )
        since = func.least(assets.c.created_at, first_account.c.first)
        query = (
            select(assets.c.code, assets.c.scale, since.label("since"))
            .select_from(assets.outerjoin(first_account,
                                          first_account.c.asset_code == assets.c.code))
            .order_by(assets.c.code)
        )
        if self._window.end is not None:
            query = query.where(since < self._window.end)
        return [
            Commodity(commodity_name(row.code), row.code, row.scale, _day(row.since))
            for row in self._connection.execute(query)
        ]

    def _transfer_query(self) -> Select:
        t, p = transfers, postings
        query = (
            _account_query()
            .add_columns(
                t.c.id.label("transfer_id"), t.c.kind, t.c.pending_id, t.c.reverses_id,
                t.c.batch_id, t.c.metadata.label("transfer_metadata"),
                t.c.created_at.label("transfer_created_at"), p.c.direction, p.c.amount_minor,
            )
            .join(p, p.c.account_id == accounts.c.id)
            .join(t, t.c.id == p.c.transfer_id)
            .where(p.c.layer == "posted")
            .order_by(t.c.created_at, t.c.id, p.c.leg_index)
        )
        if self._window.since is not None:
            query = query.where(t.c.created_at >= self._window.since)
        if self._window.end is not None:
            query = query.where(t.c.created_at < self._window.end)
        return query

    def _balances(self, *, before: datetime | None) -> Iterator[tuple[str, str, int]]:
        """(name, asset, debits less credits posted) of every account opened before
        `before`, as the ledger recorded it then; now, when `before` is None."""
        if before is None:
            query = _account_query().add_columns(
                accounts.c.debits_posted.label("debits"),
                accounts.c.credits_posted.label("credits"),
            )
        else:
            p = postings
            last = (
                select(p.c.debits_posted_after.label("debits"),
                       p.c.credits_posted_after.label("credits"))
                .where(p.c.account_id == accounts.c.id, p.c.created_at < before)
                .order_by(p.c.account_seq.desc())
                .limit(1)
                .lateral("last_posting")
            )
            query = (
                _account_query()
                .add_columns(last.c.debits, last.c.credits)
                .outerjoin(last, true())
                .where(accounts.c.created_at < before)
            )
        for row in self._stream(query.order_by(accounts.c.created_at, accounts.c.id)):
            balance = (row.debits or 0) - (row.credits or 0)
            yield self._namer.name(_account_row(row)), row.asset_code, balance

    # Records.

    def _entry(self, rows: list) -> Entry:
        first = rows[0]
        kind = TransferKind(first.kind)
        links = [str(first.transfer_id)]
        meta = {"transfer": str(first.transfer_id), "kind": str(kind)}
        for key, related in (("pending", first.pending_id), ("reverses", first.reverses_id)):
            if related is not None:
                links.append(str(related))
                meta[key] = str(related)
        if first.batch_id is not None:
            meta["batch"] = str(first.batch_id)
        meta.update(metadata_strings(first.transfer_metadata, RESERVED_META_KEYS))
        legs = tuple(
            Leg(
                self._namer.name(_account_row(row)),
                self._commodities[row.asset_code],
                self._measured(
                    row.amount_minor if row.direction == Direction.DEBIT else -row.amount_minor
                ),
            )
            for row in rows
        )
        return Entry(_day(first.transfer_created_at), _narration(kind, first.transfer_metadata),
                     tuple(links), meta, legs)

    def _measured(self, amount_minor: int) -> int:
        if abs(amount_minor) >= 10**BEANCOUNT_DIGITS:
            self._wide_amounts += 1
        return amount_minor

    def _see(self, day: date) -> None:
        if self._last_day is None or day > self._last_day:
            self._last_day = day


def _account_query() -> Select:
    """Accounts with what naming needs: the row and its payments-chart key, if any."""
    t = payment_accounts
    return select(
        accounts.c.id, accounts.c.asset_code, accounts.c.normal_side, accounts.c.status,
        accounts.c.metadata, accounts.c.created_at,
        t.c.owner_kind, t.c.owner_id, t.c.purpose, t.c.currency.label("chart_currency"),
    ).select_from(accounts.outerjoin(t, t.c.account_id == accounts.c.id))


def _account_row(row) -> AccountRow:
    return AccountRow(row.id, row.asset_code, Direction(row.normal_side), row.owner_kind,
                      row.owner_id, row.purpose, row.chart_currency)


def _narration(kind: TransferKind, metadata: dict) -> str:
    """The transfer's own description if its metadata has one, else its flow and kind."""
    for key in _NARRATION_KEYS:
        if isinstance(metadata.get(key), str) and metadata[key].strip():
            return metadata[key]
    what = _KIND_NARRATIONS.get(kind, str(kind))
    flow = metadata.get("flow") or metadata.get("demo")
    return f"{flow}: {what}" if isinstance(flow, str) and flow else what


def _day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _instant(text: str, option: str) -> datetime:
    try:
        if _is_date(text):
            return _day_start(date.fromisoformat(text))
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidExportWindow(
            f"{option} {text!r} is neither a date (2026-11-24) nor a time"
            " (2026-11-24T09:30:00Z)"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
