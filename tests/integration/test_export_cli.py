"""`pacioli export`, run through typer's CliRunner against a real PostgreSQL schema."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from pacioli.cli.main import app
from pacioli.config import get_settings
from pacioli.ledger.storage.database import make_engine
from tests.integration.export_support import bean_check, build_ledger, parse_journal

runner = CliRunner()


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
    monkeypatch.setenv("PACIOLI_DATABASE_URL", fresh_database_url)
    for name in ("PACIOLI_LOG_FORMAT", "PACIOLI_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    engine = make_engine(fresh_database_url, pool_size=2)
    yield engine
    engine.dispose()


def test_export_beancount_writes_a_file_bean_check_accepts(cli_engine, tmp_path):
    built = build_ledger(cli_engine)
    out = tmp_path / "books.beancount"
    result = runner.invoke(app, [
        "export", "beancount", "--out", str(out), "--operating-currency", "USD",
        "--since", built.days[1].date().isoformat(), "--until", built.days[3].isoformat(),
    ])

    assert result.exit_code == 0, result.output
    assert f"Wrote {out} (beancount)" in result.output
    assert "6 transactions" in result.output and "opening balances" in result.output
    checked = bean_check(out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'option "operating_currency" "USD"' in out.read_text()


@pytest.mark.parametrize("command", [["beancount", "--format", "ledger"], ["ledger"]])
def test_export_as_a_journal(cli_engine, tmp_path, command):
    build_ledger(cli_engine)
    out = tmp_path / "books.journal"
    result = runner.invoke(app, ["export", *command, "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "(ledger)" in result.output
    journal = parse_journal(out.read_text())
    assert journal.transactions == 12  # eleven transfers and the assertions
    assert all(journal.balances[a] == b for a, b in journal.assertions.items())


@pytest.mark.parametrize(("options", "message"), [
    (["--since", "yesterday"], "--since 'yesterday' is neither a date"),
    (["--since", "2026-03-05", "--until", "2026-03-04"], "comes before --since"),
    (["--until", "2026-02-30"], "--until '2026-02-30' is neither a date"),
    (["--operating-currency", "XYZ"], "--operating-currency XYZ: not an asset of this ledger"),
])
def test_a_bad_window_is_refused_and_writes_nothing(cli_engine, tmp_path, options, message):
    out = tmp_path / "books.beancount"
    result = runner.invoke(app, ["export", "beancount", "--out", str(out), *options])

    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_refused(cli_engine, tmp_path):
    out = tmp_path / "nowhere" / "books.beancount"
    result = runner.invoke(app, ["export", "beancount", "--out", str(out)])
    assert result.exit_code == 2
    assert "does not exist" in result.output
