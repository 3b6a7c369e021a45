"""The ledger's write commands, and the fingerprint that idempotency keys are checked against.

Every change to the ledger is one of these commands, submitted with a client id and an
idempotency key. A command is a frozen value: two submissions are "the same request"
exactly when their fingerprints are equal.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pacioli.ledger.domain.model import AccountFlags, Direction, Leg, TransferSpec


@dataclass(frozen=True, slots=True)
class CreateAsset:
    code: str
    scale: int


@dataclass(frozen=True, slots=True)
class OpenAccount:
    asset_code: str
    normal_side: Direction
    flags: AccountFlags = AccountFlags()
    limit_minor: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FreezeAccount:
    account_id: UUID


@dataclass(frozen=True, slots=True)
class UnfreezeAccount:
    account_id: UUID


@dataclass(frozen=True, slots=True)
class CloseAccount:
    account_id: UUID


@dataclass(frozen=True, slots=True)
class CreateTransfers:
    """One transfer, or a linked batch of them that commits all together or not at all."""

    transfers: tuple[TransferSpec, ...]


@dataclass(frozen=True, slots=True)
class PostPending:
    pending_id: UUID
    amount_minor: int | None = None  # None posts the full pending amount
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoidPending:
    pending_id: UUID
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LinkedBatch:
    """Resolve holds and create transfers in one step: all of it commits, or none does.

    Each item is a new transfer (`TransferSpec`) or the resolution of an existing hold
    (`PostPending`, `VoidPending`), applied in order: a fill that consumes part of an
    order's hold and re-holds what the order may still spend is one such batch.
    """

    items: tuple[TransferSpec | PostPending | VoidPending, ...]


@dataclass(frozen=True, slots=True)
class ExpirePending:
    pending_id: UUID


@dataclass(frozen=True, slots=True)
class ReverseTransfer:
    transfer_id: UUID
    metadata: dict[str, Any] = field(default_factory=dict)


Command = (
    CreateAsset
    | OpenAccount
    | FreezeAccount
    | UnfreezeAccount
    | CloseAccount
    | CreateTransfers
    | LinkedBatch
    | PostPending
    | VoidPending
    | ExpirePending
    | ReverseTransfer
)


@dataclass(frozen=True, slots=True)
class Submission:
    """A command as submitted: who sent it and under which idempotency key."""

    command: Command
    client_id: str
    idempotency_key: str
    request_hash: bytes

    @classmethod
    def of(cls, command: Command, *, client_id: str, idempotency_key: str) -> Submission:
        return cls(command, client_id, idempotency_key, fingerprint(command))


def fingerprint(command: Command) -> bytes:
    """SHA-256 of the command's canonical JSON, its type name included."""
    text = _create_transfers_json(command) if type(command) is CreateTransfers else None
    if text is None:
        body = {"type": type(command).__name__, "fields": _canonical(command)}
        text = _CANONICAL_JSON.encode(body)
    return hashlib.sha256(text.encode()).digest()


def _create_transfers_json(command: CreateTransfers) -> str | None:
    """The canonical JSON of a CreateTransfers, written directly; None if any value is not
    of the plain types this expects (the general path then writes it).

    Every transfer request is fingerprinted, and the general path (a dict per value, then
    a key-sorting encoder) cost ~12 us per two-leg transfer; this costs ~3. It must give
    the general path's text to the byte, or stored keys would stop matching their
    replays: `tests/unit/test_fingerprint.py` checks both on generated requests.
    Keys appear in sorted order, as `sort_keys` writes them.
    """
    transfers = []
    for spec in command.transfers:
        if type(spec) is not TransferSpec or type(spec.pending) is not bool:
            return None
        legs = []
        for leg in spec.legs:
            if (
                type(leg) is not Leg or type(leg.account_id) is not UUID
                or type(leg.amount_minor) is not int or type(leg.direction) is not Direction
            ):
                return None
            asset_code = leg.asset_code
            if asset_code is None:
                asset_json = "null"
            elif type(asset_code) is str:
                asset_json = _json_string(asset_code)
            else:
                return None
            legs.append(
                f'{{"account_id":"{leg.account_id}","amount_minor":{leg.amount_minor},'
                f'"asset_code":{asset_json},"direction":{_json_string(leg.direction.value)}}}'
            )
        expires_at, timeout_seconds = spec.expires_at, spec.timeout_seconds
        if expires_at is None:
            expires_json = "null"
        elif type(expires_at) is datetime:
            expires_json = _json_string(expires_at.isoformat())
        else:
            return None
        if timeout_seconds is not None and type(timeout_seconds) is not int:
            return None
        transfer_id = spec.id
        if transfer_id is None:
            id_json = ""  # left out, as the general path leaves it out (see _canonical)
        elif type(transfer_id) is UUID:
            id_json = f'"id":"{transfer_id}",'
        else:
            return None
        metadata_json = _CANONICAL_JSON.encode(_canonical(spec.metadata))
        transfers.append(
            f'{{"expires_at":{expires_json},{id_json}"legs":[{",".join(legs)}],'
            f'"metadata":{metadata_json},"pending":{"true" if spec.pending else "false"},'
            f'"timeout_seconds":{"null" if timeout_seconds is None else timeout_seconds}}}'
        )
    return f'{{"fields":{{"transfers":[{",".join(transfers)}]}},"type":"CreateTransfers"}}'


_json_string = json.encoder.encode_basestring  # what ensure_ascii=False writes for a str


# default=repr: a value that is not JSON must still hash (the state machine then refuses
# it as invalid_metadata, rather than the fingerprint crashing first). One encoder for
# every call: `json.dumps` with options builds a new one each time.
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
)


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}
# Fields added after requests were first stored: left out of the canonical form while
# unset, so a request that does not use them hashes as it did before they existed.
_LEFT_OUT_WHEN_NONE: dict[type, tuple[str, ...]] = {TransferSpec: ("id",)}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass type (cached: fingerprints are on the write path)."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(
            cls
        ) else None
        _FIELD_NAMES[cls] = names
        return names


def _canonical(value: Any) -> Any:
    kind = type(value)
    # Python's json writes ints of any size exactly, and only this process reads the text
    # (it is hashed), so ints stay ints: an int and a look-alike string must differ.
    if kind is str or kind is bool or value is None or kind is float or kind is int:
        return value
    names = _field_names(kind)
    if names is not None:
        fields = {name: _canonical(getattr(value, name)) for name in names}
        for name in _LEFT_OUT_WHEN_NONE.get(kind, ()):
            if fields[name] is None:
                del fields[name]
        return fields
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
