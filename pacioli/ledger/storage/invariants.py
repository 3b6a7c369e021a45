"""The ledger's invariants, checked set-based in SQL against what is stored.

Each query makes one pass over its tables (window functions walk every account's
postings in `account_seq` order along the primary key) and returns only the rows that
break something, so Python never loops over postings. Run them inside one read-only
REPEATABLE READ transaction (see `pacioli.ledger.service.reconcile`) so that every query
sees the same committed state of a live database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

BALANCE_NAMES = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


@dataclass(frozen=True, slots=True)
class Break:
    """One broken invariant: which check, the id of what breaks it, and how."""

    check: str
    subject_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class Check:
    """An invariant; `rows` names what it is checked over (a key of `count_rows`)."""

    name: str
    rows: str
    description: str


CHECKS: tuple[Check, ...] = (
    Check("transfer_balanced", "transfers",
          "debits equal credits per transfer, asset and layer"),
    Check("transfer_has_postings", "transfers", "every transfer has at least two postings"),
    Check("posting_references_exist", "postings",
          "every posting's transfer and account exist (postings carry no foreign keys)"),
    Check("posting_asset_matches_account", "postings",
          "every posting is in its account's asset"),
    Check("account_balances_match_postings", "accounts",
          "stored balances and posting_count equal the sums and count of the postings"),
    Check("running_balance_sequence", "postings",
          "each account's postings are numbered 1..n without gaps"),
    Check("running_balance_consistent", "postings",
          "each posting's balances after equal the previous ones plus its amount"),
    Check("running_balance_matches_account", "accounts",
          "the last posting's balances after equal the account's stored balances"),
    Check("account_within_flags", "accounts",
          "no account is, or ever was, beyond its balance flags and limit"),
    Check("balances_nonnegative", "accounts",
          "no stored balance, nor any balance after a posting, is negative"),
    Check("closed_account_zero_balance", "accounts", "every closed account has a zero balance"),
    Check("pending_balances_match_open_holds", "accounts",
          "each account's pending balances equal what its unresolved holds reserve"),
    Check("pending_resolved_at_most_once", "pending_transfers",
          "a pending transfer has at most one resolution; only pending transfers are resolved"),
    Check("open_pending_transfers_match", "pending_transfers",
          "open_pending_transfers lists exactly the unresolved pending transfers"),
)


# Time limits on the background jobs, checked only when the caller sets them (see
# `pacioli.ledger.service.reconcile.TimeLimits`): how long is too long depends on how often
# the jobs run, and a test suite's shared database holds open holds and unsent events of
# its own making.
PENDING_DEADLINE_CHECK = Check(
    "pending_transfer_past_deadline", "open_pending_transfers",
    "no hold is still open past its deadline plus the grace (the expiry sweep releases it)",
)
OUTBOX_UNSENT_CHECK = Check(
    "outbox_event_unsent", "unsent_outbox_events",
    "no outbox event waits unsent longer than the threshold (the relay sends it)",
)
OVERDUE_CHECKS: tuple[Check, ...] = (PENDING_DEADLINE_CHECK, OUTBOX_UNSENT_CHECK)


@dataclass(slots=True)
class Findings:
    """The breaks found; `truncated` when some query had more than it was allowed to return."""

    breaks: list[Break] = field(default_factory=list)
    truncated: bool = False

    def add_rows(self, rows: list[Any], limit: int, to_breaks: Callable[[Any], list[Break]]):
        self.truncated = self.truncated or len(rows) > limit
        for row in rows[:limit]:
            self.breaks.extend(to_breaks(row))


def count_rows(connection: Connection) -> dict[str, int]:
    """How many rows of each kind the checks cover."""
    row = connection.execute(text(_COUNTS_SQL)).one()
    return dict(row._mapping)


def find_breaks(connection: Connection, *, subjects_max: int) -> Findings:
    """Every broken invariant, for at most `subjects_max` transfers/accounts per query."""
    findings = Findings()
    for sql, to_breaks in (
        (_TRANSFERS_SQL, _transfer_breaks),
        (_ORPHAN_POSTINGS_SQL, _orphan_posting_breaks),
        (_ACCOUNTS_SQL, _account_breaks),
        (_OPEN_HOLDS_SQL, _open_hold_breaks),
        (_PENDING_RESOLUTIONS_SQL, _resolution_breaks),
        (_OPEN_PENDING_SQL, _open_pending_breaks),
    ):
        rows = connection.execute(text(sql), {"limit": subjects_max + 1}).all()
        findings.add_rows(rows, subjects_max, to_breaks)
    return findings


def count_overdue_rows(connection: Connection) -> dict[str, int]:
    """How many open holds and unsent outbox events the time limits cover."""
    row = connection.execute(text(_OVERDUE_COUNTS_SQL)).one()
    return dict(row._mapping)


def find_overdue(
    connection: Connection, *, deadline_before: datetime, created_before: datetime,
    subjects_max: int,
) -> Findings:
    """Holds whose deadline is before `deadline_before` and still open, and outbox events
    appended before `created_before` and still unsent; at most `subjects_max` of each."""
    findings = Findings()
    limit = subjects_max + 1
    holds = connection.execute(
        text(_OVERDUE_HOLDS_SQL), {"before": deadline_before, "limit": limit}
    ).all()
    findings.add_rows(holds, subjects_max, _overdue_hold_breaks)
    events = connection.execute(
        text(_UNSENT_EVENTS_SQL), {"before": created_before, "limit": limit}
    ).all()
    findings.add_rows(events, subjects_max, _unsent_event_breaks)
    return findings


_COUNTS_SQL = """
SELECT
    (SELECT count(*) FROM transfers) AS transfers,
    (SELECT count(*) FROM postings) AS postings,
    (SELECT count(*) FROM accounts) AS accounts,
    (SELECT count(*) FROM transfers WHERE kind = 'pending') AS pending_transfers
