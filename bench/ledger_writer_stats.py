"""What the ledger's writer did during a workload, read from its Prometheus metrics.

The figures explain a throughput: how many commands shared each database transaction
(the batching that keeps hot accounts fast), how long a transaction took, and how often
one was retried. They are read by metric name from the process's default registry, so
a renamed metric shows as unknown rather than breaking the bench.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY

_TRANSACTIONS = "pacioli_ledger_batch_commands_count"
_COMMANDS = "pacioli_ledger_batch_commands_sum"
_COMMIT_SECONDS = "pacioli_ledger_commit_seconds_sum"
_COMMITS = "pacioli_ledger_commit_seconds_count"
_RETRIES = "pacioli_ledger_retries_total"


@dataclass(frozen=True)
class WriterStats:
    transactions: float | None
    commands: float | None
    commit_seconds: float | None
    commits: float | None
    retries: float | None

    @property
    def commands_per_transaction(self) -> float | None:
        return _divide(self.commands, self.transactions)

    @property
    def transaction_ms(self) -> float | None:
        """Mean time from opening to committing a transaction, retries included."""
        seconds = _divide(self.commit_seconds, self.commits)
        return None if seconds is None else seconds * 1000

    def since(self, earlier: WriterStats) -> WriterStats:
        return WriterStats(
            *(
                None if now is None or then is None else now - then
                for now, then in zip(_values(self), _values(earlier), strict=True)
            )
        )


def snapshot() -> WriterStats:
    return WriterStats(
        transactions=REGISTRY.get_sample_value(_TRANSACTIONS),
        commands=REGISTRY.get_sample_value(_COMMANDS),
        commit_seconds=REGISTRY.get_sample_value(_COMMIT_SECONDS),
        commits=REGISTRY.get_sample_value(_COMMITS),
        retries=_sum_over_labels(_RETRIES),
    )


def _sum_over_labels(sample_name: str) -> float | None:
    """The sum of a labelled counter's samples; None when no such metric is registered."""
    family = sample_name.removesuffix("_total")
    for metric in REGISTRY.collect():
        if metric.name == family:
            # A labelled counter has no samples until its first increment: that sums to 0.
            return sum(sample.value for sample in metric.samples if sample.name == sample_name)
    return None


def _values(stats: WriterStats) -> tuple[float | None, ...]:
    return (
        stats.transactions, stats.commands, stats.commit_seconds, stats.commits, stats.retries
    )


def _divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
