"""Users, sessions and second-factor enrolment on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.payments.users import DISPLAY_NAME_LENGTH_MAX, User


class UserCreate(RequestModel):
    email: StrictStr | None = Field(default=None, description="Stored lower-case.")
    phone: StrictStr | None = Field(
        default=None, description="E.164: a + and 8 to 15 digits, such as +14155550100."
    )
    password: SecretStr = Field(description="At least 10 characters.")
    display_name: StrictStr | None = Field(
        default=None, min_length=1, max_length=DISPLAY_NAME_LENGTH_MAX,
        description="The name other users see as a counterparty.",
    )


class UserPublic(BaseModel):
    id: UUID
    email: str | None
    phone: str | None
    display_name: str | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(id=user.id, email=user.email, phone=user.phone,
                   display_name=user.display_name, created_at=user.created_at)


class MePublic(UserPublic):
    """The caller's own account, with what only they may see."""

    totp_enabled: bool

    @classmethod
    def of_me(cls, user: User, *, totp_enabled: bool) -> MePublic:
        return cls(**UserPublic.of(user).model_dump(), totp_enabled=totp_enabled)


class SessionCreate(RequestModel):
    """Log in with the email address or the phone number signed up with."""

    email: StrictStr | None = None
    phone: StrictStr | None = None
    password: SecretStr


class SessionPublic(BaseModel):
    """A new session: `token` is shown this once; send it as `Authorization: Bearer`."""

    id: UUID
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserPublic


class TotpEnrolmentPublic(BaseModel):
    """The authenticator's secret, shown this once: add it (or the URI, as a QR code) to an
    authenticator app, then confirm with a first code."""

    secret: str
    otpauth_uri: str


class TotpConfirm(RequestModel):
    code: StrictStr = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class TotpPublic(BaseModel):
    enabled: bool
