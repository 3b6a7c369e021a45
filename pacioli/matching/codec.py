"""Book commands to JSON and back: the form they take in the command log.

A logged command must replay to exactly the command that was applied, so every field is
written, enums as their values, and ints stay ints (PostgreSQL's jsonb keeps integers of
any size exactly, and Python's json reads them back as ints).
"""

from __future__ import annotations

from typing import Any

from pacioli.ledger.domain.errors import invariant
from pacioli.matching.orders import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
)

KIND_OF: dict[type, str] = {
    PlaceOrder: "place",
    CancelOrder: "cancel",
    CancelAll: "cancel_all",
    AmendOrder: "amend",
    AdvanceClock: "advance_clock",
}
_CLASS_OF = {kind: cls for cls, kind in KIND_OF.items()}
_ENUMS = {"side": Side, "type": OrderType, "tif": TimeInForce, "stp": SelfTrade}


def kind_of(command: Command) -> str:
    return KIND_OF[type(command)]


def encode(command: Command) -> dict[str, Any]:
    """The command's fields as a JSON object (enums by value)."""
    body: dict[str, Any] = {}
    for name in type(command).__slots__:
        value = getattr(command, name)
        body[name] = value.value if hasattr(value, "value") else value
    return body


def decode(kind: str, body: dict[str, Any]) -> Command:
    """The command a log row holds; the inverse of `encode`."""
    cls = _CLASS_OF[kind]
    fields = {
        name: (_ENUMS[name](value) if name in _ENUMS and value is not None else value)
        for name, value in body.items()
    }
    command = cls(**fields)
    invariant(encode(command) == body, f"a logged {kind} command decodes to itself")
    return command
