"""Reconciliation: statements against the ledger, runs and breaks, accounting exports.

Imported only by `pacioli/cli/`. The pure statement side: `mapping.py` (how to read a
source's CSV), `statement.py` (reading it into `StatementLine`s), `matching.py` (matching
lines against `LedgerEntry`s and classifying the breaks). See docs/reconciliation.md.
"""
