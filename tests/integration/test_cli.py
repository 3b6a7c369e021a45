"""The `pacioli` command, run through typer's CliRunner against a real PostgreSQL schema."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from pacioli.api.admin_keys import find_admin_key
from pacioli.cli import main
from pacioli.cli.main import app
from pacioli.config import get_settings
from pacioli.ledger import Ledger, PendingStatus, credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine, sqlalchemy_url
from pacioli.ledger.storage.invariants import CHECKS, OVERDUE_CHECKS
from pacioli.reconciliation.flows import FLOW_CHECKS

runner = CliRunner()


def use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("PACIOLI_DATABASE_URL", url)
    for name in ("PACIOLI_LOG_FORMAT", "PACIOLI_LOG_LEVEL", "PACIOLI_HOST", "PACIOLI_PORT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def restore_logging_and_settings() -> Iterator[None]:
    """The CLI configures the root logger onto the runner's stderr; undo that afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    get_settings.cache_clear()


@pytest.fixture
def cli_engine(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An empty migrated schema that the CLI is pointed at, and an engine on it."""
    use_database(monkeypatch, fresh_database_url)
    engine = make_engine(fresh_database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def unmigrated_url(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema with no tables at all, which the CLI is pointed at."""
    schema = f"pacioli_cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in server_url else "?"
    url = f"{server_url}{separator}options={quote(f'-csearch_path={schema}')}"
    use_database(monkeypatch, url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return set(connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars())
    finally:
        engine.dispose()


def open_wallets(engine: Engine) -> tuple[UUID, UUID]:
    with Ledger(engine, batching=False) as ledger:
        bank = ledger.open_account(asset_code="USD", normal_side="debit",
                                   idempotency_key=uuid.uuid4().hex).value.id
        wallet = ledger.open_account(asset_code="USD", normal_side="credit",
                                     debits_must_not_exceed_credits=True,
                                     idempotency_key=uuid.uuid4().hex).value.id
        ledger.transfer([debit(bank, 10_00), credit(wallet, 10_00)],
                        idempotency_key=uuid.uuid4().hex)
    return bank, wallet


def count_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("accounts", "transfers", "postings", "idempotency_keys")
        }


def test_reconcile_ledger_exits_0_on_a_clean_ledger(cli_engine):
    open_wallets(cli_engine)

    result = runner.invoke(app, ["reconcile", "ledger"])

    assert result.exit_code == 0, result.output
    checks = len(CHECKS) + len(OVERDUE_CHECKS) + len(FLOW_CHECKS)
    assert f"Clean: {checks} checks passed" in result.stdout
    assert "account_balances_match_postings" in result.stdout
    assert "p2p_payments_match_ledger" in result.stdout


def test_reconcile_ledger_json_is_one_object(cli_engine):
    open_wallets(cli_engine)

    result = runner.invoke(app, ["reconcile", "ledger", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["clean"] is True and report["breaks"] == []
    rows = {check["check"]: check["rows_checked"] for check in report["checks"]}
    assert rows["transfer_balanced"] == 1
    assert rows["account_balances_match_postings"] == 2


def test_reconcile_ledger_exits_1_and_names_the_break_on_a_corrupted_ledger(cli_engine):
    _, wallet = open_wallets(cli_engine)
    with cli_engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET credits_posted = credits_posted + 99 WHERE id = :id"),
            {"id": wallet},
        )

    table = runner.invoke(app, ["reconcile", "ledger"])
    as_json = runner.invoke(app, ["reconcile", "ledger", "--json"])

    assert table.exit_code == 1
    assert "breaks found" in table.stdout
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["clean"] is False
    assert {(b["check"], b["subject_id"]) for b in report["breaks"]} == {
        ("account_balances_match_postings", str(wallet)),
        ("running_balance_matches_account", str(wallet)),
    }


def test_admin_create_key_prints_a_key_the_api_accepts(cli_engine):
    result = runner.invoke(app, ["admin", "create-key", "--name", "ops"])

    assert result.exit_code == 0, result.output
    key = re.search(r"^(pk_admin_\S+)$", result.stdout, re.MULTILINE).group(1)
    key_id = re.search(r"\(id ([0-9a-f-]{36})\)", result.stdout).group(1)
    assert find_admin_key(cli_engine, key) == UUID(key_id)
    assert find_admin_key(cli_engine, key + "x") is None


def test_admin_create_key_refuses_a_blank_name(cli_engine):
    result = runner.invoke(app, ["admin", "create-key", "--name", "  "])

    assert result.exit_code == 2
    with cli_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0


def test_ledger_expire_pending_expires_a_hold_whose_deadline_passed(cli_engine):
    bank, wallet = open_wallets(cli_engine)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with Ledger(cli_engine, batching=False, clock=lambda: an_hour_ago) as ledger_back_then:
        hold = ledger_back_then.transfer(
            [debit(wallet, 4_00), credit(bank, 4_00)], pending=True,
            expires_at=an_hour_ago + timedelta(minutes=5), idempotency_key=uuid.uuid4().hex,
        ).value
        lasting = ledger_back_then.transfer(
            [debit(wallet, 1_00), credit(bank, 1_00)], pending=True,
            expires_at=an_hour_ago + timedelta(days=1), idempotency_key=uuid.uuid4().hex,
        ).value

    first = runner.invoke(app, ["ledger", "expire-pending", "--limit", "10"])
    second = runner.invoke(app, ["ledger", "expire-pending"])

    assert first.exit_code == 0, first.output
    assert "Expired 1 pending transfer(s)." in first.stdout
    assert "Expired 0 pending transfer(s)." in second.stdout
    with Ledger(cli_engine, batching=False) as ledger:
        assert ledger.get_transfer(hold.id).pending_status is PendingStatus.EXPIRED
        assert ledger.get_transfer(lasting.id).pending_status is PendingStatus.PENDING
        assert ledger.get_account(wallet).available_minor == 9_00


def test_demo_runs_twice_without_doubling_and_stays_clean(cli_engine):
    first = runner.invoke(app, ["demo"])
    counts_after_first = count_rows(cli_engine)
    second = runner.invoke(app, ["demo"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    # The ledger chapters open 10 accounts and post 16 transfers; the payments part opens
    # 8 more (wallets, the café's balance, bank, fees, FX liquidity) and posts 6 (two
    # deposits, a P2P payment, a QR payment, an FX batch of two); the commerce part opens
    # 4 (order escrow, the processor's clearing, the supplier's and the reseller's pending
    # settlement) and posts 5 (two order holds, the capture's post and split, a refund);
    # the exchange part opens 9 (Cleo's two wallets, Ada's and Bruno's BTC wallets, BTC
    # custody, the exchange's BTC and USD clearing, its USD fee and rounding accounts) and
    # posts 26 (five deposits, thirteen order holds, eight in its settlement batches).
    assert counts_after_first["accounts"] == 31
    assert counts_after_first["transfers"] == 53
    assert count_rows(cli_engine) == counts_after_first
    assert "Ada sent Bruno 25.00 USD" in first.stdout
    assert "bruno@example.com" in second.stdout
    with cli_engine.connect() as connection:
        people = connection.execute(text("SELECT count(*) FROM users")).scalar()
        payments = connection.execute(text("SELECT count(*) FROM p2p_payments")).scalar()
    assert (people, payments) == (3, 1)
    assert re.search(r"Demo writes: 25 new, 0 replayed", first.stdout)
    assert re.search(r"Demo writes: 0 new, 25 replayed", second.stdout)
    assert f"Clean: {len(CHECKS)} checks passed" in second.stdout
    assert check_ledger(cli_engine).clean


def quiet_alembic_loggers_speak_again(caplog: pytest.LogCaptureFixture) -> None:
    # The session's own migrations loaded alembic.ini's logging, which quiets alembic to
    # WARNING in this process; a fresh `pacioli` process logs alembic's INFO lines.
    caplog.set_level(logging.INFO, logger="alembic")


def test_demo_refused_by_the_ledger_ends_with_a_message_not_a_traceback(cli_engine):
    with Ledger(cli_engine, batching=False) as ledger:
        # Someone else's request under the demo's first key.
        ledger.open_account(asset_code="EUR", normal_side="debit",
                            idempotency_key="demo:account:bank")

    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 2
    assert "the ledger refused: idempotency_key_reused" in result.stderr
    assert count_rows(cli_engine)["accounts"] == 1


def test_db_upgrade_migrates_an_empty_schema_and_logs_json(unmigrated_url, caplog):
    quiet_alembic_loggers_speak_again(caplog)

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert {"accounts", "transfers", "postings", "api_keys"} <= table_names(unmigrated_url)
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(log["logger"].startswith("alembic") for log in logs)


def test_log_format_text_writes_plain_lines(unmigrated_url, caplog):
    quiet_alembic_loggers_speak_again(caplog)

    result = runner.invoke(app, ["--log-format", "text", "db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "INFO alembic.runtime.migration: Running upgrade" in result.stderr
    assert not any(line.startswith("{") for line in result.stderr.splitlines())


def test_db_url_prints_the_configured_url(cli_engine, fresh_database_url):
    result = runner.invoke(app, ["db", "url"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == fresh_database_url


def test_a_database_that_cannot_be_reached_is_a_clear_error(monkeypatch):
    use_database(monkeypatch, "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")

    result = runner.invoke(app, ["reconcile", "ledger"])

    assert result.exit_code == 2
    assert "error:" in result.stderr and "database" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_serve_migrates_then_runs_the_api_where_it_says(unmigrated_url, monkeypatch):
    served = {}
    monkeypatch.setattr(
        main.uvicorn, "run", lambda api, **options: served.update(api=api, **options)
    )

    result = runner.invoke(app, ["serve", "--host", "127.0.0.2", "--port", "8123"])

    assert result.exit_code == 0, result.output
    assert "listening on http://127.0.0.2:8123" in result.stdout
    assert served["host"] == "127.0.0.2" and served["port"] == 8123
    with TestClient(served["api"]) as client:
        assert client.get("/healthz").status_code == 200
    assert {"accounts", "transfers", "api_keys"} <= table_names(unmigrated_url)
