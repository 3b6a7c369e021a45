"""A loop that delivers the sandbox's due callbacks, for a worker process or thread.

`pacioli serve` or `pacioli worker` can run it in a thread beside the API:

    stop = threading.Event()
    with httpx.Client(timeout=5) as client:
        run_delivery_loop(SandboxGateway(engine), httpx_sender(client), stop=stop)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from pacioli.gateways.sandbox.delivery import Send
from pacioli.gateways.sandbox.gateway import SandboxGateway

log = logging.getLogger(__name__)


def run_delivery_loop(
    gateway: SandboxGateway, send: Send, *, stop: threading.Event,
    interval_seconds: float = 1.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Deliver due callbacks every `interval_seconds` until `stop` is set; return rounds run.

    A round that fails (the database is unreachable, say) is logged and the loop goes
    on: the callbacks stay queued and the next round tries again.
    """
    rounds = 0
    while not stop.is_set():
        try:
            gateway.deliver_due(clock(), send)
        except Exception as error:  # keep delivering; the queue is durable
            log.warning("sandbox delivery round failed", extra={"error": type(error).__name__})
        rounds += 1
        stop.wait(interval_seconds)
    return rounds
