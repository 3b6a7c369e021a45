"""`pacioli reconcile statement` on a bank CSV against ledger transfers made here: every break
class planted is found and nothing else, runs are recorded once per file, reports, breaks
resolved, malformed files, exit codes. Run through typer's CliRunner on the test schema.

Each test books on bank accounts of its own (the mapping selects them by id), on fixed
past days (a ledger with a fixed clock), so no other test's transfers are in its window.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from pacioli.cli.main import app
from pacioli.ledger import Direction, Ledger, credit, debit
from pacioli.reconciliation import runs
from pacioli.reconciliation.run_tables import reconciliation_breaks, reconciliation_runs
from tests.integration.test_cli import restore_logging_and_settings, use_database  # noqa: F401

runner = CliRunner()
DAY = date(2026, 3, 2)
HEADER = "Date,Description,Reference,Amount,Currency\n"
# The generic bank layout, matched against one account of the test's own.
MAPPING = """
name = "testbank"
[columns]
reference = "Reference"
amount = "Amount"
currency = "Currency"
booked_on = "Date"
[amount]
unit = "major"
sign = "signed"
[ledger]
account_id = "{account_id}"
reference = "metadata:bank_ref"
sign = "debit_positive"
"""


@dataclass
class Bank:
    """A bank account of the test's own in the ledger, and a mapping that selects it."""

    engine: Engine
    account_id: UUID
    counter_id: UUID
    mapping: Path
    folder: Path
    tag: str  # makes this test's references unique in the shared schema

    def ref(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def book(self, name: str, amount_minor: int, *, day: date = DAY, key: str = "bank_ref"
             ) -> UUID:
        """A transfer on the bank account: positive arrives (debit), negative leaves."""
        at = datetime.combine(day, time(12), tzinfo=UTC)
        legs = ([debit(self.account_id, amount_minor), credit(self.counter_id, amount_minor)]
                if amount_minor > 0 else
                [debit(self.counter_id, -amount_minor), credit(self.account_id, -amount_minor)])
        with Ledger(self.engine, batching=False, clock=lambda: at) as ledger:
            return ledger.transfer(legs, metadata={key: self.ref(name)},
                                   idempotency_key=uuid.uuid4().hex).value.id

    def statement(self, rows: list[tuple[str, str, str] | tuple[str, str, str, date]],
                  name: str = "statement.csv") -> Path:
        """(reference name, amount, currency[, day]) rows as a generic bank CSV."""
        lines = [HEADER]
        for row in rows:
            ref, amount, currency = row[:3]
            day = row[3] if len(row) > 3 else DAY
            lines.append(f"{day.isoformat()},PAYMENT,{self.ref(ref)},{amount},{currency}\n")
        path = self.folder / name
        path.write_text("".join(lines), encoding="utf-8")
        return path

    def reconcile(self, path: Path, *options: str):
        return runner.invoke(app, ["reconcile", "statement", str(path), "--source", "testbank",
                                   "--mapping", str(self.mapping), *options])


@pytest.fixture
def bank(engine: Engine, database_url: str, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    use_database(monkeypatch, database_url)
    with Ledger(engine, batching=False) as ledger:
        account = ledger.open_account(asset_code="USD", normal_side=Direction.DEBIT,
                                      idempotency_key=uuid.uuid4().hex).value.id
        counter = ledger.open_account(asset_code="USD", normal_side=Direction.CREDIT,
                                      idempotency_key=uuid.uuid4().hex).value.id
    mapping = tmp_path / "testbank.toml"
    mapping.write_text(MAPPING.format(account_id=account), encoding="utf-8")
    yield Bank(engine, account, counter, mapping, tmp_path, uuid.uuid4().hex[:8])


def planted(bank: Bank) -> Path:
    """A statement with matches of every shape and one break of every class."""
    bank.book("R1", 10_00)
    bank.book("OUT", -9_00)
    for amount in (3_00, 7_00):  # one line for two entries (a payout of two payments)
        bank.book("MANY", amount)
    bank.book("SPLIT", 12_00)  # two lines for one entry
    bank.book("AMT", 10_50)
    bank.book("CUR", 4_00)
    bank.book("DUP", 2_00)
    bank.book("NOSTMT", 1_00)
    return bank.statement([
        ("R1", "10.00", "USD"), ("OUT", "-9.00", "USD"), ("MANY", "10.00", "USD"),
        ("SPLIT", "5.00", "USD"), ("SPLIT", "7.00", "USD"),
        ("NOLEDGER", "5.00", "USD"),  # line 7
        ("AMT", "10.00", "USD"),  # line 8
        ("DUP", "2.00", "USD"), ("DUP", "2.00", "USD"),  # line 10 repeats line 9
        ("CUR", "4.00", "EUR"),  # line 11
    ])


def report_of(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def runs_of(engine: Engine, path: Path) -> list[runs.Run]:
    return runs.earlier_runs(engine, "testbank", runs.file_sha256(path))


def test_every_planted_break_class_is_found_and_nothing_else(bank, tmp_path):
    statement = planted(bank)
    out = tmp_path / "out.json"

    result = bank.reconcile(statement, "--report", str(out))

    assert result.exit_code == 1, result.output
    report = report_of(out)
    found = {(b["kind"], b["reference"], tuple(b["line_numbers"])) for b in report["breaks"]}
    assert found == {
        ("missing_in_ledger", bank.ref("NOLEDGER"), (7,)),
        ("amount_mismatch", bank.ref("AMT"), (8,)),
        ("duplicate", bank.ref("DUP"), (10,)),
        ("currency_mismatch", bank.ref("CUR"), (11,)),
        ("missing_in_statement", bank.ref("NOSTMT"), ()),
    }
    run = report["run"]
    assert (run["statement_lines"], run["ledger_entries"], run["matched_lines"],
            run["break_count"]) == (10, 9, 6, 5)
    assert run["summary"]["matches_by_kind"] == {"many_to_one": 1, "one_to_many": 1,
                                                 "one_to_one": 3}
    assert run["summary"]["totals"]["USD"]["statement_minor"] == str(
        10_00 - 9_00 + 10_00 + 12_00 + 5_00 + 10_00 + 2_00 + 2_00)
    assert "5 breaks recorded in run" in result.output


def test_a_clean_statement_exits_0_and_records_who_ran_it(bank, engine):
    bank.book("A", 25_00)
    bank.book("B", -4_99)
    statement = bank.statement([("A", "25.00", "USD"), ("B", "-4.99", "USD")])

    result = bank.reconcile(statement, "--by", "alice")

    assert result.exit_code == 0, result.output
    assert "Clean" in result.output
    [run] = runs_of(engine, statement)
    assert (run.run_by, run.statement_lines, run.ledger_entries, run.matched_lines,
            run.break_count, run.forced) == ("alice", 2, 2, 2, 0, False)
    assert run.options["period"] == [DAY.isoformat(), DAY.isoformat()]


def test_the_same_file_is_refused_unless_forced(bank, engine):
    bank.book("A", 1_00)
    statement = bank.statement([("A", "1.00", "USD"), ("GHOST", "1.00", "USD")])
    first = bank.reconcile(statement, "--by", "alice")

    again = bank.reconcile(statement)
    forced = bank.reconcile(statement, "--force", "--by", "bob")

    [run, forced_run] = runs_of(engine, statement)
    assert first.exit_code == 1
    assert again.exit_code == 2
    assert "statement_already_reconciled" in again.output
    assert f"run {run.id} by alice" in again.output
    assert forced.exit_code == 1
    assert (forced_run.forced, forced_run.run_by) == (True, "bob")
    assert len(runs.list_breaks(engine, run_id=forced_run.id)) == 1


def test_fail_on_is_the_most_breaks_that_still_exit_0(bank):
    bank.book("A", 1_00)
    statement = bank.statement([("A", "1.00", "USD"), ("X", "1.00", "USD"),
                                ("Y", "2.00", "USD")])

    tolerated = bank.reconcile(statement, "--fail-on", "2")
    exceeded = bank.reconcile(statement, "--fail-on", "1", "--force")
    default = bank.reconcile(statement, "--force")

    assert (tolerated.exit_code, exceeded.exit_code, default.exit_code) == (0, 1, 1)


@pytest.mark.parametrize(("content", "line", "words"), [
    (HEADER + "2026-03-02,P,A,10.00,USD\n2026-03-02,P,B,ten,USD\n", 3, "amount 'ten'"),
    (HEADER + "2026-03-02,P,A,10.00,USD\n02/03/2026,P,B,1.00,USD\n", 3, "date '02/03/2026'"),
    ("Date,Reference,Amount\n2026-03-02,A,10.00\n", 1, "missing column(s) 'Currency'"),
    (HEADER.encode() + b"2026-03-02,P,A\xff,1.00,USD\n", 2, "not valid utf-8"),
    (HEADER + "2026-03-02,P,A,1.00,USD\n2026-03-02,P,B,1.00,USD,extra\n", 3, "6 fields"),
    (HEADER + "2026-03-02,P,A,1.001,USD\n", 2, "3 decimal places"),
    (HEADER + "2026-03-02,P,A,1.00,XYZ\n", 2, "unknown currency 'XYZ'"),
])
def test_a_malformed_file_names_the_line_and_records_nothing(bank, engine, content, line,
                                                             words):
    bank.book("A", 10_00)
    statement = bank.folder / "bad.csv"
    if isinstance(content, bytes):
        statement.write_bytes(content)
    else:
        statement.write_text(content, encoding="utf-8")
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(reconciliation_runs)
                                    ).scalar()

    result = bank.reconcile(statement, "--report", str(bank.folder / "r.json"))

    assert result.exit_code == 2
    assert f"line {line}" in result.output and words in result.output, result.output
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(reconciliation_runs)
                                  ).scalar() == before
    assert not (bank.folder / "r.json").exists()


def test_the_csv_report_lists_every_break_with_amounts_in_both_units(bank, tmp_path):
    statement = planted(bank)
    out = tmp_path / "breaks.csv"

    assert bank.reconcile(statement, "--report", str(out)).exit_code == 1

    with open(out, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    by_kind = {row["kind"]: row for row in rows}
    assert len(rows) == 5
    assert set(by_kind) == {"missing_in_ledger", "missing_in_statement", "amount_mismatch",
                            "currency_mismatch", "duplicate"}
    mismatch = by_kind["amount_mismatch"]
    assert (mismatch["statement_amount"], mismatch["ledger_amount"],
            mismatch["statement_amount_minor"], mismatch["ledger_amount_minor"],
            mismatch["line_numbers"], mismatch["status"]) == (
        "10.00", "10.50", "1000", "1050", "8", "open")
    assert mismatch["entry_ids"].endswith("/0")
    currency = by_kind["currency_mismatch"]
    assert (currency["currency"], currency["ledger_currency"]) == ("EUR", "USD")
    missing = by_kind["missing_in_statement"]
    assert (missing["statement_amount"], missing["ledger_amount"], missing["line_numbers"]) \
        == ("", "1.00", "")
    assert all(int(row["break_id"]) > 0 and row["run_id"] == rows[0]["run_id"] for row in rows)


def test_the_json_output_is_one_object_with_the_run(bank):
    bank.book("A", 1_00)
    statement = bank.statement([("A", "1.00", "USD"), ("X", "1.00", "USD")])

    result = bank.reconcile(statement, "--json", "--fail-on", "1")

    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert (printed["passed"], printed["fail_on"], printed["run"]["break_count"]) == (True, 1, 1)
    assert printed["run"]["summary"]["breaks_by_kind"] == {"missing_in_ledger": 1}


def test_a_break_is_resolved_once_with_a_note(bank, engine):
    bank.book("A", 1_00)
    statement = bank.statement([("A", "1.00", "USD"), ("X", "3.00", "USD"),
                                ("Y", "4.00", "USD")])
    bank.reconcile(statement, "--by", "alice")
    [run] = runs_of(engine, statement)
    first, second = runs.list_breaks(engine, run_id=run.id)

    resolved = runner.invoke(app, ["reconcile", "breaks", "resolve", str(first.id),
                                   "--note", "bank fee, booked by hand", "--by", "carol"])
    again = runner.invoke(app, ["reconcile", "breaks", "resolve", str(first.id), "--note", "x"])
    unknown = runner.invoke(app, ["reconcile", "breaks", "resolve", "999999999", "--note", "x"])
    empty = runner.invoke(app, ["reconcile", "breaks", "resolve", str(second.id),
                                "--note", "  "])
    listed = runner.invoke(app, ["reconcile", "breaks", "list", "--run", str(run.id), "--open",
                                 "--json"])
    listed_all = runner.invoke(app, ["reconcile", "breaks", "list", "--run", str(run.id),
                                     "--json"])

    assert resolved.exit_code == 0, resolved.output
    assert (again.exit_code, unknown.exit_code, empty.exit_code) == (2, 2, 2)
    assert "break_already_resolved" in again.output and "carol" in again.output
    assert "break_not_found" in unknown.output
    assert "invalid_resolution" in empty.output
    assert [b["id"] for b in json.loads(listed.stdout)["breaks"]] == [second.id]
    shown = {b["id"]: b for b in json.loads(listed_all.stdout)["breaks"]}
    assert (shown[first.id]["status"], shown[first.id]["resolved_by"],
            shown[first.id]["resolution_note"]) == ("resolved", "carol",
                                                    "bank fee, booked by hand")
    assert shown[second.id]["status"] == "open"


def test_tolerances_match_what_exact_matching_reports(bank, engine):
    bank.book("AMT", 10_50)
    bank.book("LATE", 6_00, day=date(2026, 3, 3))  # booked a day after the bank's date
    statement = bank.statement([("AMT", "10.00", "USD"), ("LATE", "6.00", "USD")])

    exact = bank.reconcile(statement, "--json")
    tolerant = bank.reconcile(statement, "--json", "--force", "--amount-tolerance", "0.50",
                              "--date-tolerance-days", "1")
    too_fine = bank.reconcile(statement, "--force", "--amount-tolerance", "0.001")

    assert json.loads(exact.stdout)["run"]["summary"]["breaks_by_kind"] == {
        "amount_mismatch": 1, "missing_in_ledger": 1}
    assert tolerant.exit_code == 0
    assert json.loads(tolerant.stdout)["run"]["options"]["amount_tolerance_minor"] == 50
    assert too_fine.exit_code == 2 and "invalid_amount_tolerance" in too_fine.output


def test_only_the_statements_period_is_compared(bank):
    bank.book("BEFORE", 1_00, day=date(2026, 3, 1))
    bank.book("A", 2_00)
    bank.book("AFTER", 3_00, day=date(2026, 3, 3))  # in the tolerance margin, not on file
    statement = bank.statement([("A", "2.00", "USD")])

    result = bank.reconcile(statement, "--date-tolerance-days", "1", "--json")
    widened = bank.reconcile(statement, "--json", "--force", "--until", "2026-03-03")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["ledger_entries"] == 1
    breaks = runs.list_breaks(bank.engine, run_id=json.loads(widened.stdout)["run"]["id"])
    assert [(b.kind, b.reference) for b in breaks] == [
        ("missing_in_statement", bank.ref("AFTER"))]


def test_a_transfer_without_the_reference_key_is_named_by_its_transfer(bank):
    transfer_id = bank.book("A", 2_00, key="other_key")
    statement = bank.statement([("B", "1.00", "USD")])

    result = bank.reconcile(statement, "--json")

    breaks = runs.list_breaks(bank.engine, run_id=json.loads(result.stdout)["run"]["id"])
    assert {(b.kind, b.reference) for b in breaks} == {
        ("missing_in_ledger", bank.ref("B")),
        ("missing_in_statement", f"transfer:{transfer_id}"),
    }


def test_a_shipped_mapping_is_found_by_source_and_an_unknown_one_is_refused(bank, tmp_path):
    statement = bank.statement([("A", "1.00", "USD")])

    result = runner.invoke(app, ["reconcile", "statement", str(statement), "--source",
                                 "nobank"])
    bad_report = bank.reconcile(statement, "--report", str(tmp_path / "out.txt"))

    assert result.exit_code == 2 and "unknown_mapping" in result.output
    assert "generic_bank" in result.output and "sandbox_gateway" in result.output
    assert bad_report.exit_code == 2 and "invalid_report_path" in bad_report.output


def test_breaks_are_recorded_with_the_run_in_one_go(bank, engine):
    statement = planted(bank)
    bank.reconcile(statement)
    [run] = runs_of(engine, statement)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(reconciliation_breaks)
            .where(reconciliation_breaks.c.run_id == run.id)).scalar()
    assert count == run.break_count == 5
