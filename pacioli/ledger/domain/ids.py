"""Time-ordered ids (UUIDv7, RFC 9562), generated in the process that writes.

Ids made here sort by creation time, so transfers list in time order by primary key, and
no database sequence becomes a point of contention (which matters for distributed SQL).
Python 3.14 adds `uuid.uuid7`; until then, this is the RFC's layout: 48 bits of Unix
milliseconds, 12 bits used as a counter within a millisecond, 62 random bits.
"""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bits are drawn from the OS 4 KiB at a time: `os.urandom` is a system call that
# lets go of the GIL, and a writer making three ids per transfer then waited for the GIL
# behind other threads three times per transfer (a fifth of its time settling fills).
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def _forget_pool() -> None:
    """A forked child must not reuse its parent's random bits."""
    global _pool, _pool_at
    _pool, _pool_at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def uuid7() -> UUID:
    """A new UUIDv7, strictly increasing within this process."""
    global _last_ms, _counter, _pool, _pool_at
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms, _counter = now_ms, 0
        else:
            _counter += 1
            if _counter > 0xFFF:  # the counter ran out: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
        if _pool_at == len(_pool):
            _pool, _pool_at = os.urandom(_POOL_BYTES), 0
        random_bits = int.from_bytes(_pool[_pool_at:_pool_at + 8]) & (2**62 - 1)
        _pool_at += 8
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | random_bits
    return UUID(int=value)
