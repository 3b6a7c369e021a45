"""The garbage collector's settings for Pacioli's long-running processes.

CPython's cyclic collector runs a young-generation pass every 700 net allocations of
container objects, and every so often a pass over everything. A ledger transfer
allocates a few dozen (commands, postings, rows, payloads), so under load the defaults
ran a collection every ~20 transfers and spent ~6% of the ledger bench's wall time in
the collector, in pauses of up to 80 ms during which no Python thread runs (the writer
included). Nearly everything Pacioli allocates is freed by reference counting, not by
the collector, so it can run far less often.

`pacioli serve` and `pacioli worker` apply these settings once started; the benches do
too, to measure the ledger as the service runs it.
"""

from __future__ import annotations

import gc

# A young-generation pass every 50,000 allocations, a middle one every 20 of those, a
# full one every 10 middle ones (and only once the survivors have grown by a quarter,
# CPython's own rule). Measured on the ledger bench's uniform workload (8 s): 365-521 ms
# in 1,040-1,146 collections with the defaults, 76-91 ms in 3 with these.
THRESHOLDS = (50_000, 20, 10)


def apply_service_gc_settings() -> None:
    """Collect less often, and leave out of every future pass what start-up allocated
    (modules, settings, the app): it lives as long as the process."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
