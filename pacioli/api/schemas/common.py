"""Shapes shared by every resource: the request base, metadata and the list page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
R = TypeVar("R")

Metadata = dict[str, Any]


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, so a misspelt flag is not ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `starting_after` to get the next."""

    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="The last item's cursor, when there are more items."
    )

    @classmethod
    def of(
        cls,
        rows: Sequence[R],
        limit: int,
        to_public: Callable[[R], T],
        cursor_of: Callable[[R], Any],
    ) -> Page[T]:
        """Build a page from `limit + 1` rows: the extra row only says there are more."""
        has_more = len(rows) > limit
        shown = rows[:limit]
        return cls(
            data=[to_public(row) for row in shown],
            has_more=has_more,
            next_cursor=str(cursor_of(shown[-1])) if has_more and shown else None,
        )