"""

_OVERDUE_COUNTS_SQL = """
SELECT
    (SELECT count(*) FROM open_pending_transfers) AS open_pending_transfers,
    (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS unsent_outbox_events
"""

# Both read small indexed sets: the open holds by deadline, the unsent events by id.
_OVERDUE_HOLDS_SQL = """
SELECT transfer_id, expires_at
FROM open_pending_transfers
WHERE expires_at < :before
ORDER BY expires_at, transfer_id
LIMIT :limit
"""

_UNSENT_EVENTS_SQL = """
SELECT id, event_id, event_type, aggregate_type, aggregate_id, created_at
FROM outbox
WHERE sent_at IS NULL AND created_at < :before
ORDER BY id
LIMIT :limit
"""

# Transfers: one aggregation of postings by (transfer, asset, layer), rolled up per transfer.
_TRANSFERS_SQL = """
WITH sides AS (
    SELECT transfer_id, asset_code, layer, count(*) AS posting_count,
           coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit'), 0) AS debits,
           coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit'), 0) AS credits
    FROM postings
    GROUP BY transfer_id, asset_code, layer
), per_transfer AS (
    SELECT transfer_id, sum(posting_count) AS posting_count,
           string_agg(
               format('%s %s layer: debits %s, credits %s', asset_code, layer, debits, credits),
               '; ' ORDER BY asset_code, layer
           ) FILTER (WHERE debits <> credits) AS unbalanced
    FROM sides
    GROUP BY transfer_id
)
SELECT t.id, coalesce(pt.posting_count, 0) AS posting_count, pt.unbalanced
FROM transfers t
LEFT JOIN per_transfer pt ON pt.transfer_id = t.id
WHERE coalesce(pt.posting_count, 0) < 2 OR pt.unbalanced IS NOT NULL
ORDER BY t.id
LIMIT :limit
"""

# Postings whose transfer or account is missing: the schema leaves postings without
# foreign keys (see tables.py), so this check stands in for them.
_ORPHAN_POSTINGS_SQL = """
SELECT p.account_id, p.account_seq, p.transfer_id,
       a.id IS NOT NULL AS account_exists, t.id IS NOT NULL AS transfer_exists
FROM postings p
LEFT JOIN accounts a ON a.id = p.account_id
LEFT JOIN transfers t ON t.id = p.transfer_id
WHERE a.id IS NULL OR t.id IS NULL
ORDER BY p.account_id, p.account_seq
LIMIT :limit
"""

# Accounts: walk each account's postings in account_seq order (window functions along the
# primary key), aggregate per account, and compare with the account row. Every condition
# becomes a boolean column; only accounts with a false one come back.
_ACCOUNTS_SQL = """
WITH walked AS (
    SELECT
        p.account_id,
        p.account_seq,
        p.asset_code,
        row_number() OVER w AS position,
        lead(p.account_seq) OVER w IS NULL AS is_last,
        p.debits_posted_after AS dp_after,
        p.credits_posted_after AS cp_after,
        p.debits_pending_after AS dq_after,
        p.credits_pending_after AS cq_after,
        lag(p.debits_posted_after, 1, 0::numeric) OVER w AS dp_before,
        lag(p.credits_posted_after, 1, 0::numeric) OVER w AS cp_before,
        lag(p.debits_pending_after, 1, 0::numeric) OVER w AS dq_before,
        lag(p.credits_pending_after, 1, 0::numeric) OVER w AS cq_before,
        CASE WHEN p.direction = 'debit' AND p.layer = 'posted'
             THEN p.amount_minor ELSE 0 END AS dp_delta,
        CASE WHEN p.direction = 'credit' AND p.layer = 'posted'
             THEN p.amount_minor ELSE 0 END AS cp_delta,
        CASE WHEN p.direction = 'debit' AND p.layer = 'pending'
             THEN p.amount_minor ELSE 0 END AS dq_delta,
        CASE WHEN p.direction = 'credit' AND p.layer = 'pending'
             THEN p.amount_minor ELSE 0 END AS cq_delta
    FROM postings p
    WINDOW w AS (PARTITION BY p.account_id ORDER BY p.account_seq)
), per_account AS (
    SELECT
        w.account_id,
        count(*) AS posting_count,
        sum(w.dp_delta) AS debits_posted,
        sum(w.cp_delta) AS credits_posted,
        sum(w.dq_delta) AS debits_pending,
        sum(w.cq_delta) AS credits_pending,
        min(w.asset_code) AS asset_code_min,
        max(w.asset_code) AS asset_code_max,
        min(w.account_seq) FILTER (WHERE w.account_seq <> w.position) AS gap_seq,
        min(w.account_seq) FILTER (
            WHERE w.dp_after <> w.dp_before + w.dp_delta
               OR w.cp_after <> w.cp_before + w.cp_delta
               OR w.dq_after <> w.dq_before + w.dq_delta
               OR w.cq_after <> w.cq_before + w.cq_delta
        ) AS drift_seq,
        min(w.account_seq) FILTER (
            WHERE least(w.dp_after, w.cp_after, w.dq_after, w.cq_after) < 0
        ) AS negative_seq,
        min(w.account_seq) FILTER (
            WHERE (a.debits_must_not_exceed_credits
                   AND w.dp_after + w.dq_after > w.cp_after + coalesce(a.limit_minor, 0))
               OR (a.credits_must_not_exceed_debits
                   AND w.cp_after + w.cq_after > w.dp_after + coalesce(a.limit_minor, 0))
        ) AS beyond_flags_seq,
        max(w.dp_after) FILTER (WHERE w.is_last) AS last_debits_posted,
        max(w.cp_after) FILTER (WHERE w.is_last) AS last_credits_posted,
        max(w.dq_after) FILTER (WHERE w.is_last) AS last_debits_pending,
        max(w.cq_after) FILTER (WHERE w.is_last) AS last_credits_pending
    FROM walked w
    JOIN accounts a ON a.id = w.account_id
    GROUP BY w.account_id
), verdicts AS (
    SELECT
        a.id, a.asset_code, a.status, a.limit_minor,
        a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits,
        a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
        a.posting_count,
        coalesce(pa.posting_count, 0) AS summed_posting_count,
        coalesce(pa.debits_posted, 0) AS summed_debits_posted,
        coalesce(pa.credits_posted, 0) AS summed_credits_posted,
        coalesce(pa.debits_pending, 0) AS summed_debits_pending,
        coalesce(pa.credits_pending, 0) AS summed_credits_pending,
        coalesce(pa.last_debits_posted, 0) AS last_debits_posted,
        coalesce(pa.last_credits_posted, 0) AS last_credits_posted,
        coalesce(pa.last_debits_pending, 0) AS last_debits_pending,
        coalesce(pa.last_credits_pending, 0) AS last_credits_pending,
        pa.asset_code_min, pa.asset_code_max, pa.gap_seq, pa.drift_seq, pa.negative_seq,
        pa.beyond_flags_seq,
        (pa.asset_code_min IS NULL
         OR (pa.asset_code_min = a.asset_code AND pa.asset_code_max = a.asset_code)) AS asset_ok,
        ((a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending, a.posting_count)
         = (coalesce(pa.debits_posted, 0), coalesce(pa.credits_posted, 0),
            coalesce(pa.debits_pending, 0), coalesce(pa.credits_pending, 0),
            coalesce(pa.posting_count, 0))) AS sums_ok,
        (pa.gap_seq IS NULL) AS sequence_ok,
        (pa.drift_seq IS NULL) AS running_ok,
        ((a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
         = (coalesce(pa.last_debits_posted, 0), coalesce(pa.last_credits_posted, 0),
            coalesce(pa.last_debits_pending, 0), coalesce(pa.last_credits_pending, 0)))
            AS last_ok,
        (pa.beyond_flags_seq IS NULL
         AND NOT (a.debits_must_not_exceed_credits
                  AND a.debits_posted + a.debits_pending
                      > a.credits_posted + coalesce(a.limit_minor, 0))
         AND NOT (a.credits_must_not_exceed_debits
                  AND a.credits_posted + a.credits_pending
                      > a.debits_posted + coalesce(a.limit_minor, 0))) AS flags_ok,
        (pa.negative_seq IS NULL
         AND least(a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) >= 0)
            AS nonnegative_ok,
        (a.status <> 'closed'
         OR (a.debits_posted = a.credits_posted
             AND a.debits_pending = 0 AND a.credits_pending = 0)) AS closed_ok
    FROM accounts a
    LEFT JOIN per_account pa ON pa.account_id = a.id
)
SELECT * FROM verdicts
WHERE NOT (asset_ok AND sums_ok AND sequence_ok AND running_ok AND last_ok AND flags_ok
           AND nonnegative_ok AND closed_ok)
ORDER BY id
LIMIT :limit
"""

# What unresolved holds reserve, per account; resolved holds must have released exactly
# what they held, so nothing else may remain on the pending balances.
_OPEN_HOLDS_SQL = """
WITH held AS (
    SELECT p.account_id,
           coalesce(sum(p.amount_minor) FILTER (WHERE p.direction = 'debit'), 0) AS debits,
           coalesce(sum(p.amount_minor) FILTER (WHERE p.direction = 'credit'), 0) AS credits
    FROM transfers t
    JOIN postings p ON p.transfer_id = t.id AND p.layer = 'pending'
    WHERE t.kind = 'pending'
      AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = t.id)
    GROUP BY p.account_id
)
SELECT a.id, a.debits_pending, a.credits_pending,
       coalesce(h.debits, 0) AS held_debits, coalesce(h.credits, 0) AS held_credits
FROM accounts a
LEFT JOIN held h ON h.account_id = a.id
WHERE (a.debits_pending, a.credits_pending) <> (coalesce(h.debits, 0), coalesce(h.credits, 0))
ORDER BY a.id
LIMIT :limit
"""

_PENDING_RESOLUTIONS_SQL = """
SELECT r.pending_id, t.kind, r.resolution_count, r.resolution_ids
FROM (
    SELECT pending_id, count(*) AS resolution_count,
           string_agg(id::text, ', ' ORDER BY id) AS resolution_ids
    FROM transfers
    WHERE pending_id IS NOT NULL
    GROUP BY pending_id
) r
JOIN transfers t ON t.id = r.pending_id
WHERE r.resolution_count > 1 OR t.kind <> 'pending'
ORDER BY r.pending_id
LIMIT :limit
"""

# A pending transfer is unresolved when no transfer names it as its pending_id.
_OPEN_PENDING_SQL = """
WITH unresolved AS (
    SELECT t.id, t.expires_at
    FROM transfers t
    WHERE t.kind = 'pending'
      AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = t.id)
)
SELECT coalesce(u.id, o.transfer_id) AS id,
       u.id IS NOT NULL AS unresolved, o.transfer_id IS NOT NULL AS listed,
       u.expires_at AS expires_at, o.expires_at AS listed_expires_at
