"""A settlement worker killed with SIGKILL mid-batch, then run again, settles exactly once.

The worker is a separate process running the settlement jobs as `pacioli worker` wires
them (`pacioli.workers.wiring.settlement_jobs`), with PACIOLI_FAULT_AT naming the step
at which it kills itself. Each case has an empty database of its own, so the whole
ledger can be checked afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pacioli.gateways.sandbox.tables import requests as sandbox_requests
from pacioli.ledger import Ledger
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from tests.integration.test_settlement import DAY, World, make_world

WORKER = """
import sys
from datetime import datetime

from pacioli.config import Settings
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings
from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments.chart import Chart
from pacioli.workers.wiring import settlement_jobs

engine = make_engine(sys.argv[1], pool_size=2)
now = datetime.fromisoformat(sys.argv[2])
with Ledger(engine) as ledger:
    gateway = SandboxGateway(engine, SandboxSettings(async_delay_seconds=0))
    jobs = {job.name: job for job in settlement_jobs(engine, ledger, Chart(engine, ledger),
                                                      gateway, Settings())}
    jobs["settlement.run_cycle"].run(now)
    jobs["settlement.refresh_unsettled"].run(now)
print("finished")
"""


@pytest.fixture
def fresh_world(fresh_database_url) -> Iterator[World]:
    engine = make_engine(fresh_database_url, pool_size=5)
    with Ledger(engine) as ledger:
        yield make_world(engine, ledger)
    engine.dispose()


def run_worker(database_url: str, fault_at: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PACIOLI_FAULT_AT"}
    if fault_at is not None:
        env["PACIOLI_FAULT_AT"] = fault_at
    now = (DAY + timedelta(days=1)).isoformat()
    return subprocess.run([sys.executable, "-c", WORKER, database_url, now], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", ["settlement.after_move", "settlement.after_payout",
                                   "settlement.after_post"])
def test_a_worker_killed_mid_batch_and_restarted_settles_once(
    fresh_world, fresh_database_url, point
):
    world = fresh_world
    shop = world.merchant()
    payments = [world.pay(shop, amount, at=DAY + timedelta(hours=h))
                for h, amount in ((1, 12_00), (2, 30_00))]
    net = sum(p.amount_minor - p.fee_minor for p in payments)

    killed = run_worker(fresh_database_url, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "finished" not in killed.stdout
    for _ in range(2):  # the restarted worker, and its next round
        restarted = run_worker(fresh_database_url, None)
        assert restarted.returncode == 0, restarted.stderr

    [batch] = world.batches(shop)
    assert (batch.status, batch.item_count, batch.net_minor) == ("paid", 2, net)
    assert [kind for kind, _ in world.events(batch.id)] == ["settlement.paid"]
    postings = world.ledger.list_postings(world.chart.merchant_balance(shop.id, "USD"))
    assert [(p.direction, p.amount_minor) for p in postings if p.layer == "posted"] == [
        ("credit", net), ("debit", net)]
    assert world.pending_settlement(shop) == 0
    with world.engine.connect() as connection:
        payouts = connection.execute(
            select(func.count()).select_from(sandbox_requests)
            .where(sandbox_requests.c.operation == "payout")
        ).scalar()
    assert payouts == 1
    assert check_ledger(world.engine).clean
