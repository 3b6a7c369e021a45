"""merge the exchange's and commerce's branches

The exchange (0016_exchange), the catalog (0016_commerce_catalog) and orders
(0016_commerce_orders) each grew from 0015 on a branch of its own; this revision joins
them into one head, on which new revisions go.

Revision ID: 0017
Revises: 0016_exchange, 0016_commerce_catalog, 0016_commerce_orders
Create Date: 2026-11-24 22:00:00
"""
from collections.abc import Sequence

revision: str = '0017'
down_revision: tuple[str, ...] = ('0016_exchange', '0016_commerce_catalog', '0016_commerce_orders')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