FROM unresolved u
FULL JOIN open_pending_transfers o ON o.transfer_id = u.id
WHERE u.id IS NULL OR o.transfer_id IS NULL OR u.expires_at IS DISTINCT FROM o.expires_at
ORDER BY 1
LIMIT :limit
"""


def _transfer_breaks(row) -> list[Break]:
    subject = str(row.id)
    breaks = []
    if row.posting_count < 2:
        breaks.append(Break("transfer_has_postings", subject,
                            f"the transfer has {row.posting_count} postings; at least 2 expected"))
    if row.unbalanced is not None:
        breaks.append(Break("transfer_balanced", subject, row.unbalanced))
    return breaks


def _orphan_posting_breaks(row) -> list[Break]:
    missing = [name for name, exists in (("account", row.account_exists),
                                         ("transfer", row.transfer_exists)) if not exists]
    detail = (f"posting {row.account_seq} of account {row.account_id} (transfer"
              f" {row.transfer_id}) names a missing {' and '.join(missing)}")
    return [Break("posting_references_exist", f"{row.account_id}#{row.account_seq}", detail)]


def _account_breaks(row) -> list[Break]:
    subject = str(row.id)
    return [
        Break(check, subject, describe(row))
        for check, ok_column, describe in _ACCOUNT_VERDICTS
        if not getattr(row, ok_column)
    ]


def _differences(row, pairs: list[tuple[str, str, str]]) -> str:
    return "; ".join(
        f"{name}: stored {getattr(row, name)}, {source} {getattr(row, other)}"
        for name, other, source in pairs
        if getattr(row, name) != getattr(row, other)
    )


def _describe_asset(row) -> str:
    found = sorted({row.asset_code_min, row.asset_code_max})
    return f"the account holds {row.asset_code} but has postings in {' and '.join(found)}"


def _describe_sums(row) -> str:
    names = [*BALANCE_NAMES, "posting_count"]
    return _differences(row, [(n, f"summed_{n}", "postings give") for n in names])


def _describe_sequence(row) -> str:
    return f"account_seq jumps to {row.gap_seq}; postings must be numbered 1..n"


def _describe_running(row) -> str:
    return (
        f"posting {row.drift_seq}: balances after it differ from the previous posting's"
        " plus its amount"
    )


def _describe_last(row) -> str:
    return _differences(row, [(n, f"last_{n}", "last posting has") for n in BALANCE_NAMES])


def _describe_flags(row) -> str:
    limit = row.limit_minor or 0
    if row.debits_must_not_exceed_credits:
        rule = "debits_must_not_exceed_credits"
        state = (f"debits {row.debits_posted} + pending {row.debits_pending},"
                 f" credits {row.credits_posted} + limit {limit}")
    else:
        rule = "credits_must_not_exceed_debits"
        state = (f"credits {row.credits_posted} + pending {row.credits_pending},"
                 f" debits {row.debits_posted} + limit {limit}")
    first = ""
    if row.beyond_flags_seq is not None:
        first = f"; first beyond it after posting {row.beyond_flags_seq}"
    return f"{rule} broken: {state}{first}"


def _describe_negative(row) -> str:
    negative = [n for n in BALANCE_NAMES if getattr(row, n) < 0]
    parts = [f"stored {n} is {getattr(row, n)}" for n in negative]
    if row.negative_seq is not None:
        parts.append(f"posting {row.negative_seq} left a negative balance")
    return "; ".join(parts)


def _describe_closed(row) -> str:
    balances = ", ".join(f"{n} {getattr(row, n)}" for n in BALANCE_NAMES)
    return f"the account is closed but its balances are not zero ({balances})"


_ACCOUNT_VERDICTS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("posting_asset_matches_account", "asset_ok", _describe_asset),
    ("account_balances_match_postings", "sums_ok", _describe_sums),
    ("running_balance_sequence", "sequence_ok", _describe_sequence),
    ("running_balance_consistent", "running_ok", _describe_running),
    ("running_balance_matches_account", "last_ok", _describe_last),
    ("account_within_flags", "flags_ok", _describe_flags),
    ("balances_nonnegative", "nonnegative_ok", _describe_negative),
    ("closed_account_zero_balance", "closed_ok", _describe_closed),
)


def _open_hold_breaks(row) -> list[Break]:
    detail = "; ".join(
        f"{name}: stored {stored}, unresolved holds reserve {held}"
        for name, stored, held in (
            ("debits_pending", row.debits_pending, row.held_debits),
            ("credits_pending", row.credits_pending, row.held_credits),
        )
        if stored != held
    )
    return [Break("pending_balances_match_open_holds", str(row.id), detail)]


def _resolution_breaks(row) -> list[Break]:
    if row.kind != "pending":
        detail = f"a {row.kind} transfer is resolved by {row.resolution_ids}"
    else:
        detail = f"resolved {row.resolution_count} times, by {row.resolution_ids}"
    return [Break("pending_resolved_at_most_once", str(row.pending_id), detail)]


def _open_pending_breaks(row) -> list[Break]:
    if not row.listed:
        detail = "unresolved but missing from open_pending_transfers"
    elif not row.unresolved:
        detail = "listed in open_pending_transfers but not an unresolved pending transfer"
    else:
        detail = (f"expires_at {row.expires_at} but open_pending_transfers says"
                  f" {row.listed_expires_at}")
    return [Break("open_pending_transfers_match", str(row.id), detail)]


def _overdue_hold_breaks(row) -> list[Break]:
    detail = f"still open; its deadline was {row.expires_at.isoformat()}"
    return [Break(PENDING_DEADLINE_CHECK.name, str(row.transfer_id), detail)]


def _unsent_event_breaks(row) -> list[Break]:
    detail = (f"outbox row {row.id}, {row.event_type} of {row.aggregate_type}"
              f" {row.aggregate_id}, appended {row.created_at.isoformat()} and never sent")
    return [Break(OUTBOX_UNSENT_CHECK.name, str(row.event_id), detail)]
