"""merge the async backbone's branches (workers, webhooks, notifications, settlement)

Each grew from 0009 on a branch of its own; this revision joins them into one head,
on which new revisions go.

Revision ID: 0014
Revises: 0010, 0011, 0012, 0013
Create Date: 2026-11-24 21:00:00
"""
from collections.abc import Sequence

revision: str = '0014'
down_revision: tuple[str, ...] = ('0010', '0011', '0012', '0013')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
