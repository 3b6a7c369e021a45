"""End to end: real top-ups, withdrawals and a merchant settlement payout through the
sandbox processor, its settlement report (`pacioli gateways sandbox-report`), then
`pacioli reconcile statement --source sandbox_gateway`: clean; then breaks planted by
editing the report are found, and a refund the processor made that the ledger never
booked is found too.

On an empty schema of its own: the sandbox's clearing account and the platform's bank
account are shared, and another test's top-ups would be this report's breaks.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacioli.cli.main import app
from pacioli.gateways.sandbox import magic
from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments.settlement import register_settlement_handler
from pacioli.payments.topups import register_funding_handlers
from tests.integration.test_cli import restore_logging_and_settings, use_database  # noqa: F401
from tests.integration.test_settlement import make_world as make_settlement_world
from tests.integration.test_settlement import mine
from tests.integration.test_topups import World, make_world
from tests.integration.test_withdrawals import Payouts

runner = CliRunner()


@dataclass
class Flows:
    world: World
    payouts: Payouts
    captured: list[tuple[str, int]]  # (gateway reference, amount) of succeeded top-ups
    paid_out: list[tuple[str, int]]  # of succeeded withdrawals
    folder: Path

    def report(self, name: str = "sandbox.csv") -> Path:
        out = self.folder / name
        day = self.world.clock().date().isoformat()
        result = runner.invoke(app, ["gateways", "sandbox-report", "--date", day,
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        return out


def reconcile(path: Path, *options: str):
    return runner.invoke(app, ["reconcile", "statement", str(path), "--source",
                               "sandbox_gateway", *options])


@pytest.fixture
def flows(fresh_database_url: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Flows]:
    """Top-ups of every outcome and withdrawals paid out or failed, all settled."""
    use_database(monkeypatch, fresh_database_url)
    engine = make_engine(fresh_database_url, pool_size=4)
    with Ledger(engine) as ledger:
        world = make_world(engine, ledger)
        unregister = register_funding_handlers(engine, ledger, world.chart, world.gateway,
                                                registry=world.registry)
        yield settled_flows(world, tmp_path)
        unregister()
    engine.dispose()


def settled_flows(world: World, folder: Path) -> Flows:
    payouts = Payouts(world)
    user = uuid.uuid4()
    topups = [world.top_up(user, world.card(user, number), amount).value
              for number, amount in ((magic.CARD_SUCCEEDS, 25_00), (magic.CARD_SUCCEEDS, 7_35),
                                     (magic.CARD_DECLINED, 9_00),
                                     (magic.CARD_ASYNC_SUCCEEDS, 12_00))]
    topups.append(world.top_up(user, world.bank(user), 30_00).value)  # a bank debit
    bank = world.bank(user)
    withdrawals = [payouts.withdraw(user, bank, 20_00).value,
                   payouts.withdraw(user, world.bank(user, magic.BANK_ACCOUNT_CLOSED),
                                    5_00).value]
    world.clock.advance(31)
    for reference in [t.gateway_reference for t in topups + withdrawals]:
        world.deliver(reference)
    topups = [world.topups.refresh(user, t.id) for t in topups]
    withdrawals = [payouts.withdrawals.refresh(user, w.id) for w in withdrawals]
    assert [t.status for t in topups] == ["succeeded", "succeeded", "failed", "succeeded",
                                          "succeeded"]
    assert [w.status for w in withdrawals] == ["succeeded", "failed"]
    return Flows(
        world, payouts,
        [(t.gateway_reference, t.amount_minor) for t in topups if t.status == "succeeded"],
        [(w.gateway_reference, w.amount_minor) for w in withdrawals if w.status == "succeeded"],
        folder,
    )


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_sandbox_report_lists_what_the_processor_settled(flows):
    rows = rows_of(flows.report())

    day = flows.world.clock().date().isoformat()
    assert sorted((r["reference"], r["type"], r["amount"], r["currency"], r["settled_on"])
                  for r in rows) == sorted(
        [(ref, "capture", f"{amount / 100:.2f}", "USD", day) for ref, amount in flows.captured]
        + [(ref, "payout", f"-{amount / 100:.2f}", "USD", day) for ref, amount in flows.paid_out]
    )


def test_real_flows_reconcile_clean_against_the_sandbox_report(flows):
    report = flows.report()

    result = reconcile(report, "--json")

    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["run"]
    assert (run["statement_lines"], run["ledger_entries"], run["matched_lines"],
            run["break_count"]) == (5, 5, 5, 0)
    # 4 top-ups in, 1 withdrawal out (the wallet funding from the bank is not the processor's)
    assert run["summary"]["totals"]["USD"]["statement_minor"] == str(
        25_00 + 7_35 + 12_00 + 30_00 - 20_00)


def test_breaks_planted_in_the_report_are_found_and_nothing_else(flows, tmp_path):
    rows = rows_of(flows.report())
    by_ref = {row["reference"]: row for row in rows}
    (first, _), (second, _), (third, _), (fourth, _) = flows.captured
    [(payout, _)] = flows.paid_out
    by_ref[first]["amount"] = "25.01"  # amount_mismatch
    by_ref[second]["currency"] = "EUR"  # currency_mismatch
    planted = [row for row in rows if row["reference"] != payout]  # missing_in_statement
    planted.append(dict(by_ref[third]))  # duplicate
    planted.append({**by_ref[fourth], "reference": "pay_not_in_our_ledger"})  # missing_in_ledger
    path = write_rows(tmp_path / "edited.csv", planted)
    out = tmp_path / "breaks.json"

    result = reconcile(path, "--report", str(out))

    assert result.exit_code == 1, result.output
    found = {(b["kind"], b["reference"]) for b in json.loads(out.read_text())["breaks"]}
    assert found == {("amount_mismatch", first), ("currency_mismatch", second),
                     ("missing_in_statement", payout), ("duplicate", third),
                     ("missing_in_ledger", "pay_not_in_our_ledger")}


def test_a_refund_the_ledger_never_booked_is_missing_in_the_ledger(flows):
    reference, _ = flows.captured[0]
    refund = flows.world.gateway.refund(reference, 5_00, idempotency_key=uuid.uuid4().hex)
    report = flows.report()

    result = reconcile(report, "--json")

    assert result.exit_code == 1
    run = json.loads(result.stdout)["run"]
    assert run["summary"]["breaks_by_kind"] == {"missing_in_ledger": 1}
    refund_row = [row for row in rows_of(report) if row["type"] == "refund"]
    assert refund_row == [{"reference": refund.reference, "type": "refund", "amount": "-5.00",
                           "currency": "USD",
                           "settled_on": flows.world.clock().date().isoformat()}]


def test_a_report_of_another_day_is_empty(flows, tmp_path):
    out = tmp_path / "empty.csv"
    result = runner.invoke(app, ["gateways", "sandbox-report", "--date", "2001-01-01",
                                 "--out", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == "reference,type,amount,currency,settled_on\n"


def test_a_merchant_settlement_payout_reconciles_against_the_sandbox_report(
        fresh_database_url, tmp_path, monkeypatch):
    use_database(monkeypatch, fresh_database_url)
    engine = make_engine(fresh_database_url, pool_size=4)
    with Ledger(engine) as ledger:
        world = make_settlement_world(engine, ledger)
        unregister = register_settlement_handler(engine, ledger, world.chart, world.gateway,
                                                 registry=world.registry)
        now = datetime.now(UTC)
        shop = world.merchant()
        for amount in (40_00, 2_50):  # the payers' wallets are funded from the bank account
            world.pay(shop, amount, at=now)
        settlement = world.settlement(cycle_days=0)
        [batch] = mine(settlement.run_cycle(now + timedelta(seconds=1)), shop)
        world.deliver(batch.payout_reference)
        paid = settlement.get(shop.id, batch.id)
        unregister()
    engine.dispose()
    out = tmp_path / "settlement.csv"
    made = runner.invoke(app, ["gateways", "sandbox-report", "--date",
                               world.clock().date().isoformat(), "--out", str(out)])

    result = reconcile(out, "--json")

    assert paid.status == "paid"
    assert made.exit_code == 0, made.output
    assert [(r["reference"], r["type"], r["amount"]) for r in rows_of(out)] == [
        (paid.payout_reference, "payout", f"-{paid.net_minor // 100}.{paid.net_minor % 100:02d}")]
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["run"]
    assert (run["statement_lines"], run["ledger_entries"], run["matched_lines"]) == (1, 1, 1)
