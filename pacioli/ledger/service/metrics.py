"""Prometheus metrics of the ledger's write path."""

from prometheus_client import Counter, Histogram

commands_total = Counter(
    "pacioli_ledger_commands_total",
    "Ledger commands executed, by command type and outcome (ok, replayed, or an error code).",
    ["command", "outcome"],
)
commits_total = Counter(
    "pacioli_ledger_commits_total", "Database transactions committed by the ledger writer."
)
commit_seconds = Histogram(
    "pacioli_ledger_commit_seconds",
    "Time from opening to committing one ledger database transaction, retries included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
batch_commands = Histogram(
    "pacioli_ledger_batch_commands",
    "Commands carried by one ledger database transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
retries_total = Counter(
    "pacioli_ledger_retries_total",
    "Ledger transactions retried after a transient database failure, by reason.",
    ["reason"],
)
