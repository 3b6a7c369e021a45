"""`pacioli reconcile ledger`'s flow checks and time limits: every payment flow run for
real leaves no break, and each break planted behind the flows' backs (a record changed by
SQL, a transfer under a flow's key with no record, a hold past its deadline, an event
never sent) is found, alone, under the right check and subject."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, text

from pacioli.cli.main import app
from pacioli.config import get_settings
from pacioli.gateways.fx import SandboxFxRates
from pacioli.gateways.sandbox import magic
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.outbox import append_event
from pacioli.ledger.service.reconcile import LedgerReport, TimeLimits, check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.ledger.storage.invariants import CHECKS, OVERDUE_CHECKS
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.fx import InternationalTransfers
from pacioli.payments.offers import PLATFORM_FUNDER, OfferRule
from pacioli.payments.p2p import P2P
from pacioli.payments.settlement import register_settlement_handler
from pacioli.payments.topups import register_funding_handlers
from pacioli.reconciliation.flows import FLOW_CHECKS, flow_checks
from tests.integration import test_bill_payments as bills_world
from tests.integration import test_offers as offers_world
from tests.integration import test_settlement as settlement_world
from tests.integration import test_topups as funding_world
from tests.integration.test_cli import runner, use_database
from tests.integration.test_withdrawals import Payouts

DAY = settlement_world.DAY


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=10)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(fresh_engine: Engine) -> Iterator[Ledger]:
    with Ledger(fresh_engine) as ledger:
        yield ledger


def reconcile(engine: Engine, **options) -> LedgerReport:
    return check_ledger(engine, more_checks=[flow_checks()], **options)


def breaks_found(engine: Engine) -> set[tuple[str, str]]:
    return {(b.check, b.subject_id) for b in reconcile(engine).breaks}


def details(engine: Engine) -> str:
    return " | ".join(b.detail for b in reconcile(engine).breaks)


def execute(engine: Engine, sql: str, **parameters) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), parameters)


def fund(ledger: Ledger, chart: Chart, user_id: UUID, amount_minor: int,
         currency: str = "USD") -> None:
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


# The flows, run for real.


def p2p_payments(engine: Engine, ledger: Ledger):
    """A succeeded payment and a failed one (the payer had too little)."""
    chart = Chart(engine, ledger)
    p2p = P2P(engine, ledger, chart)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    paid = p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD",
                    amount_minor=20_00, idempotency_key=uuid.uuid4().hex).value
    with pytest.raises(e.InsufficientFunds):
        p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD",
                 amount_minor=90_00, idempotency_key="too-much")
    [failed] = [p for p in p2p.list_payments(alice) if p.status == "failed"]
    return paid, failed


def fx_executions(engine: Engine, ledger: Ledger):
    """An executed quote and one left open."""
    chart = Chart(engine, ledger)
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}
    fx = InternationalTransfers(engine, ledger, chart, SandboxFxRates(),
                                scale_of=scales.__getitem__)
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)
    quotes = [fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                       target_currency="EUR", source_amount_minor=40_00,
                       idempotency_key=uuid.uuid4().hex).value for _ in range(2)]
    executed = fx.execute(user_id=alice, quote_id=quotes[0].id, idempotency_key="x").value
    return executed, quotes[1]


def top_ups(engine: Engine, ledger: Ledger):
    """Succeeded, failed (a voided hold) and pending top-ups."""
    world = funding_world.make_world(engine, ledger)
    register_funding_handlers(engine, ledger, world.chart, world.gateway,
                              registry=world.registry)
    user = uuid.uuid4()
    made = [world.top_up(user, world.card(user, number), 10_00).value
            for number in (magic.CARD_SUCCEEDS, magic.CARD_DECLINED, magic.CARD_ASYNC_SUCCEEDS)]
    assert [t.status for t in made] == ["succeeded", "failed", "pending"]
    return world, made


def withdrawals(engine: Engine, ledger: Ledger):
    """Succeeded, failed and pending withdrawals, and one refused for want of funds."""
    world = funding_world.make_world(engine, ledger)
    register_funding_handlers(engine, ledger, world.chart, world.gateway,
                              registry=world.registry)
    payouts = Payouts(world)
    user = payouts.user(100_00)
    made = [payouts.withdraw(user, world.bank(user, number), 20_00).value
            for number in (magic.BANK_SUCCEEDS, magic.BANK_ACCOUNT_CLOSED, magic.BANK_DELAYED)]
    with pytest.raises(e.InsufficientFunds):
        payouts.withdraw(user, world.bank(user), 90_00)
    world.clock.advance(3)
    for withdrawal in made:
        world.deliver(withdrawal.gateway_reference)
    settled = [payouts.withdrawals.get(user, w.id) for w in made]
    assert [w.status for w in settled] == ["succeeded", "failed", "pending"]
    return settled


def bill_payments(engine: Engine, ledger: Ledger):
    """Succeeded, refunded (a voided hold), pending, and failed (refused hold)."""
    world = bills_world.make_world(engine, ledger)
    user = world.user(1_000_00)
    ref = bills_world.ref
    made = [world.pay(user, "sandbox_power", ref()).value,
            world.pay(user, "sandbox_card", ref("FAIL"), 50_00).value,
            world.pay(user, "sandbox_water", ref("PEND"), 5_00).value]
    with pytest.raises(e.InsufficientFunds):
        world.pay(user, "sandbox_water", ref(), 10_000_00)
    settled = [world.bills.refresh_bill_payment(user, p.id) for p in made]
    assert [p.status for p in settled] == ["succeeded", "refunded", "pending"]
    return settled


def settlements(engine: Engine, ledger: Ledger):
    """QR payments (one partly refunded) settled in a paid batch and a failed one."""
    world = settlement_world.make_world(engine, ledger)
    register_settlement_handler(engine, ledger, world.chart, world.gateway,
                                registry=world.registry)
    paid_shop, failing_shop = world.merchant(), world.merchant(magic.BANK_ACCOUNT_CLOSED)
    payment = world.pay(paid_shop, 30_00, at=DAY + timedelta(hours=1))
    world.pay(paid_shop, 12_34, at=DAY + timedelta(hours=2))
    world.pay(failing_shop, 50_00, at=DAY + timedelta(hours=3))
    refund = world.refunds.refund(merchant_id=paid_shop.id, payment_id=payment.id,
                                  amount_minor=10_00, idempotency_key="half").value
    batches = world.settlement().run_cycle(DAY + timedelta(days=1))
    for batch in batches:
        world.deliver(batch.payout_reference)
    settled = {b.merchant_id: world.settlement().get(b.merchant_id, b.id) for b in batches}
    paid, failed = settled[paid_shop.id], settled[failing_shop.id]
    assert (paid.status, failed.status) == ("paid", "failed")
    return world, payment, refund, paid, failed


def cashbacks(engine: Engine, ledger: Ledger):
    """A funded platform pool paying one cashback, then an unfunded one."""
    world = offers_world.World(engine, ledger, offers_world.Clock())
    world.offers.fund_pool(PLATFORM_FUNDER, currency="USD", amount_minor=1_00,
                           idempotency_key="fund")
    world.offers.create_offer(
        PLATFORM_FUNDER, OfferRule(currency="USD", cashback_bps=1000, cap_minor=1_00),
        idempotency_key="everywhere",
    )
    shop, user = world.merchant(), world.user(100_00)
    payments = [world.pay(user, world.code(shop), 20_00) for _ in range(2)]
    made = [world.offers.cashback_of_payment(p.id) for p in payments]
    assert [c.status for c in made] == ["paid", "unfunded"]
    return made


def test_every_flow_run_for_real_leaves_no_break(fresh_engine, ledger):
    p2p_payments(fresh_engine, ledger)
    fx_executions(fresh_engine, ledger)
    top_ups(fresh_engine, ledger)
    withdrawals(fresh_engine, ledger)
    bill_payments(fresh_engine, ledger)
    settlements(fresh_engine, ledger)
    cashbacks(fresh_engine, ledger)

    report = reconcile(fresh_engine)

    assert report.clean, report.to_dict()
    rows = {c.name: c.rows_checked for c in report.checks}
    assert [c.name for c in report.checks] == (
        [c.name for c in CHECKS] + [flow.name for flow in FLOW_CHECKS])
    assert rows["p2p_payments_match_ledger"] == 2
    assert rows["fx_executions_match_ledger"] == 2
    assert rows["topups_match_ledger"] == 3
    assert rows["withdrawals_match_ledger"] == 4  # the refused one failed at its hold
    assert rows["bill_payments_match_ledger"] == 4
    assert rows["qr_payments_match_ledger"] == 3 + 2
    assert rows["qr_refunds_match_ledger"] == 1
    assert rows["settlement_batches_match_ledger"] == 2
    assert rows["cashbacks_match_ledger"] == 2
    assert rows["promotion_fundings_match_ledger"] == 1


# Planted breaks: P2P.


def test_a_payment_marked_succeeded_without_a_transfer_is_a_break(fresh_engine, ledger):
    _, failed = p2p_payments(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE p2p_payments SET status = 'succeeded' WHERE id = :id",
            id=failed.id)

    assert breaks_found(fresh_engine) == {("p2p_payments_match_ledger", str(failed.id))}
    assert "the record is succeeded but the ledger has no transfer" in details(fresh_engine)


def test_a_payment_whose_amount_disagrees_with_its_transfer_is_a_break(fresh_engine, ledger):
    paid, _ = p2p_payments(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE p2p_payments SET amount_minor = 2100 WHERE id = :id",
            id=paid.id)

    assert breaks_found(fresh_engine) == {("p2p_payments_match_ledger", str(paid.id))}
    detail = details(fresh_engine)
    assert f"debit 2000 wallet user:{paid.payer_user_id} USD" in detail
    assert f"expected [credit 2100 wallet user:{paid.payee_user_id} USD" in detail


def test_a_transfer_under_a_flow_key_without_its_record_is_a_break(fresh_engine, ledger):
    paid, _ = p2p_payments(fresh_engine, ledger)
    chart, ghost = Chart(fresh_engine, ledger), uuid.uuid4()
    ledger.transfer(
        [debit(chart.wallet(paid.payer_user_id, "USD"), 1_00),
         credit(chart.wallet(paid.payee_user_id, "USD"), 1_00)],
        metadata={"flow": "p2p", "payment_id": str(ghost)},
        idempotency_key=f"p2p:{ghost}", client_id=PAYMENTS_CLIENT_ID,
    )

    assert breaks_found(fresh_engine) == {("p2p_payments_match_ledger", str(ghost))}
    assert f"p2p_payments record {ghost}, which does not exist" in details(fresh_engine)


def test_a_transfer_with_flow_metadata_but_no_flow_key_is_a_break(fresh_engine, ledger):
    paid, _ = p2p_payments(fresh_engine, ledger)
    chart = Chart(fresh_engine, ledger)
    stray = ledger.transfer(
        [debit(chart.wallet(paid.payer_user_id, "USD"), 1_00),
         credit(chart.wallet(paid.payee_user_id, "USD"), 1_00)],
        metadata={"flow": "p2p", "payment_id": str(paid.id)},
        idempotency_key="hand-made",
    ).value

    assert breaks_found(fresh_engine) == {("p2p_payments_match_ledger", str(stray.id))}
    assert "no p2p: key names it" in details(fresh_engine)


# Planted breaks: the other flows.


def test_a_top_up_marked_succeeded_while_its_hold_is_open_is_a_break(fresh_engine, ledger):
    _, (_, _, pending) = top_ups(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE topups SET status = 'succeeded' WHERE id = :id",
            id=pending.id)

    assert breaks_found(fresh_engine) == {("topups_match_ledger", str(pending.id))}
    assert f"topup:{pending.id}:post: the record is succeeded but the ledger has no post" in (
        details(fresh_engine))


def test_a_top_up_hold_released_outside_the_flow_is_a_break(fresh_engine, ledger):
    _, (_, _, pending) = top_ups(fresh_engine, ledger)
    voided = ledger.void_pending(pending.hold_transfer_id, idempotency_key="by-hand").value

    assert breaks_found(fresh_engine) == {("topups_match_ledger", str(pending.id))}
    assert (f"hold {pending.hold_transfer_id} was resolved by void_pending transfer"
            f" {voided.id}, which is none of the flow's steps") in details(fresh_engine)


def test_transfers_under_unknown_or_malformed_flow_keys_are_breaks(fresh_engine, ledger):
    world, (succeeded, _, _) = top_ups(fresh_engine, ledger)
    clearing = world.chart.platform(Purpose.PROCESSOR_CLEARING, "USD", scope="sandbox")
    wallet = world.chart.wallet(succeeded.user_id, "USD")
    for key in (f"topup:{succeeded.id}:bonus", "topup:not-a-record-id"):
        ledger.transfer([debit(clearing, 1_00), credit(wallet, 1_00)],
                        idempotency_key=key, client_id=PAYMENTS_CLIENT_ID)

    report = reconcile(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("topups_match_ledger", str(succeeded.id)),
        ("topups_match_ledger", "topup:not-a-record-id"),
    }
    detail = " | ".join(b.detail for b in report.breaks)
    assert "is not a step of the flow" in detail
    assert "is under a topup: key that names no record id" in detail


def test_a_withdrawal_whose_record_is_gone_is_a_break(fresh_engine, ledger):
    succeeded, _, _ = withdrawals(fresh_engine, ledger)
    execute(fresh_engine, "DELETE FROM withdrawals WHERE id = :id", id=succeeded.id)

    report = reconcile(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("withdrawals_match_ledger", str(succeeded.id))}
    assert sorted(b.detail.split(":")[2] for b in report.breaks) == ["hold", "post"]


def test_a_refunded_bill_payment_marked_succeeded_is_a_break(fresh_engine, ledger):
    _, refunded, _ = bill_payments(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE bill_payments SET status = 'succeeded' WHERE id = :id",
            id=refunded.id)

    detail = details(fresh_engine)

    assert breaks_found(fresh_engine) == {("bill_payments_match_ledger", str(refunded.id))}
    assert "no post transfer" in detail
    assert "so no void transfer should exist" in detail


def test_a_qr_payment_whose_fee_disagrees_with_its_transfer_is_a_break(fresh_engine, ledger):
    _, payment, _, _, _ = settlements(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE qr_payments SET fee_minor = fee_minor + 1 WHERE id = :id",
            id=payment.id)

    assert breaks_found(fresh_engine) == {("qr_payments_match_ledger", str(payment.id))}
    assert f"credit {payment.fee_minor + 1} fee_revenue platform: USD" in details(fresh_engine)


def test_a_failed_settlement_batch_marked_paid_is_a_break(fresh_engine, ledger):
    *_, failed = settlements(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE settlement_batches SET status = 'paid' WHERE id = :id",
            id=failed.id)

    detail = details(fresh_engine)

    assert breaks_found(fresh_engine) == {("settlement_batches_match_ledger", str(failed.id))}
    assert "no payout_post transfer" in detail
    assert "so no payout_void transfer should exist" in detail


def test_an_fx_execution_naming_its_transfers_the_wrong_way_round_is_a_break(
    fresh_engine, ledger
):
    executed, _ = fx_executions(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE fx_quotes SET transfer_ids = :swapped WHERE id = :id",
            swapped=f'["{executed.transfer_ids[1]}", "{executed.transfer_ids[0]}"]',
            id=executed.id)

    assert breaks_found(fresh_engine) == {("fx_executions_match_ledger", str(executed.id))}
    assert f"the record names source transfer {executed.transfer_ids[1]}" in (
        details(fresh_engine))


def test_a_paid_cashback_recorded_unfunded_is_a_break(fresh_engine, ledger):
    paid, _ = cashbacks(fresh_engine, ledger)
    execute(fresh_engine, "UPDATE cashbacks SET status = 'unfunded' WHERE id = :id",
            id=paid.id)

    assert breaks_found(fresh_engine) == {("cashbacks_match_ledger", str(paid.id))}
    assert "the record is unfunded, so no transfer should exist" in (
        details(fresh_engine))


def test_flow_breaks_are_listed_up_to_the_cap(fresh_engine, ledger):
    paid, _ = p2p_payments(fresh_engine, ledger)
    chart = Chart(fresh_engine, ledger)
    for _ in range(3):
        ghost = uuid.uuid4()
        ledger.transfer(
            [debit(chart.wallet(paid.payer_user_id, "USD"), 1),
             credit(chart.wallet(paid.payee_user_id, "USD"), 1)],
            metadata={"flow": "p2p", "payment_id": str(ghost)},
            idempotency_key=f"p2p:{ghost}", client_id=PAYMENTS_CLIENT_ID,
        )

    report = check_ledger(fresh_engine, subjects_max=2, more_checks=[flow_checks()])

    assert report.truncated
    assert len(report.breaks) == 2
    assert {b.check for b in report.breaks} == {"p2p_payments_match_ledger"}


# Time limits.

LIMITS = TimeLimits(pending_grace=timedelta(minutes=5), outbox_threshold=timedelta(minutes=5))


def test_a_hold_open_past_its_deadline_and_grace_is_a_break(fresh_engine, ledger):
    past = datetime.now(UTC) - timedelta(hours=1)
    with Ledger(fresh_engine, batching=False, clock=lambda: past) as ledger_in_the_past:
        bank = ledger.open_account(asset_code="USD", normal_side="debit",
                                   idempotency_key="bank").value.id
        shop = ledger.open_account(asset_code="USD", normal_side="credit",
                                   idempotency_key="shop").value.id

        def hold(expires_at: datetime | None) -> UUID:
            return ledger_in_the_past.transfer(
                [debit(bank, 1_00), credit(shop, 1_00)], pending=True, expires_at=expires_at,
                idempotency_key=uuid.uuid4().hex,
            ).value.id

        overdue = hold(past + timedelta(minutes=1))
        hold(datetime.now(UTC) - timedelta(minutes=2))  # past, but within the grace
        hold(None)  # no deadline at all

    # The ledger's own events of these holds bear its clock's time: an hour old.
    limits = TimeLimits(pending_grace=timedelta(minutes=5), outbox_threshold=timedelta(days=1))
    report = check_ledger(fresh_engine, time_limits=limits)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("pending_transfer_past_deadline", str(overdue))}
    rows = {c.name: c.rows_checked for c in report.checks}
    assert rows["pending_transfer_past_deadline"] == 3
    # Once the expiry sweep has run, nothing is overdue.
    ledger.expire_pending()
    assert check_ledger(fresh_engine, time_limits=limits).clean


def test_an_event_left_unsent_past_the_threshold_is_a_break(fresh_engine, ledger):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with fresh_engine.begin() as connection:
        old = append_event(connection, "p2p_payment.succeeded", "p2p_payment", "old", {},
                           now=an_hour_ago)
        append_event(connection, "p2p_payment.succeeded", "p2p_payment", "new", {})
        sent = append_event(connection, "p2p_payment.succeeded", "p2p_payment", "sent", {},
                            now=an_hour_ago)
        connection.execute(text("UPDATE outbox SET sent_at = now() WHERE event_id = :id"),
                           {"id": sent.event_id})

    report = check_ledger(fresh_engine, time_limits=LIMITS)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("outbox_event_unsent", str(old.event_id))}
    assert "p2p_payment.succeeded of p2p_payment old" in report.breaks[0].detail
    assert {c.name: c.rows_checked for c in report.checks}["outbox_event_unsent"] == 2
    # Measured from another instant, the threshold decides.
    later = TimeLimits(LIMITS.pending_grace, LIMITS.outbox_threshold,
                       now=datetime.now(UTC) + timedelta(hours=1))
    assert len(check_ledger(fresh_engine, time_limits=later).breaks) == 2


def test_without_time_limits_the_time_checks_do_not_run(fresh_engine, ledger):
    with fresh_engine.begin() as connection:
        append_event(connection, "p2p_payment.succeeded", "p2p_payment", "old", {},
                     now=datetime.now(UTC) - timedelta(days=1))

    report = check_ledger(fresh_engine)

    assert report.clean
    assert not {c.name for c in report.checks} & {c.name for c in OVERDUE_CHECKS}


# The command.


@pytest.fixture
def cli_database(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point `pacioli` at the fresh schema; afterwards forget the settings and take off
    the log handlers the command put on the root logger."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    use_database(monkeypatch, fresh_database_url)
    yield fresh_database_url
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    get_settings.cache_clear()


def test_reconcile_ledger_reports_ledger_flow_and_time_checks_in_one_table(
    cli_database, fresh_engine, ledger
):
    paid, failed = p2p_payments(fresh_engine, ledger)

    clean = runner.invoke(app, ["reconcile", "ledger"])
    execute(fresh_engine, "UPDATE p2p_payments SET status = 'succeeded' WHERE id = :id",
            id=failed.id)
    broken = runner.invoke(app, ["reconcile", "ledger", "--json"])

    assert clean.exit_code == 0, clean.output
    for name in ("transfer_balanced", "pending_transfer_past_deadline", "outbox_event_unsent",
                 "p2p_payments_match_ledger", "settlement_batches_match_ledger"):
        assert name in clean.stdout
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.stdout)
    assert [(b["check"], b["subject_id"]) for b in report["breaks"]] == [
        ("p2p_payments_match_ledger", str(failed.id))]
    rows = {c["check"]: c["rows_checked"] for c in report["checks"]}
    assert rows["p2p_payments_match_ledger"] == 2


def test_reconcile_ledger_thresholds_come_from_its_options(cli_database, fresh_engine):
    with fresh_engine.begin() as connection:
        event = append_event(connection, "p2p_payment.succeeded", "p2p_payment", "a", {},
                             now=datetime.now(UTC) - timedelta(seconds=60))

    within = runner.invoke(app, ["reconcile", "ledger", "--json"])
    beyond = runner.invoke(app, ["reconcile", "ledger", "--json",
                                 "--outbox-threshold-seconds", "30",
                                 "--pending-grace-seconds", "0"])

    assert within.exit_code == 0, within.output
    assert beyond.exit_code == 1, beyond.output
    assert [(b["check"], b["subject_id"]) for b in json.loads(beyond.stdout)["breaks"]] == [
        ("outbox_event_unsent", str(event.event_id))]
