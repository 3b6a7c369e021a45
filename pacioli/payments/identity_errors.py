"""Expected rejections of users, sessions, second factors and merchants, each with a code.

They subclass the ledger's families where the HTTP status fits (InvalidCommand 422,
NotFound 404, Conflict 409) and add two of their own: AuthenticationFailed (401, the
caller did not prove who they are) and Forbidden (403, the caller is known but may not
do this). The API maps the families to statuses in one table (pacioli/api/errors.py).
"""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, DomainError, InvalidCommand, NotFound


class AuthenticationFailed(DomainError):
    """The caller did not prove who they are."""

    code = "unauthorized"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


# Malformed sign-ups and settlement accounts.


class InvalidEmail(InvalidCommand):
    """An email address has one @ with a local part and a dotted domain, in 3-254 characters."""

    code = "invalid_email"


class InvalidPhone(InvalidCommand):
    """A phone number is in E.164 form: a + and 8 to 15 digits, the first not 0."""

    code = "invalid_phone"


class ContactRequired(InvalidCommand):
    """A user signs up with an email address, a phone number or both."""

    code = "email_or_phone_required"


class WeakPassword(InvalidCommand):
    """A password has at least 10 characters (and at most 1024)."""

    code = "weak_password"


class InvalidBankAccount(InvalidCommand):
    """A settlement account is a valid IBAN, or an account number with a routing number."""

    code = "invalid_bank_account"


# Failed authentication.


class InvalidCredentials(AuthenticationFailed):
    """The email or phone and password do not match an account."""

    code = "invalid_credentials"


# Refused actions.


class SecondFactorRequired(Forbidden):
    """This action needs a one-time code from an enrolled authenticator (Pacioli-OTP)."""

    code = "second_factor_required"


class InvalidSecondFactor(Forbidden):
    """The one-time code is wrong, expired or was already used."""

    code = "invalid_second_factor"


class MerchantNotApproved(Forbidden):
    """The merchant is not approved (pending review or rejected), so its keys do not work."""

    code = "merchant_not_approved"


# Missing things.


class UserNotFound(NotFound):
    """No user has this id (or it is not the caller's to see)."""

    code = "user_not_found"


class MerchantNotFound(NotFound):
    """No merchant has this id (or it is not the caller's to see)."""

    code = "merchant_not_found"


class SettlementAccountNotFound(NotFound):
    """The merchant has no settlement account on file."""

    code = "settlement_account_not_found"


class ApiKeyNotFound(NotFound):
    """The merchant has no API key with this id."""

    code = "api_key_not_found"


# Conflicts with existing state.


class EmailTaken(Conflict):
    """Another user signed up with this email address."""

    code = "email_taken"


class PhoneTaken(Conflict):
    """Another user signed up with this phone number."""

    code = "phone_taken"


class TotpAlreadyEnrolled(Conflict):
    """The user already has a confirmed authenticator."""

    code = "totp_already_enrolled"


class TotpNotEnrolled(Conflict):
    """The user has no authenticator waiting for confirmation."""

    code = "totp_not_enrolled"


class MerchantAlreadyReviewed(Conflict):
    """The merchant was already approved or rejected."""

    code = "merchant_already_reviewed"
