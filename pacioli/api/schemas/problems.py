"""The RFC 9457 problem document, for the OpenAPI description of error responses."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ProblemPublic(BaseModel):
    type: str = Field(description="urn:pacioli:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="A stable machine code, such as insufficient_funds.")
    errors: list[ProblemError] | None = Field(
        default=None, description="For validation errors: each field that failed."
    )
