"""The double-entry core: assets, accounts, transfers, holds, balances, idempotency, outbox.

Knows nothing of HTTP, users, carts or order books. Start with `Ledger`.
"""

from pacioli.ledger.domain.commands import PostPending, VoidPending
from pacioli.ledger.domain.errors import DomainError, LedgerUnavailable
from pacioli.ledger.domain.model import (
    Account,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    Leg,
    PendingStatus,
    Posting,
    Transfer,
    TransferKind,
    TransferSpec,
)
from pacioli.ledger.domain.money import Asset, Money, format_minor, parse_major
from pacioli.ledger.service.ledger import Ledger, Written, credit, debit

__all__ = [
    "Account",
    "AccountStatus",
    "Asset",
    "Balances",
    "Direction",
    "DomainError",
    "Layer",
    "Leg",
    "Ledger",
    "LedgerUnavailable",
    "Money",
    "PendingStatus",
    "PostPending",
    "Posting",
    "Transfer",
    "TransferKind",
    "TransferSpec",
    "VoidPending",
    "Written",
    "credit",
    "debit",
    "format_minor",
    "parse_major",
]
