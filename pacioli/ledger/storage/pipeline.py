"""A psycopg pipeline that reports the error that broke it, not the one that follows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection
from psycopg import errors as pg_errors


@contextmanager
def pipeline(driver_connection: Connection) -> Iterator[None]:
    """Send what the block executes in one pipeline (one round trip).

    When a statement fails, psycopg raises its error (a serialization failure, say) and
    then, closing the pipeline, a second "pipeline aborted" error for the statements
    queued behind it, which it logs as a warning. This raises the first, real error
    (the one the retry loop must see) and drops the second.
    """
    failure: pg_errors.Error | None = None
    try:
        with driver_connection.pipeline():
            try:
                yield
            except pg_errors.Error as error:
                failure = error
    except pg_errors.PipelineAborted:
        if failure is None:
            raise
    if failure is not None:
        raise failure
