"""Idempotency keys against the real database: replays return the first result and
write nothing; a key reused for another request is refused; keys belong to a client."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text

from pacioli.ledger import Asset, Ledger, TransferSpec, Written, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.service import metrics


@pytest.fixture
def client_ledger(engine):
    """A ledger whose writes use a client id of this test alone, so its keys can be counted."""
    with Ledger(engine, client_id=f"test-{uuid4().hex}") as ledger:
        yield ledger


def open_account(ledger, new_key, normal_side="credit", **options) -> UUID:
    return ledger.open_account(
        asset_code="USD", normal_side=normal_side, idempotency_key=new_key(), **options
    ).value.id


def funded(ledger, new_key, amount_minor=1000) -> tuple[UUID, UUID]:
    bank = open_account(ledger, new_key, "debit")
    wallet = open_account(ledger, new_key, debits_must_not_exceed_credits=True)
    ledger.transfer([debit(bank, amount_minor), credit(wallet, amount_minor)],
                    idempotency_key=new_key())
    return bank, wallet


def written_rows(ledger: Ledger, account_ids, aggregate_ids=()) -> dict[str, object]:
    """Everything stored about these accounts: rows per table and their balances."""
    account_texts = [str(i) for i in account_ids]
    aggregate_texts = account_texts + [str(i) for i in aggregate_ids]
    with ledger.engine.connect() as connection:
        def count(sql: str, **params) -> int:
            return connection.execute(text(sql), params).scalar_one()

        return {
            "postings": count(
                "SELECT count(*) FROM postings WHERE account_id::text = ANY(:ids)",
                ids=account_texts,
            ),
            "transfers": count(
                "SELECT count(DISTINCT transfer_id) FROM postings"
                " WHERE account_id::text = ANY(:ids)",
                ids=account_texts,
            ),
            "outbox": count(
                "SELECT count(*) FROM outbox o WHERE o.aggregate_id = ANY(:aggregates)"
                " OR EXISTS (SELECT 1 FROM jsonb_array_elements("
                "   coalesce(o.payload->'postings', '[]'::jsonb)) p"
                "   WHERE p->>'account_id' = ANY(:ids))",
                aggregates=aggregate_texts, ids=account_texts,
            ),
            "keys": count(
                "SELECT count(*) FROM idempotency_keys WHERE client_id = :client",
                client=ledger.client_id,
            ),
            "accounts": [ledger.get_account(i) for i in account_ids],
        }


@dataclass
class Scenario:
    """One write command, ready to run under a given key, and the accounts it touches."""

    run: Callable[[str], Written]
    account_ids: list[UUID]
    identity: Callable[[Written], object]


def transfer_ids(written: Written) -> object:
    value = written.value
    return [t.id for t in value] if isinstance(value, list) else value.id


def scenario_open_account(ledger, new_key) -> Scenario:
    tag = uuid4().hex

    def run(key):
        return ledger.open_account(
            asset_code="EUR", normal_side="debit", metadata={"tag": tag}, idempotency_key=key
        )

    return Scenario(run, [], lambda w: w.value.id)


def scenario_account_change(change: str, *, frozen_first: bool):
    def make(ledger, new_key) -> Scenario:
        account = open_account(ledger, new_key)
        if frozen_first:
            ledger.freeze_account(account, idempotency_key=new_key())
        return Scenario(
            lambda key: getattr(ledger, change)(account, idempotency_key=key),
            [account],
            lambda w: (w.value.id, w.value.status),
        )

    return make


def scenario_transfer(pending: bool):
    def make(ledger, new_key) -> Scenario:
        bank, wallet = funded(ledger, new_key)
        legs = [debit(wallet, 10), credit(bank, 10)]
        return Scenario(
            lambda key: ledger.transfer(legs, pending=pending, metadata={"n": 1},
                                        idempotency_key=key),
            [bank, wallet], transfer_ids,
        )

    return make


def scenario_transfer_batch(ledger, new_key) -> Scenario:
    bank, wallet = funded(ledger, new_key)
    specs = [TransferSpec((debit(wallet, n), credit(bank, n))) for n in (1, 2, 3)]
    return Scenario(
        lambda key: ledger.transfer_batch(specs, idempotency_key=key), [bank, wallet],
        transfer_ids,
    )


def scenario_resolution(resolve: str, **options):
    def make(ledger, new_key) -> Scenario:
        bank, wallet = funded(ledger, new_key)
        if resolve == "reverse_transfer":
            target = ledger.transfer([debit(wallet, 10), credit(bank, 10)],
                                     idempotency_key=new_key()).value
        else:
            target = ledger.transfer([debit(wallet, 10), credit(bank, 10)], pending=True,
                                     idempotency_key=new_key()).value
        return Scenario(
            lambda key: getattr(ledger, resolve)(target.id, idempotency_key=key, **options),
            [bank, wallet], transfer_ids,
        )

    return make


def scenario_create_asset(ledger, new_key) -> Scenario:
    code = "R" + uuid4().hex[:10].upper()
    return Scenario(lambda key: ledger.create_asset(code, 4, idempotency_key=key), [],
                    lambda w: w.value)


SCENARIOS = {
    "open_account": scenario_open_account,
    "freeze_account": scenario_account_change("freeze_account", frozen_first=False),
    "unfreeze_account": scenario_account_change("unfreeze_account", frozen_first=True),
    "close_account": scenario_account_change("close_account", frozen_first=False),
    "transfer": scenario_transfer(pending=False),
    "pending transfer": scenario_transfer(pending=True),
    "transfer_batch": scenario_transfer_batch,
    "post_pending": scenario_resolution("post_pending"),
    "post_pending in part": scenario_resolution("post_pending", amount_minor=4),
    "void_pending": scenario_resolution("void_pending"),
    "reverse_transfer": scenario_resolution("reverse_transfer"),
    "create_asset": scenario_create_asset,
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_replay_returns_the_first_result_and_writes_nothing_more(client_ledger, new_key, name):
    scenario = SCENARIOS[name](client_ledger, new_key)
    key = new_key()
    first = scenario.run(key)
    aggregates = aggregate_ids(first.value)
    stored = written_rows(client_ledger, scenario.account_ids, aggregates)
    assert stored["outbox"] >= 1 and stored["keys"] >= 1
    replay = scenario.run(key)
    assert not first.replayed and replay.replayed
    assert scenario.identity(replay) == scenario.identity(first)
    assert written_rows(client_ledger, scenario.account_ids, aggregates) == stored


def aggregate_ids(value) -> list[str]:
    """The outbox aggregate ids of what a write returned."""
    if isinstance(value, list):
        return [str(t.id) for t in value]
    if isinstance(value, Asset):
        return [value.code]
    return [str(value.id)]


def test_a_replayed_transfer_reads_back_equal_to_the_first(client_ledger, new_key):
    bank, wallet = funded(client_ledger, new_key)
    key = new_key()
    legs = [debit(wallet, 25), credit(bank, 25)]
    first = client_ledger.transfer(legs, metadata={"order": "o-1"}, idempotency_key=key)
    replay = client_ledger.transfer(legs, metadata={"order": "o-1"}, idempotency_key=key)
    assert replay.value == first.value
    assert client_ledger.get_account(wallet).balance_minor == 975


def test_a_replay_of_an_open_account_opens_one_account(client_ledger, new_key):
    tag, key = uuid4().hex, new_key()
    for _ in range(3):
        client_ledger.open_account(asset_code="USD", normal_side="debit", metadata={"tag": tag},
                                   idempotency_key=key)
    assert len(client_ledger.list_accounts(metadata={"tag": tag})) == 1


def test_a_key_reused_for_another_request_is_refused_and_writes_nothing(client_ledger, new_key):
    bank, wallet = funded(client_ledger, new_key)
    key = new_key()
    client_ledger.transfer([debit(wallet, 10), credit(bank, 10)], idempotency_key=key)
    stored = written_rows(client_ledger, [bank, wallet])
    different_requests = [
        lambda: client_ledger.transfer([debit(wallet, 11), credit(bank, 11)], idempotency_key=key),
        lambda: client_ledger.transfer([debit(wallet, 10), credit(bank, 10)],
                                       metadata={"x": "y"}, idempotency_key=key),
        lambda: client_ledger.transfer([debit(wallet, 10), credit(bank, 10)], pending=True,
                                       idempotency_key=key),
        lambda: client_ledger.freeze_account(wallet, idempotency_key=key),
        lambda: client_ledger.open_account(asset_code="USD", normal_side="debit",
                                           idempotency_key=key),
    ]
    for request in different_requests:
        with pytest.raises(e.IdempotencyKeyReused) as refused:
            request()
        assert refused.value.code == "idempotency_key_reused"
    assert written_rows(client_ledger, [bank, wallet]) == stored


def test_keys_are_scoped_per_client(engine, new_key):
    with Ledger(engine, client_id=f"a-{uuid4().hex}") as alice, \
            Ledger(engine, client_id=f"b-{uuid4().hex}") as bob:
        bank, wallet = funded(alice, new_key)
        key = new_key()
        legs = [debit(wallet, 10), credit(bank, 10)]
        first = alice.transfer(legs, idempotency_key=key)
        second = bob.transfer(legs, idempotency_key=key)
        third = alice.transfer(legs, idempotency_key=key, client_id="explicit-" + bob.client_id)
        assert not (first.replayed or second.replayed or third.replayed)
        assert len({first.value.id, second.value.id, third.value.id}) == 3
        # The per-call client id replays within its own scope.
        again = bob.transfer(legs, idempotency_key=key, client_id="explicit-" + bob.client_id)
        assert again.replayed and again.value.id == third.value.id
        assert alice.get_account(wallet).balance_minor == 1000 - 30


def test_a_refused_command_does_not_use_up_its_key(client_ledger, new_key):
    bank, wallet = funded(client_ledger, new_key, 100)
    key = new_key()
    legs = [debit(wallet, 150), credit(bank, 150)]
    with pytest.raises(e.InsufficientFunds):
        client_ledger.transfer(legs, idempotency_key=key)
    client_ledger.transfer([debit(bank, 50), credit(wallet, 50)], idempotency_key=new_key())
    written = client_ledger.transfer(legs, idempotency_key=key)
    assert not written.replayed
    assert client_ledger.get_account(wallet).balance_minor == 0


@pytest.mark.parametrize("key", ["", "k" * 256, None, 42])
def test_an_idempotency_key_is_a_string_of_1_to_255_characters(client_ledger, new_key, key):
    bank, wallet = funded(client_ledger, new_key)
    with pytest.raises(e.InvalidCommand):
        client_ledger.transfer([debit(wallet, 1), credit(bank, 1)], idempotency_key=key)
    longest = client_ledger.transfer([debit(wallet, 1), credit(bank, 1)],
                                     idempotency_key="k" * 254 + new_key()[:1])
    assert not longest.replayed
    assert client_ledger.get_account(wallet).balance_minor == 999


def test_concurrent_requests_with_one_key_post_once(engine, new_key):
    with Ledger(engine) as setup:
        bank, wallet = funded(setup, new_key, 1000)
    key = new_key()
    results, errors = [], []
    # Without batching every request runs in its own transaction, so they really race.
    with Ledger(engine, batching=False, client_id=f"race-{uuid4().hex}") as racing:
        barrier = threading.Barrier(8)

        def request():
            barrier.wait()
            try:
                results.append(racing.transfer([debit(wallet, 7), credit(bank, 7)],
                                               idempotency_key=key))
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(w.replayed for w in results) == [False] + [True] * 7
        assert len({w.value.id for w in results}) == 1
        assert racing.get_account(wallet).balance_minor == 993
        assert written_rows(racing, [wallet])["keys"] == 1


def _unique_violation_retries() -> float:
    return metrics.retries_total.labels("unique_violation")._value.get()


def test_a_replay_found_by_the_key_index_alone_still_replays_and_turns_the_lookup_on(
    engine, new_key
):
    # A new ledger has met no stored key, so its batches skip the key lookup: a replay
    # is caught by the primary key of idempotency_keys, and the batch's retry finds it.
    with Ledger(engine, client_id=f"test-{uuid4().hex}") as ledger:
        bank, wallet = funded(ledger, new_key)
        key = new_key()
        legs = [debit(wallet, 10), credit(bank, 10)]
        first = ledger.transfer(legs, idempotency_key=key)
        before = written_rows(ledger, [bank, wallet])
        retries = _unique_violation_retries()

        replay = ledger.transfer(legs, idempotency_key=key)

        assert replay.replayed and replay.value == first.value
        assert _unique_violation_retries() == retries + 1
        # Having met a stored key, the next batches look theirs up before writing.
        with pytest.raises(e.IdempotencyKeyReused):
            ledger.transfer([debit(wallet, 11), credit(bank, 11)], idempotency_key=key)
        again = ledger.transfer(legs, idempotency_key=key)
        assert again.replayed and again.value == first.value
        assert _unique_violation_retries() == retries + 1
        assert written_rows(ledger, [bank, wallet]) == before
        wallet_balances = ledger.get_account(wallet).balances
        assert wallet_balances.credits_posted - wallet_balances.debits_posted == 990


def test_a_reused_key_is_refused_when_the_key_index_finds_it(engine, new_key):
    with Ledger(engine, client_id=f"test-{uuid4().hex}") as ledger:
        bank, wallet = funded(ledger, new_key)
        key = new_key()
        ledger.transfer([debit(wallet, 10), credit(bank, 10)], idempotency_key=key)
        before = written_rows(ledger, [bank, wallet])

        with pytest.raises(e.IdempotencyKeyReused):
            ledger.transfer([debit(wallet, 20), credit(bank, 20)], idempotency_key=key)

        assert written_rows(ledger, [bank, wallet]) == before


def test_a_replay_that_would_now_be_refused_replays_when_the_key_index_is_not_reached(
    engine, new_key
):
    # Freezing twice: applied again, the replay is refused (already frozen) and writes
    # nothing, so no key violation reveals it; its stored key, read after the commit,
    # must still answer it as the first request's result.
    with Ledger(engine, client_id=f"test-{uuid4().hex}") as ledger:
        _, wallet = funded(ledger, new_key)
        key = new_key()
        first = ledger.freeze_account(wallet, idempotency_key=key)
        assert not first.replayed

        replay = ledger.freeze_account(wallet, idempotency_key=key)

        assert replay.replayed and replay.value.id == wallet
        with pytest.raises(e.InvalidAccountState):  # a fresh key: a true refusal
            ledger.freeze_account(wallet, idempotency_key=new_key())
