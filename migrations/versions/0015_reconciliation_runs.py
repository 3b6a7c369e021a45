"""reconciliation runs and breaks: what each `pacioli reconcile statement` found

`reconciliation_runs` records one reconciliation of one statement file (who, when, the
file's SHA-256, options, counts, a summary); `reconciliation_breaks` the breaks it found,
each open until someone resolves it with a note.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)
BREAK_KINDS = ("('missing_in_ledger', 'missing_in_statement', 'amount_mismatch', "
               "'currency_mismatch', 'duplicate')")


def upgrade() -> None:
    op.create_table(
        'reconciliation_runs',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('file_name', sa.Text(), nullable=False),
        sa.Column('file_sha256', sa.Text(), nullable=False),
        sa.Column('run_by', sa.Text(), nullable=False),
        sa.Column('forced', sa.Boolean(), nullable=False),
        sa.Column('started_at', INSTANT, nullable=False),
        sa.Column('finished_at', INSTANT, nullable=False),
        sa.Column('options', postgresql.JSONB(), nullable=False),
        sa.Column('statement_lines', sa.BigInteger(), nullable=False),
        sa.Column('ledger_entries', sa.BigInteger(), nullable=False),
        sa.Column('matched_lines', sa.BigInteger(), nullable=False),
        sa.Column('break_count', sa.BigInteger(), nullable=False),
        sa.Column('summary', postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_reconciliation_runs'),
        sa.CheckConstraint('finished_at >= started_at',
                           name='ck_reconciliation_runs_finished_after_start'),
    )
    op.create_index('ix_reconciliation_runs_source_file_sha256', 'reconciliation_runs',
                    ['source', 'file_sha256'])
    op.create_table(
        'reconciliation_breaks',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('reference', sa.Text(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('ledger_currency', sa.Text(), nullable=True),
        sa.Column('line_numbers', postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column('entry_ids', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('statement_amount_minor', AMOUNT, nullable=True),
        sa.Column('ledger_amount_minor', AMOUNT, nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column('resolution_note', sa.Text(), nullable=True),
        sa.Column('resolved_by', sa.Text(), nullable=True),
        sa.Column('resolved_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_reconciliation_breaks'),
        sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'],
                                name='fk_reconciliation_breaks_run_id'),
        sa.CheckConstraint(f'kind IN {BREAK_KINDS}', name='ck_reconciliation_breaks_kind'),
        sa.CheckConstraint("status IN ('open', 'resolved')",
                           name='ck_reconciliation_breaks_status'),
        sa.CheckConstraint(
            "(status = 'resolved') = (resolved_at IS NOT NULL AND resolved_by IS NOT NULL"
            " AND resolution_note IS NOT NULL)",
            name='ck_reconciliation_breaks_resolution'),
    )
    op.create_index('ix_reconciliation_breaks_run_id', 'reconciliation_breaks',
                    ['run_id', 'id'])
    op.create_index('ix_reconciliation_breaks_open', 'reconciliation_breaks', ['id'],
                    postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_table('reconciliation_breaks')
    op.drop_table('reconciliation_runs')
