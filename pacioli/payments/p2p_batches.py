"""The plain P2P payment's two record statements, run for many concurrent payments at once.

A payment through the API reads once before its ledger transfer (is a record already
under this Idempotency-Key?) and writes once after it (the succeeded record and its
event). Run one by one, each was a round trip on a worker thread of its own, and with a
few threads the payments queued for them: at 32 concurrent clients a payment waited
about 47 ms for a thread against 7 ms of work. Here each statement serves every payment
waiting for it, in one round trip: the ledger's `Batcher` gathers them (a batch holds
what arrived while the last one ran, so under light load a batch is one payment and
adds no delay), and answers each event loop once per batch.

Only the common outcome is batched: no record under the key before, the record inserted
after. A payment that meets an existing record takes `P2P`'s one-by-one path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.service.batcher import Batcher, LoopAnswer

# Payments per statement: enough for every payment a busy process has in flight.
BATCH_SIZE_MAX = 512

# Which of the (payer, key) pairs have a record; one index probe each (the unique
# constraint on payer_user_id, idempotency_key).
_RECORDED_SQL = """
SELECT k.i FROM unnest(%(payers)s::uuid[], %(keys)s::text[]) WITH ORDINALITY AS k(payer, key, i)
JOIN p2p_payments p ON p.payer_user_id = k.payer AND p.idempotency_key = k.key
"""

# The succeeded records that do not exist yet, and a `p2p_payment.succeeded` event for each
# one inserted (the columns `append_event` writes, the payload `_announce_payment` makes);
# returns the ids inserted. ON CONFLICT DO NOTHING also skips a second copy of one record
# within the batch (two requests with one key, both answered by the ledger).
_INSERT_ANNOUNCED_SQL = """
WITH inserted AS (
    INSERT INTO p2p_payments (id, payer_user_id, payee_user_id, currency, amount_minor, note,
                              status, transfer_id, idempotency_key, request_hash, created_at,
                              completed_at)
    SELECT r.id, r.payer, r.payee, r.currency, r.amount, r.note, 'succeeded', r.transfer_id,
           r.key, r.request_hash, r.created_at, r.created_at
    FROM unnest(%(ids)s::uuid[], %(payers)s::uuid[], %(payees)s::uuid[], %(currencies)s::text[],
                %(amounts)s::numeric[], %(notes)s::text[], %(transfer_ids)s::uuid[],
                %(keys)s::text[], %(request_hashes)s::text[], %(created_at)s::timestamptz[])
         AS r(id, payer, payee, currency, amount, note, transfer_id, key, request_hash,
              created_at)
    ON CONFLICT DO NOTHING
    RETURNING id
), announced AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload,
                        created_at)
    SELECT e.event_id, 'p2p_payment.succeeded', 'p2p_payment', inserted.id::text,
           e.payload::jsonb, %(announced_at)s
    FROM inserted JOIN unnest(%(ids)s::uuid[], %(event_ids)s::uuid[], %(payloads)s::text[])
                       AS e(id, event_id, payload) USING (id)
)
SELECT id FROM inserted
"""


class PaymentRecordBatches:
    """`recorded` and `insert_succeeded` for asyncio callers, batched across payments.

    Each kind of statement has its own thread (the ledger's `Batcher`, with no accounts
    to keep apart), so one payment's read runs while another's write commits.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._probes: Batcher[tuple[UUID, str], bool] = Batcher(
            self._probe_batch, footprint=_nothing, batch_size_max=BATCH_SIZE_MAX,
            name="p2p-record-probe",
        )
        self._inserts: Batcher[dict, bool] = Batcher(
            self._insert_batch, footprint=_nothing, batch_size_max=BATCH_SIZE_MAX,
            name="p2p-record-insert",
        )

    async def recorded(self, payer_user_id: UUID, idempotency_key: str) -> bool:
        """Whether a record exists under the payer's key (committed before this call)."""
        return await _submitted(self._probes, (payer_user_id, idempotency_key))

    async def insert_succeeded(self, values: dict) -> bool:
        """Insert the succeeded record `values` (as `_succeeded_values` makes them) with its
        event, committed, unless a record with its id exists; whether it was inserted."""
        return await _submitted(self._inserts, values)

    def close(self) -> None:
        """Finish what is waiting, then stop the threads."""
        self._probes.close()
        self._inserts.close()

    def _probe_batch(
        self, items: Sequence[tuple[UUID, str]], answer_previous: Callable[[], None] | None
    ) -> list[bool]:
        if answer_previous is not None:
            answer_previous()
        with self._engine.connect() as connection:
            found = {i for (i,) in connection.exec_driver_sql(_RECORDED_SQL, {
                "payers": [payer for payer, _ in items], "keys": [key for _, key in items],
            })}
            connection.rollback()
        return [i in found for i in range(1, len(items) + 1)]

    def _insert_batch(
        self, items: Sequence[dict], answer_previous: Callable[[], None] | None
    ) -> list[bool]:
        if answer_previous is not None:
            answer_previous()
        with self._engine.connect() as connection:
            inserted = {row_id for (row_id,) in connection.execution_options(
                isolation_level="AUTOCOMMIT"
            ).exec_driver_sql(_INSERT_ANNOUNCED_SQL, _insert_params(items))}
        return [values["id"] in inserted for values in items]


def _nothing(_item) -> tuple:
    return ()


async def _submitted(batcher: Batcher, item):
    answer = LoopAnswer(asyncio.get_running_loop())
    batcher.submit(item, answer)
    return await answer.future


def _insert_params(items: Sequence[dict]) -> dict:
    return {
        "ids": [v["id"] for v in items],
        "payers": [v["payer_user_id"] for v in items],
        "payees": [v["payee_user_id"] for v in items],
        "currencies": [v["currency"] for v in items],
        "amounts": [v["amount_minor"] for v in items],
        "notes": [v["note"] for v in items],
        "transfer_ids": [v["transfer_id"] for v in items],
        "keys": [v["idempotency_key"] for v in items],
        "request_hashes": [v["request_hash"] for v in items],
        "created_at": [v["created_at"] for v in items],
        "event_ids": [uuid7() for _ in items],
        "payloads": [json.dumps(succeeded_event_payload(v)) for v in items],
        "announced_at": datetime.now(UTC),
    }


def succeeded_event_payload(values: dict) -> dict:
    """The `p2p_payment.succeeded` event's payload for a succeeded record's values."""
    return {
        "payment_id": str(values["id"]), "payer_user_id": str(values["payer_user_id"]),
        "payee_user_id": str(values["payee_user_id"]),
        "amount_minor": str(values["amount_minor"]), "currency": values["currency"],
        "note": values["note"],
    }
