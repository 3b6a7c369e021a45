"""The idempotency fingerprint of a transfer request: the direct writer of its canonical
JSON must match the general one to the byte, or stored keys would stop matching replays."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from pacioli.ledger.domain import commands as c
from pacioli.ledger.domain.model import Direction, Leg, TransferSpec


def general_json(command: c.Command) -> str:
    body = {"type": type(command).__name__, "fields": c._canonical(command)}
    return c._CANONICAL_JSON.encode(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
legs = st.builds(
    Leg,
    account_id=st.uuids(),
    direction=st.sampled_from(Direction),
    amount_minor=st.integers(min_value=-(10**40), max_value=10**40),
    asset_code=st.none() | st.text(max_size=8),
)
instants = st.datetimes(
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])
)
specs = st.builds(
    TransferSpec,
    legs=st.lists(legs, min_size=0, max_size=4).map(tuple),
    metadata=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    pending=st.booleans(),
    expires_at=st.none() | instants,
    timeout_seconds=st.none() | st.integers(min_value=0, max_value=10**9),
)


@given(st.lists(specs, min_size=1, max_size=3))
def test_a_transfer_request_is_written_as_the_general_path_writes_it(transfers):
    command = c.CreateTransfers(tuple(transfers))
    assert c._create_transfers_json(command) == general_json(command)


def test_values_of_unexpected_types_take_the_general_path():
    odd = [
        TransferSpec((Leg("not-a-uuid", Direction.DEBIT, 5),)),  # type: ignore[arg-type]
        TransferSpec((Leg(UUID(int=1), Direction.DEBIT, 5.0),)),  # type: ignore[arg-type]
        TransferSpec((Leg(UUID(int=1), "debit", 5),)),  # type: ignore[arg-type]
        TransferSpec((Leg(UUID(int=1), Direction.DEBIT, True),)),  # type: ignore[arg-type]
        TransferSpec((), timeout_seconds=1.5),  # type: ignore[arg-type]
        TransferSpec((), pending=1),  # type: ignore[arg-type]
        TransferSpec((), expires_at="tomorrow"),  # type: ignore[arg-type]
    ]
    for spec in odd:
        command = c.CreateTransfers((spec,))
        assert c._create_transfers_json(command) is None
        assert c.fingerprint(command) == hashlib.sha256(general_json(command).encode()).digest()


def test_the_fingerprint_of_a_known_request_does_not_change():
    # Stored keys hold fingerprints made by earlier versions: this one must stay put.
    spec = TransferSpec(
        (
            Leg(UUID(int=1), Direction.DEBIT, 1050, "USD"),
            Leg(UUID(int=2), Direction.CREDIT, 1050),
        ),
        {"order": "A-1", "tags": ["ü", 2]},
        pending=True,
        expires_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        timeout_seconds=None,
    )
    command = c.CreateTransfers((spec,))
    assert c._create_transfers_json(command) == general_json(command) == (
        '{"fields":{"transfers":[{"expires_at":"2026-11-25T12:00:00+00:00","legs":['
        '{"account_id":"00000000-0000-0000-0000-000000000001","amount_minor":1050,'
        '"asset_code":"USD","direction":"debit"},'
        '{"account_id":"00000000-0000-0000-0000-000000000002","amount_minor":1050,'
        '"asset_code":null,"direction":"credit"}],'
        '"metadata":{"order":"A-1","tags":["ü",2]},"pending":true,"timeout_seconds":null}]},'
        '"type":"CreateTransfers"}'
    )
    assert c.fingerprint(command) == hashlib.sha256(general_json(command).encode()).digest()


@given(st.lists(specs, min_size=1, max_size=3), st.lists(st.none() | st.uuids(), min_size=3,
                                                          max_size=3))
def test_a_transfer_request_with_chosen_ids_is_written_as_the_general_path_writes_it(
    transfers, ids
):
    command = c.CreateTransfers(tuple(
        dataclasses.replace(spec, id=transfer_id)
        for spec, transfer_id in zip(transfers, ids, strict=False)
    ))
    assert c._create_transfers_json(command) == general_json(command)


def test_an_unset_chosen_id_leaves_the_fingerprint_as_it_was():
    spec = TransferSpec(
        (Leg(UUID(int=1), Direction.DEBIT, 5), Leg(UUID(int=2), Direction.CREDIT, 5))
    )
    assert '"id"' not in general_json(c.CreateTransfers((spec,)))
    assert '"id"' not in general_json(c.LinkedBatch((spec,)))
    chosen = dataclasses.replace(spec, id=UUID(int=3))
    assert '"id":"00000000-0000-0000-0000-000000000003"' in general_json(c.LinkedBatch((chosen,)))
    assert c.fingerprint(c.CreateTransfers((chosen,))) != c.fingerprint(c.CreateTransfers((spec,)))
