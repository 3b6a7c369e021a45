"""Tables of statement reconciliation runs and their breaks (migration 0015).

A run is one `pacioli reconcile statement` of one file: who ran it, when, the file's
SHA-256 (so the same file is not reconciled twice by accident), the options and the
result. A break is one thing the run found wrong; finance marks it resolved with a note.
Both are written once, at the end of a run that read its whole file, in one database
transaction: a malformed file or a run that dies records nothing.

Ids are bigint identities rather than UUIDs: people type them at a terminal
(`pacioli reconcile breaks resolve 1234 --note ...`).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

INSTANT = DateTime(timezone=True)
BREAK_KINDS = ("missing_in_ledger", "missing_in_statement", "amount_mismatch",
               "currency_mismatch", "duplicate")
BREAK_STATUSES = ("open", "resolved")

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),  # the mapping's name: sandbox_gateway, ...
    Column("file_name", Text, nullable=False),
    Column("file_sha256", Text, nullable=False),  # hex
    Column("run_by", Text, nullable=False),  # the OS user, or --by
    # A run of a file (source, checksum) that had been reconciled before (--force).
    Column("forced", Boolean, nullable=False),
    Column("started_at", INSTANT, nullable=False),
    Column("finished_at", INSTANT, nullable=False),
    Column("options", JSONB, nullable=False),  # mapping, tolerances, window, fail_on
    Column("statement_lines", BigInteger, nullable=False),
    Column("ledger_entries", BigInteger, nullable=False),
    Column("matched_lines", BigInteger, nullable=False),
    Column("break_count", BigInteger, nullable=False),
    Column("summary", JSONB, nullable=False),  # breaks by kind, totals per currency
    CheckConstraint("finished_at >= started_at", name="finished_after_start"),
)
Index("ix_reconciliation_runs_source_file_sha256", reconciliation_runs.c.source,
      reconciliation_runs.c.file_sha256)

reconciliation_breaks = Table(
    "reconciliation_breaks",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("run_id", BigInteger, ForeignKey("reconciliation_runs.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("reference", Text, nullable=False),
    Column("currency", Text, nullable=False),  # the statement's, or the ledger's if no lines
    Column("ledger_currency", Text, nullable=True),  # a currency_mismatch's other currency
    Column("line_numbers", ARRAY(Integer), nullable=False),  # in the statement file
    Column("entry_ids", ARRAY(Text), nullable=False),  # ledger entries (postings)
    Column("statement_amount_minor", MinorUnits, nullable=True),
    Column("ledger_amount_minor", MinorUnits, nullable=True),
    Column("detail", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("resolution_note", Text, nullable=True),
    Column("resolved_by", Text, nullable=True),
    Column("resolved_at", INSTANT, nullable=True),
    CheckConstraint(f"kind IN {BREAK_KINDS}", name="kind"),
    CheckConstraint(f"status IN {BREAK_STATUSES}", name="status"),
    CheckConstraint(
        "(status = 'resolved') = (resolved_at IS NOT NULL AND resolved_by IS NOT NULL"
        " AND resolution_note IS NOT NULL)",
        name="resolution",
    ),
)
Index("ix_reconciliation_breaks_run_id", reconciliation_breaks.c.run_id,
      reconciliation_breaks.c.id)
Index("ix_reconciliation_breaks_open", reconciliation_breaks.c.id,
      postgresql_where=text("status = 'open'"))
