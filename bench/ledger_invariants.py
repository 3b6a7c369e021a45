"""After the workloads: the ledger's invariants, checked with set-based SQL on the bench database.

Each check counts the rows that break one invariant; a healthy ledger scores zero on all.
The bench database holds nothing but the bench's own ledger, so whole-table checks are
exact. The bench also checks that every acknowledged transfer is stored, and that the
database holds no transfer nobody was told about.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Uuid

log = logging.getLogger(__name__)

_SIGNED_AMOUNT = "CASE p.direction WHEN 'debit' THEN p.amount_minor ELSE -p.amount_minor END"


def _sum_of(direction: str, layer: str) -> str:
    return (
        f"CASE WHEN direction = '{direction}' AND layer = '{layer}'"
        " THEN amount_minor ELSE 0 END"
    )


CHECKS: dict[str, str] = {
    # Every transfer balances per asset, in each balance layer.
    "unbalanced_transfer_groups": f"""
        SELECT count(*) FROM (
            SELECT 1 FROM postings p GROUP BY p.transfer_id, p.asset_code, p.layer
            HAVING sum({_SIGNED_AMOUNT}) <> 0
        ) AS unbalanced""",
    "transfers_with_fewer_than_two_postings": """
        SELECT count(*) FROM transfers t
        WHERE (SELECT count(*) FROM postings p WHERE p.transfer_id = t.id) < 2""",
    "postings_in_another_asset_than_their_account": """
        SELECT count(*) FROM postings p JOIN accounts a ON a.id = p.account_id
        WHERE p.asset_code <> a.asset_code""",
    # Every account's stored balances (and posting count) equal the sums of its postings.
    "accounts_whose_balances_differ_from_postings": f"""
        SELECT count(*) FROM accounts a LEFT JOIN (
            SELECT account_id,
                sum({_sum_of('debit', 'posted')}) AS debits_posted,
                sum({_sum_of('credit', 'posted')}) AS credits_posted,
                sum({_sum_of('debit', 'pending')}) AS debits_pending,
                sum({_sum_of('credit', 'pending')}) AS credits_pending,
                count(*) AS posting_count
            FROM postings GROUP BY account_id
        ) AS s ON s.account_id = a.id
        WHERE a.debits_posted <> coalesce(s.debits_posted, 0)
           OR a.credits_posted <> coalesce(s.credits_posted, 0)
           OR a.debits_pending <> coalesce(s.debits_pending, 0)
           OR a.credits_pending <> coalesce(s.credits_pending, 0)
           OR a.posting_count <> coalesce(s.posting_count, 0)""",
    # No account breaks its flags (the CHECK constraints should make this impossible).
    "accounts_breaking_their_flags": """
        SELECT count(*) FROM accounts
        WHERE (debits_must_not_exceed_credits
               AND debits_posted + debits_pending > credits_posted + coalesce(limit_minor, 0))
           OR (credits_must_not_exceed_debits
               AND credits_posted + credits_pending > debits_posted + coalesce(limit_minor, 0))
           OR least(debits_posted, credits_posted, debits_pending, credits_pending) < 0""",
    # Each posting's balances-after are the running sums of the account's postings so
    # far, and its account_seq numbers them 1, 2, 3 … without gaps.
    "postings_with_inconsistent_running_balances": f"""
        SELECT count(*) FROM (
            SELECT account_seq, debits_posted_after, credits_posted_after,
                   debits_pending_after, credits_pending_after,
                   row_number() OVER w AS expected_seq,
                   sum({_sum_of('debit', 'posted')}) OVER w AS debits_posted,
                   sum({_sum_of('credit', 'posted')}) OVER w AS credits_posted,
                   sum({_sum_of('debit', 'pending')}) OVER w AS debits_pending,
                   sum({_sum_of('credit', 'pending')}) OVER w AS credits_pending
            FROM postings
            WINDOW w AS (PARTITION BY account_id ORDER BY account_seq
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ) AS r
        WHERE account_seq <> expected_seq
           OR debits_posted_after <> debits_posted
           OR credits_posted_after <> credits_posted
           OR debits_pending_after <> debits_pending
           OR credits_pending_after <> credits_pending""",
}


OWN_CHECKS = "bench/ledger_invariants.py"
RECONCILE_CHECKS = "pacioli.ledger.service.reconcile.check_ledger"


def count_breaks(engine: Engine) -> tuple[str, dict[str, int]]:
    """Which checker ran, and the number of rows breaking each invariant, by check name.

    Uses `pacioli.ledger.service.reconcile.check_ledger` when the project has it (the
    same checks `pacioli reconcile ledger` runs), else this module's own queries. Should
    the project's checker fail, the error is shown and this module's queries run instead,
    so a long bench run still ends with its invariants checked.
    """
    try:
        from pacioli.ledger.service.reconcile import check_ledger
    except ImportError:
        return OWN_CHECKS, _run_own_checks(engine)
    try:
        report = check_ledger(engine)
    except Exception:  # noqa: BLE001 - reported, then the bench's own checks stand in
        log.exception("check_ledger failed; using the bench's own invariant queries")
        return OWN_CHECKS, _run_own_checks(engine)
    return RECONCILE_CHECKS, {check.name: check.break_count for check in report.checks}


def _run_own_checks(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: int(connection.execute(text(sql)).scalar_one()) for name, sql in CHECKS.items()
        }


def count_acknowledgement_breaks(
    engine: Engine, transfer_ids: Sequence[UUID], *, expected_total: int, unresolved: int
) -> dict[str, int]:
    """Acknowledged transfers missing from the database, and stored transfers beyond them.

    `expected_total` is every transfer the bench was told about (setup included);
    `unresolved` requests never got an answer, so each may or may not have been stored.
    """
    missing = text("SELECT count(*) FROM transfers WHERE id = ANY(:ids)").bindparams(
        bindparam("ids", type_=ARRAY(Uuid()))
    )
    with engine.connect() as connection:
        found = int(connection.execute(missing, {"ids": list(transfer_ids)}).scalar_one())
        total = int(connection.execute(text("SELECT count(*) FROM transfers")).scalar_one())
    return {
        "acknowledged_transfers_missing": len(set(transfer_ids)) - found,
        "transfers_never_acknowledged": max(0, total - expected_total - unresolved),
    }
