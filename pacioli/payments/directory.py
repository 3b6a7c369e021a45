"""Who is who, for showing payments: users' display names, read in one query."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import Engine, select

from pacioli.payments.users import users


def display_names(engine: Engine, user_ids: Iterable[UUID]) -> dict[UUID, str | None]:
    """Each known user's display name (None when they set none); unknown ids are absent."""
    wanted = set(user_ids)
    if not wanted:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(users.c.id, users.c.display_name).where(users.c.id.in_(wanted))
        )
        return {row.id: row.display_name for row in rows}
