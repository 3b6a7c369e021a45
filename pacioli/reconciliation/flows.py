"""Every payment flow's records against the ledger transfers they should have made.

A flow records what was asked (a P2P payment, a top-up, a settlement batch ...) and moves
the money by ledger transfers whose idempotency keys derive from the record's id
(`p2p:<id>`, `topup:<id>:hold` ...; client `payments`). So the record's status says which
transfers must exist, which may (a step under way, or a process that died between the
ledger call and the record's update: the next retry finishes it), and which must not;
and the record's amounts and parties say what each one moves, between which accounts of
the chart. Each flow is a `FlowCheck`: its steps, declared as data. One SQL statement per
flow compares every record with the transfers under its keys (hash joins on
`idempotency_keys.result_refs`, never a query per record) and returns only what
disagrees; a second finds transfers that carry the flow's metadata but none of its keys.

A later part of the platform (commerce orders, exchange fills) adds its own `FlowCheck`
to `FLOW_CHECKS`; nothing else changes. `flow_checks` is the group `check_ledger` runs
in its snapshot (`more_checks`), so `pacioli reconcile ledger` reports ledger and flow
breaks in one table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from pacioli.ledger.service.reconcile import CheckGroup, CheckResults, summarize
from pacioli.ledger.storage.invariants import Break, Check, Findings
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, OwnerKind, Purpose
from pacioli.payments.offers import MERCHANT_FUNDER_PREFIX, PLATFORM_FUNDER

__all__ = ["FLOW_CHECKS", "AccountOf", "FlowCheck", "Leg", "Step", "flow_checks"]

# What a record's status makes of a step (a SQL CASE yields one of these).
REQUIRED, ALLOWED, FORBIDDEN = "required", "allowed", "forbidden"
# Memory for each sort or hash of the flow checks (PostgreSQL's `work_mem`).
WORK_MEM = "64MB"
_UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _literal(value: str) -> str:
    """A SQL string literal (only ever given this module's own constants), its colons
    escaped so that `text()` does not take `':hold'` for a bind parameter."""
    return "'" + value.replace("'", "''").replace(":", "\\:") + "'"


@dataclass(frozen=True, slots=True)
class AccountOf:
    """An account of the chart, as SQL expressions over the record `r` (text values)."""

    purpose: str
    owner_kind: str
    owner_id: str


def wallet(user_id: str) -> AccountOf:
    return AccountOf(_literal(Purpose.WALLET), _literal(OwnerKind.USER), f"{user_id}::text")


def merchant(purpose: Purpose, merchant_id: str) -> AccountOf:
    return AccountOf(_literal(purpose), _literal(OwnerKind.MERCHANT), f"{merchant_id}::text")


def platform(purpose: Purpose, scope: str = "''") -> AccountOf:
    return AccountOf(_literal(purpose), _literal(OwnerKind.PLATFORM), scope)


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting a step should make: `amount` (SQL, minor units) debited or credited to
    `account` in `currency` (SQL). A leg whose amount is 0 is not made (no fee, no leg)."""

    direction: str
    account: AccountOf
    amount: str
    currency: str = "r.currency"

    def sql(self) -> str:
        """The leg as the text `legs_sql` also makes of a stored posting."""
        return (
            f"CASE WHEN ({self.amount}) > 0 THEN concat_ws(' ', {_literal(self.direction)},"
            f" ({self.amount})::text, {self.account.purpose},"
            f" {self.account.owner_kind} || ':' || {self.account.owner_id}, {self.currency}) END"
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One ledger transfer a flow makes for a record.

    `key`: the SQL of its idempotency key; `ordinal`: its place among the transfers of a
    linked batch posted under that key. `kind`: the transfer's kind (posted, pending,
    post_pending, void_pending). `required` / `allowed`: SQL conditions on the record in
    which the transfer must / may exist (otherwise it must not). `legs`: what it moves,
    or for a pending transfer holds (a void moves nothing). `recorded`: the SQL of the
    transfer id the record stores for it, if any (NULL while it stores none).
    `resolves`: the step whose hold it posts or voids. `metadata`: what its transfer
    metadata says besides the flow and the record id.
    """

    name: str
    key: str
    kind: str
    required: str
    allowed: str = "false"
    legs: tuple[Leg, ...] = ()
    recorded: str | None = None
    resolves: str | None = None
    ordinal: int = 1
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """A flow's records (`table`, with `id` and `status`) and the steps each implies.

    Its keys start with `key_prefix` followed by the record id; its transfers carry
    metadata `{"flow": metadata_flow, metadata_id: <record id>}`.
    """

    name: str
    description: str
    table: str
    key_prefix: str
    metadata_flow: str
    metadata_id: str
    steps: tuple[Step, ...]

    @property
    def check(self) -> Check:
        return Check(self.name, self.name, self.description)


def _status(*statuses: str) -> str:
    return f"r.status IN ({', '.join(_literal(s) for s in statuses)})"


def _key(prefix: str, suffix: str = "") -> str:
    return f"{_literal(prefix)} || r.id::text" + (f" || {_literal(suffix)}" if suffix else "")


def _hold_steps(prefix: str, legs: tuple[Leg, ...], *, held: str, under_way: str,
                posted: str, voided: str, created: str = _status("created")) -> tuple[Step, ...]:
    """A hold (pending), then its post or its void: top-ups, withdrawals, bill payments.

    `held`: the hold must exist; `under_way`: waiting for the processor, so a post or a
    void may already be in the ledger (the record not updated yet); `posted` / `voided`:
    the record's final statuses. The record stores the hold's id, and the post's or the
    void's in `settlement_transfer_id`.
    """
    return (
        Step("hold", _key(prefix, ":hold"), "pending", required=held, allowed=created,
             legs=legs, recorded="r.hold_transfer_id"),
        Step("post", _key(prefix, ":post"), "post_pending", required=posted, allowed=under_way,
             legs=legs, recorded=f"CASE WHEN {posted} THEN r.settlement_transfer_id END",
             resolves="hold"),
        Step("void", _key(prefix, ":void"), "void_pending", required=voided, allowed=under_way,
             recorded=f"CASE WHEN {voided} THEN r.settlement_transfer_id END",
             resolves="hold"),
    )


def _one_transfer(prefix: str, legs: tuple[Leg, ...], *, done: str) -> tuple[Step, ...]:
    """One posted transfer, made once the record is `done` (and maybe while `created`)."""
    return (Step("transfer", _key(prefix), "posted", required=_status(done),
                 allowed=_status("created"), legs=legs, recorded="r.transfer_id"),)


_POOL_SCOPE = f"CASE WHEN r.funder = {_literal(PLATFORM_FUNDER)} THEN '' ELSE r.funder END"
_FUNDER_MERCHANT = f"substr(r.funder, {len(MERCHANT_FUNDER_PREFIX) + 1})"

P2P_PAYMENTS = FlowCheck(
    "p2p_payments_match_ledger",
    "each P2P payment has the one transfer its status implies, moving its amount"
    " from the payer's wallet to the payee's; every p2p transfer has its payment",
    table="p2p_payments", key_prefix="p2p:", metadata_flow="p2p", metadata_id="payment_id",
    steps=_one_transfer("p2p:", (
        Leg("debit", wallet("r.payer_user_id"), "r.amount_minor"),
        Leg("credit", wallet("r.payee_user_id"), "r.amount_minor"),
    ), done="succeeded"),
)

QR_PAYMENTS = FlowCheck(
    "qr_payments_match_ledger",
    "each QR payment has the transfer its status implies: the amount from the payer's"
    " wallet, the net to the merchant's pending settlement, the fee to fee revenue",
    table="qr_payments", key_prefix="qr:", metadata_flow="qr", metadata_id="payment_id",
    steps=_one_transfer("qr:", (
        Leg("debit", wallet("r.payer_user_id"), "r.amount_minor"),
        Leg("credit", merchant(Purpose.MERCHANT_PENDING_SETTLEMENT, "r.merchant_id"),
            "r.amount_minor - r.fee_minor"),
        Leg("credit", platform(Purpose.FEE_REVENUE), "r.fee_minor"),
    ), done="succeeded"),
)

QR_REFUNDS = FlowCheck(
    "qr_refunds_match_ledger",
    "each QR refund has the transfer its status implies: the amount to the payer's"
    " wallet, from the merchant account it names and the fee share from fee revenue",
    table="qr_refunds", key_prefix="qr_refund:", metadata_flow="qr_refund",
    metadata_id="refund_id",
    steps=_one_transfer("qr_refund:", (
        Leg("credit", wallet("r.payer_user_id"), "r.amount_minor"),
        Leg("debit", AccountOf(
            "CASE r.source WHEN 'pending_settlement' THEN "
            f"{_literal(Purpose.MERCHANT_PENDING_SETTLEMENT)}"
            f" ELSE {_literal(Purpose.MERCHANT_BALANCE)} END",
            _literal(OwnerKind.MERCHANT), "r.merchant_id::text",
        ), "r.amount_minor - r.fee_returned_minor"),
        Leg("debit", platform(Purpose.FEE_REVENUE), "r.fee_returned_minor"),
    ), done="succeeded"),
)

TOPUPS = FlowCheck(
    "topups_match_ledger",
    "each top-up holds its amount from the processor's clearing account to the wallet"
    " while pending, posts it on success, voids it on failure",
    table="topups", key_prefix="topup:", metadata_flow="topup", metadata_id="topup_id",
    steps=_hold_steps("topup:", (
        Leg("debit", platform(Purpose.PROCESSOR_CLEARING, "r.gateway"), "r.amount_minor"),
        Leg("credit", wallet("r.user_id"), "r.amount_minor"),
    ), held=f"{_status('pending', 'authorized', 'succeeded')}"
            " OR (r.status = 'failed' AND r.hold_transfer_id IS NOT NULL)",
       under_way=_status("pending", "authorized"), posted=_status("succeeded"),
       voided="r.status = 'failed' AND r.hold_transfer_id IS NOT NULL"),
)

WITHDRAWALS = FlowCheck(
    "withdrawals_match_ledger",
    "each withdrawal holds its amount from the wallet to the bank settlement account"
    " while pending, posts it when paid out, voids it on failure",
    table="withdrawals", key_prefix="withdrawal:", metadata_flow="withdrawal",
    metadata_id="withdrawal_id",
    steps=_hold_steps("withdrawal:", (
        Leg("debit", wallet("r.user_id"), "r.amount_minor"),
        Leg("credit", platform(Purpose.BANK_SETTLEMENT), "r.amount_minor"),
    ), held=f"{_status('pending', 'succeeded')}"
            " OR (r.status = 'failed' AND r.hold_transfer_id IS NOT NULL)",
       under_way=_status("pending"), posted=_status("succeeded"),
       voided="r.status = 'failed' AND r.hold_transfer_id IS NOT NULL"),
)

BILL_PAYMENTS = FlowCheck(
    "bill_payments_match_ledger",
    "each bill payment holds its amount from the wallet to the biller payable, posts it"
    " when the biller confirms, voids it when refunded; a failed one moved nothing",
    table="bill_payments", key_prefix="bill:", metadata_flow="bill_payment",
    metadata_id="bill_payment_id",
    steps=_hold_steps("bill:", (
        Leg("debit", wallet("r.user_id"), "r.amount_minor"),
        Leg("credit", platform(Purpose.BILLER_PAYABLE, "r.biller_id"), "r.amount_minor"),
    ), held=_status("pending", "succeeded", "refunded"), under_way=_status("pending"),
       posted=_status("succeeded"), voided=_status("refunded")),
)

_FX_EXECUTED, _FX_OPEN = _status("executed"), _status("open")
FX_QUOTES = FlowCheck(
    "fx_executions_match_ledger",
    "each executed FX quote has its linked pair of transfers: the source amount from"
    " the sender's wallet to FX liquidity, fee and rounding; the target amount from FX"
    " liquidity to the recipient's wallet",
    table="fx_quotes", key_prefix="fx:", metadata_flow="fx", metadata_id="quote_id",
    steps=(
        Step("source", _key("fx:"), "posted", required=_FX_EXECUTED, allowed=_FX_OPEN,
             recorded="(r.transfer_ids ->> 0)::uuid", legs=(
                 Leg("debit", wallet("r.user_id"), "r.source_amount_minor",
                     "r.source_currency"),
                 Leg("credit", platform(Purpose.FX_LIQUIDITY), "r.converted_minor",
                     "r.source_currency"),
                 Leg("credit", platform(Purpose.FEE_REVENUE), "r.fee_minor",
                     "r.source_currency"),
                 Leg("credit", platform(Purpose.ROUNDING), "r.rounding_minor",
                     "r.source_currency"),
             )),
        Step("target", _key("fx:"), "posted", ordinal=2, required=_FX_EXECUTED,
             allowed=_FX_OPEN, recorded="(r.transfer_ids ->> 1)::uuid", legs=(
                 Leg("debit", platform(Purpose.FX_LIQUIDITY), "r.target_amount_minor",
                     "r.target_currency"),
                 Leg("credit", wallet("r.recipient_user_id"), "r.target_amount_minor",
                     "r.target_currency"),
             )),
    ),
)

CASHBACKS = FlowCheck(
    "cashbacks_match_ledger",
    "each paid cashback has one transfer of its amount from its funder's promotions"
    " pool to the user's wallet; unfunded and failed ones have none",
    table="cashbacks", key_prefix="cashback:", metadata_flow="cashback",
    metadata_id="cashback_id",
    steps=_one_transfer("cashback:", (
        Leg("debit", platform(Purpose.PROMOTIONS, _POOL_SCOPE), "r.amount_minor"),
        Leg("credit", wallet("r.user_id"), "r.amount_minor"),
    ), done="paid"),
)

PROMOTION_FUNDINGS = FlowCheck(
    "promotion_fundings_match_ledger",
    "each succeeded promotions funding moved its amount into its funder's pool, from the"
    " platform's bank account or the merchant's balance",
    table="promotion_fundings", key_prefix="promotions:fund:",
    metadata_flow="promotion_funding", metadata_id="funding_id",
    steps=_one_transfer("promotions:fund:", (
        Leg("debit", AccountOf(
            f"CASE WHEN r.funder = {_literal(PLATFORM_FUNDER)}"
            f" THEN {_literal(Purpose.BANK_SETTLEMENT)} ELSE {_literal(Purpose.MERCHANT_BALANCE)}"
            " END",
            f"CASE WHEN r.funder = {_literal(PLATFORM_FUNDER)}"
            f" THEN {_literal(OwnerKind.PLATFORM)} ELSE {_literal(OwnerKind.MERCHANT)} END",
            f"CASE WHEN r.funder = {_literal(PLATFORM_FUNDER)} THEN '' ELSE {_FUNDER_MERCHANT}"
            " END",
        ), "r.amount_minor"),
        Leg("credit", platform(Purpose.PROMOTIONS, _POOL_SCOPE), "r.amount_minor"),
    ), done="succeeded"),
)

_MOVED = _status("moved", "payout_pending", "paid", "failed")
_PAYING = _status("moved", "payout_pending")
_PAYOUT_HOLD = (
    Leg("debit", merchant(Purpose.MERCHANT_BALANCE, "r.merchant_id"), "r.net_minor"),
    Leg("credit", platform(Purpose.BANK_SETTLEMENT), "r.net_minor"),
)
SETTLEMENT_BATCHES = FlowCheck(
    "settlement_batches_match_ledger",
    "each settlement batch moved its net from pending settlement to the merchant's"
    " balance and held it for the payout in one linked batch, then posted the hold when"
    " paid or voided it when failed",
    table="settlement_batches", key_prefix="settlement:", metadata_flow="settlement",
    metadata_id="batch_id",
    steps=(
        Step("move", _key("settlement:", ":move"), "posted", required=_MOVED,
             allowed=_status("created"), recorded="r.move_transfer_id",
             metadata={"step": "move"}, legs=(
                 Leg("debit", merchant(Purpose.MERCHANT_PENDING_SETTLEMENT, "r.merchant_id"),
                     "r.net_minor"),
                 Leg("credit", merchant(Purpose.MERCHANT_BALANCE, "r.merchant_id"),
                     "r.net_minor"),
             )),
        Step("payout_hold", _key("settlement:", ":move"), "pending", ordinal=2,
             required=_MOVED, allowed=_status("created"), recorded="r.hold_transfer_id",
             metadata={"step": "payout_hold"}, legs=_PAYOUT_HOLD),
        Step("payout_post", _key("settlement:", ":post"), "post_pending",
             required=_status("paid"), allowed=_PAYING, resolves="payout_hold",
             recorded="CASE WHEN r.status = 'paid' THEN r.resolution_transfer_id END",
             metadata={"step": "payout_post"}, legs=_PAYOUT_HOLD),
        Step("payout_void", _key("settlement:", ":void"), "void_pending",
             required=_status("failed"), allowed=_PAYING, resolves="payout_hold",
             recorded="CASE WHEN r.status = 'failed' THEN r.resolution_transfer_id END",
             metadata={"step": "payout_void"}),
    ),
)

FLOW_CHECKS: tuple[FlowCheck, ...] = (
    P2P_PAYMENTS, QR_PAYMENTS, QR_REFUNDS, TOPUPS, WITHDRAWALS, BILL_PAYMENTS, FX_QUOTES,
    CASHBACKS, PROMOTION_FUNDINGS, SETTLEMENT_BATCHES,
)


def flow_checks(checks: Sequence[FlowCheck] = FLOW_CHECKS) -> CheckGroup:
    """The group of checks `check_ledger(..., more_checks=[flow_checks()])` runs."""

    def run(connection: Connection, subjects_max: int) -> CheckResults:
        findings = Findings()
        counts = {}
        with _session_settings(connection, jit="off", work_mem=WORK_MEM):
            for flow in checks:
                counts[flow.name] = connection.execute(
                    text(f"SELECT count(*) FROM {flow.table}")
                ).scalar_one()
                find_flow_breaks(connection, flow, findings, subjects_max=subjects_max)
        return summarize([flow.check for flow in checks], counts, findings)

    return run


@contextmanager
def _session_settings(connection: Connection, **settings: str) -> Iterator[None]:
    """Settings for these statements only, then back to what they were.

    JIT off: compiling each statement's many expressions took longer (seconds per flow)
    than running it. More `work_mem`: the joins and sorts of a large flow stay in memory.
    """
    previous = {
        name: connection.execute(text("SELECT current_setting(:name)"), {"name": name})
        .scalar_one()
        for name in settings
    }
    for name, value in settings.items():
        connection.execute(text("SELECT set_config(:name, :value, true)"),
                           {"name": name, "value": value})
    try:
        yield
    finally:
        for name, value in previous.items():
            connection.execute(text("SELECT set_config(:name, :value, true)"),
                               {"name": name, "value": value})


def find_flow_breaks(connection: Connection, flow: FlowCheck, findings: Findings, *,
                     subjects_max: int) -> None:
    """Add the flow's broken steps, and its unkeyed transfers, to `findings`."""
    parameters = {
        "client_id": PAYMENTS_CLIENT_ID, "prefix": flow.key_prefix,
        "id_start": len(flow.key_prefix) + 1, "uuid_pattern": f"^{_UUID_PATTERN}$",
        "flow_metadata": json.dumps({"flow": flow.metadata_flow}),
        "limit": subjects_max + 1,
    }
    rows = connection.execute(text(steps_sql(flow)), parameters).all()
    findings.add_rows(rows, subjects_max, lambda row: [_step_break(flow, row)])
    rows = connection.execute(text(unkeyed_sql(flow)), parameters).all()
    findings.add_rows(rows, subjects_max, lambda row: [_unkeyed_break(flow, row)])


# The SQL. `actual`: every transfer under the flow's keys, with the record id the key
# names; `expected`: one row per record and step; their full join, judged column by
# column in `verdicts` (as the ledger's own checks are), returns only broken rows.

def _actual_sql(flow: FlowCheck) -> str:
    """Every transfer under the flow's keys, with the record id the key names and its
    place in the key's batch. The places are a VALUES list, not a set-returning function
    over `result_refs`, so the planner's row estimates stay right; one place beyond the
    flow's last is read too, so a key holding more transfers than the flow makes shows."""
    places = ", ".join(f"({n})" for n in range(1, max(s.ordinal for s in flow.steps) + 2))
    return f"""
actual AS (
    SELECT CASE WHEN substr(k.key, :id_start, 36) ~ :uuid_pattern
                THEN substr(k.key, :id_start, 36)::uuid END AS record_id,
           k.key, place.ordinal, (k.result_refs ->> (place.ordinal - 1))::uuid AS transfer_id
    FROM idempotency_keys k
    JOIN (VALUES {places}) AS place(ordinal)
         ON place.ordinal <= jsonb_array_length(k.result_refs)
    WHERE k.client_id = :client_id AND starts_with(k.key, :prefix)
)"""


# A stored posting as a leg: what a transfer moved (posted layer) or holds (pending).
_ACTUAL_LEGS_SQL = """
actual_legs AS (
    SELECT labelled.transfer_id, array_agg(labelled.leg ORDER BY labelled.leg) AS legs
    FROM (
        SELECT a.transfer_id,
               concat_ws(' ', p.direction, p.amount_minor::text,
                         coalesce(pa.purpose || ' ' || pa.owner_kind || ':' || pa.owner_id
                                  || ' ' || pa.currency,
                                  'account ' || p.account_id::text || ' ' || p.asset_code))
                   AS leg
        FROM actual a
        JOIN transfers t ON t.id = a.transfer_id
        JOIN postings p ON p.transfer_id = t.id AND p.amount_minor > 0
             AND p.layer = CASE WHEN t.kind = 'pending' THEN 'pending' ELSE 'posted' END
        LEFT JOIN payment_accounts pa ON pa.account_id = p.account_id
    ) labelled
    GROUP BY labelled.transfer_id
)"""

def _expected_sql(flow: FlowCheck, step: Step) -> str:
    resolves = next((s for s in flow.steps if s.name == step.resolves), None)
    legs = ", ".join(leg.sql() for leg in step.legs) or "NULL::text"
    metadata = {"flow": _literal(flow.metadata_flow), flow.metadata_id: "r.id::text"}
    metadata |= {name: _literal(value) for name, value in step.metadata.items()}
    return f"""
    SELECT r.id AS record_id, r.status, {_literal(step.name)} AS step, {step.key} AS key,
           {step.ordinal}::bigint AS ordinal, {_literal(step.kind)} AS kind,
           CASE WHEN {step.required} THEN {_literal(REQUIRED)}
                WHEN {step.allowed} THEN {_literal(ALLOWED)}
                ELSE {_literal(FORBIDDEN)} END AS presence,
           {'true' if step.recorded else 'false'} AS records_transfer,
           {step.recorded or 'NULL::uuid'} AS recorded_transfer_id,
           {resolves.key if resolves else 'NULL::text'} AS resolves_key,
           {resolves.ordinal if resolves else 'NULL'}::bigint AS resolves_ordinal,
           array_remove(ARRAY[{legs}], NULL) AS legs,
           jsonb_build_object({', '.join(f'{_literal(k)}, {v}' for k, v in metadata.items())})
               AS metadata
    FROM {flow.table} r"""


def steps_sql(flow: FlowCheck) -> str:
    """One statement: the flow's broken (record, step) pairs, at most :limit."""
    expected = "\n    UNION ALL".join(_expected_sql(flow, step) for step in flow.steps)
    holds = any(step.resolves for step in flow.steps)
    hold_transfer_id = "h.transfer_id" if holds else "NULL::uuid"
    join_holds = ("LEFT JOIN actual h ON h.key = e.resolves_key"
                  " AND h.ordinal = e.resolves_ordinal") if holds else ""
    return f"""
WITH {_actual_sql(flow).strip()},
{_ACTUAL_LEGS_SQL.strip()},
expected AS ({expected}
),
joined AS (
    SELECT coalesce(e.record_id, a.record_id) AS record_id, e.status, e.step,
           coalesce(e.key, a.key) AS key, coalesce(e.ordinal, a.ordinal) AS ordinal,
           e.presence, e.kind AS expected_kind, a.transfer_id, t.id IS NOT NULL AS found,
           t.kind AS actual_kind, e.records_transfer, e.recorded_transfer_id,
           e.legs AS expected_legs, coalesce(al.legs, '{{}}') AS actual_legs,
           t.pending_id, {hold_transfer_id} AS hold_transfer_id, e.resolves_key,
           e.metadata AS expected_metadata, t.metadata AS actual_metadata,
           -- A transfer the record allows or requires: what it moves is judged.
           (t.id IS NOT NULL AND coalesce(e.presence IN ('required', 'allowed'), false))
               AS judged,
           resolution.id AS resolution_id, resolution.kind AS resolution_kind,
           resolution_step.transfer_id IS NOT NULL AS resolution_in_flow
    FROM expected e
    FULL JOIN actual a ON a.key = e.key AND a.ordinal = e.ordinal
    LEFT JOIN transfers t ON t.id = a.transfer_id
    -- What resolved a hold, and whether that was one of the flow's own steps.
    LEFT JOIN transfers resolution ON resolution.pending_id = a.transfer_id
    LEFT JOIN actual resolution_step ON resolution_step.transfer_id = resolution.id
    LEFT JOIN actual_legs al ON al.transfer_id = a.transfer_id
    {join_holds}
),
verdicts AS (
    SELECT j.*,
           j.step IS NOT NULL AS known_ok,
           NOT (j.presence = 'required' AND j.transfer_id IS NULL) AS present_ok,
           NOT (j.presence = 'forbidden' AND j.transfer_id IS NOT NULL) AS allowed_ok,
           (j.transfer_id IS NULL OR j.found) AS exists_ok,
           (NOT j.judged OR j.actual_kind = j.expected_kind) AS kind_ok,
           -- As multisets: a transfer never has two legs on one account, so the same
           -- legs in any order are equal sets of equal size.
           (NOT j.judged OR cardinality(j.actual_legs) = cardinality(j.expected_legs)
            AND j.actual_legs @> j.expected_legs AND j.expected_legs @> j.actual_legs)
               AS legs_ok,
           (NOT j.judged OR j.actual_metadata @> j.expected_metadata) AS metadata_ok,
           (NOT j.found OR j.resolves_key IS NULL
            OR j.pending_id IS NOT DISTINCT FROM j.hold_transfer_id) AS resolves_ok,
           (j.resolution_id IS NULL OR j.resolution_in_flow) AS resolved_in_flow_ok,
           (j.step IS NULL OR NOT j.records_transfer
            OR (j.recorded_transfer_id IS NULL AND j.presence IS DISTINCT FROM 'required')
            OR j.recorded_transfer_id IS NOT DISTINCT FROM j.transfer_id) AS recorded_ok,
           CASE WHEN j.step IS NULL THEN
               EXISTS (SELECT 1 FROM {flow.table} x WHERE x.id = j.record_id)
           END AS record_exists
    FROM joined j
)
SELECT * FROM verdicts
WHERE NOT (known_ok AND present_ok AND allowed_ok AND exists_ok AND kind_ok AND legs_ok
           AND metadata_ok AND resolves_ok AND resolved_in_flow_ok AND recorded_ok)
ORDER BY record_id NULLS FIRST, key, ordinal
LIMIT :limit
"""


def unkeyed_sql(flow: FlowCheck) -> str:
    """Transfers with the flow's metadata that no key of the flow names (the GIN index on
    transfers.metadata finds them), at most :limit."""
    return f"""
WITH {_actual_sql(flow).strip()}
SELECT t.id, t.kind, t.metadata ->> {_literal(flow.metadata_id)} AS record_id
FROM transfers t
WHERE t.metadata @> CAST(:flow_metadata AS jsonb)
  AND NOT EXISTS (SELECT 1 FROM actual a WHERE a.transfer_id = t.id)
ORDER BY t.id
LIMIT :limit
"""


# From broken rows to breaks.


def _step_break(flow: FlowCheck, row) -> Break:
    subject = str(row.record_id) if row.record_id is not None else row.key
    return Break(flow.name, subject, f"{row.key}: " + "; ".join(_step_problems(flow, row)))


def _transfer_of(step: str) -> str:
    """How a step's transfer is named: "the transfer" of a one-transfer flow, else
    "the hold transfer", "the post transfer" ..."""
    return "transfer" if step == "transfer" else f"{step} transfer"


def _step_problems(flow: FlowCheck, row) -> list[str]:
    transfer = f"transfer {row.transfer_id}"
    if not row.known_ok:
        if row.record_id is None:
            return [f"{transfer} is under a {flow.key_prefix} key that names no record id"]
        if not row.record_exists:
            return [f"{transfer} was made for {flow.table} record {row.record_id},"
                    " which does not exist"]
        return [f"{transfer} is not a step of the flow (key or batch position unknown)"]
    if not row.present_ok:
        return [f"the record is {row.status} but the ledger has no {_transfer_of(row.step)}"]
    if not row.allowed_ok:
        return [f"the record is {row.status}, so no {_transfer_of(row.step)} should exist,"
                f" but {transfer} does"]
    if not row.exists_ok:
        return [f"the key names {transfer}, which does not exist"]
    problems = []
    if not row.kind_ok:
        problems.append(f"{transfer} is {row.actual_kind}, expected {row.expected_kind}")
    if not row.legs_ok:
        problems.append(f"{transfer} moves [{', '.join(sorted(row.actual_legs))}], expected"
                        f" [{', '.join(sorted(row.expected_legs))}]")
    if not row.metadata_ok:
        problems.append(f"{transfer} has metadata {row.actual_metadata}, expected it to"
                        f" include {row.expected_metadata}")
    if not row.resolves_ok:
        problems.append(f"{transfer} resolves {row.pending_id}, not the flow's hold"
                        f" {row.hold_transfer_id}")
    if not row.resolved_in_flow_ok:
        problems.append(f"hold {row.transfer_id} was resolved by {row.resolution_kind}"
                        f" transfer {row.resolution_id}, which is none of the flow's steps")
    if not row.recorded_ok:
        recorded = row.recorded_transfer_id or "none"
        problems.append(f"the record names {_transfer_of(row.step)} {recorded}, the ledger's"
                        f" key names {row.transfer_id or 'none'}")
    return problems


def _unkeyed_break(flow: FlowCheck, row) -> Break:
    detail = (f"{row.kind} transfer {row.id} carries {flow.metadata_flow} metadata"
              f" ({flow.metadata_id} {row.record_id}) but no {flow.key_prefix} key names it")
    return Break(flow.name, str(row.id), detail)
