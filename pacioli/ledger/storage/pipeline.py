"""A psycopg pipeline that reports the error that broke it, not the one that follows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection, Pipeline
from psycopg import errors as pg_errors


@contextmanager
def pipeline(driver_connection: Connection) -> Iterator[Pipeline]:
    """Send what the block executes in one pipeline (one round trip).

    When a statement fails, psycopg raises its error (a serialization failure, say) and
    then, closing the pipeline, a second "pipeline aborted" error for the statements
    queued behind it, which it logs as a warning. This raises the first, real error
    (the one the retry loop must see) and drops the second.
    """
    failure: pg_errors.Error | None = None
    try:
        with driver_connection.pipeline() as psycopg_pipeline:
            try:
                yield psycopg_pipeline
            except pg_errors.Error as error:
                failure = error
    except pg_errors.PipelineAborted:
        if failure is None:
            raise
    if failure is not None:
        raise failure


def end_implicit_transaction(psycopg_pipeline: Pipeline) -> None:
    """Make the statements queued so far one transaction, and those after it another.

    In autocommit mode everything a pipeline sends up to its next Sync message runs as one
    implicit transaction, so a `BEGIN ISOLATION LEVEL …` queued after a read would fail
    ("must be called before any query"). A Sync in between separates them. psycopg's
    public `Pipeline.sync()` also waits for the results (a round trip); its
    `_enqueue_sync()` only queues the Sync, which is all that is needed here. Should a
    future psycopg drop that method, the public one keeps this correct, only slower.
    """
    enqueue_sync = getattr(psycopg_pipeline, "_enqueue_sync", None)
    if enqueue_sync is None:
        psycopg_pipeline.sync()
    else:
        enqueue_sync()
