"""The ledger's expected rejections, each with a stable snake_case `code`.

Three kinds of failure exist (see docs/architecture.md): bugs raise `InvariantBroken`
through `invariant()`; expected rejections are the `DomainError` subclasses below; transient
failures (serialization conflicts that outlast the retry budget) raise `LedgerUnavailable`.
The API maps the four base classes of `DomainError` to HTTP statuses in one table.
"""

from __future__ import annotations


class InvariantBroken(Exception):
    """A condition the code relies on does not hold: a bug, never a user's mistake."""


def invariant(condition: bool, message: str) -> None:
    """Raise InvariantBroken unless `condition`; unlike `assert`, `python -O` keeps it."""
    if not condition:
        raise InvariantBroken(message)


class LedgerUnavailable(Exception):
    """The database kept refusing the write (conflicts or connection loss); try again later."""

    retry_after_s = 1


class DomainError(Exception):
    """An expected rejection of a command; nothing was written."""

    code = "domain_error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or self.code).strip().splitlines()[0]
        super().__init__(self.detail)


class InvalidCommand(DomainError):
    """The command is malformed."""

    code = "validation_error"


class NotFound(DomainError):
    """The thing named does not exist (or is not the caller's to see)."""

    code = "not_found"


class Rejected(DomainError):
    """The command is well formed but the ledger's rules refuse it."""

    code = "rejected"


class Conflict(DomainError):
    """The command conflicts with the state of an existing object or key."""

    code = "conflict"


# Malformed commands.


class InvalidAmount(InvalidCommand):
    """The amount is not a positive integer number of minor units within range."""

    code = "invalid_amount"


class AssetMismatch(InvalidCommand):
    """The amount's asset differs from the account's asset."""

    code = "asset_mismatch"


class TooFewLegs(InvalidCommand):
    """A transfer needs at least one debit leg and one credit leg."""

    code = "too_few_legs"


class TooManyLegs(InvalidCommand):
    """The transfer has more legs than the ledger accepts in one transfer."""

    code = "too_many_legs"


class UnbalancedTransfer(InvalidCommand):
    """The transfer's debits and credits differ for at least one asset."""

    code = "unbalanced_transfer"


class DuplicateAccountInTransfer(InvalidCommand):
    """An account appears in more than one leg of the same transfer."""

    code = "duplicate_account_in_transfer"


class InvalidMetadata(InvalidCommand):
    """Metadata must be a JSON object with string keys, at most 8 KiB serialized."""

    code = "invalid_metadata"


class UnknownAsset(InvalidCommand):
    """No asset has this code (a 422: the code arrives in a request body)."""

    code = "unknown_asset"


class InvalidAsset(InvalidCommand):
    """An asset code is 2-12 upper-case letters or digits, with a scale from 0 to 18."""

    code = "invalid_asset"


class InvalidAccountOptions(InvalidCommand):
    """The account's flags and limit do not make sense together."""

    code = "invalid_account_options"


class InvalidExpiry(InvalidCommand):
    """A pending transfer's deadline must lie in the future."""

    code = "invalid_expiry"


class BatchTooLarge(InvalidCommand):
    """A linked batch holds more transfers than the ledger accepts at once."""

    code = "batch_too_large"


class PartialPostNotSupported(InvalidCommand):
    """Posting part of a pending transfer is only defined for two-leg transfers."""

    code = "partial_post_not_supported"


# Missing things.


class AccountNotFound(NotFound):
    """No account has this id."""

    code = "account_not_found"


class TransferNotFound(NotFound):
    """No transfer has this id."""

    code = "transfer_not_found"


# Business rejections.


class InsufficientFunds(Rejected):
    """The account's debits would exceed its credits (plus its limit)."""

    code = "insufficient_funds"


class ExceedsDebits(Rejected):
    """The account's credits would exceed its debits (plus its limit)."""

    code = "exceeds_debits"


class BalanceOverflow(Rejected):
    """A balance would exceed the largest amount the ledger stores."""

    code = "balance_overflow"


class AccountFrozen(Rejected):
    """The account is frozen: it takes part in no new transfers until unfrozen."""

    code = "account_frozen"


class AccountClosed(Rejected):
    """The account is closed for good."""

    code = "account_closed"


class AccountBalanceNotZero(Rejected):
    """Only an account with zero posted balance and nothing pending can be closed."""

    code = "account_balance_not_zero"


class PendingAmountExceeded(Rejected):
    """The amount to post is larger than the pending transfer holds."""

    code = "pending_amount_exceeded"


class PendingTransferExpired(Rejected):
    """The pending transfer's deadline has passed; it can no longer be posted or voided."""

    code = "pending_transfer_expired"


class PendingTransferNotExpired(Conflict):
    """The pending transfer's deadline has not passed yet, so it cannot be expired."""

    code = "pending_transfer_not_expired"


class TransferNotReversible(Rejected):
    """Only a transfer that moved posted funds can be reversed."""

    code = "transfer_not_reversible"


# Conflicts with existing state.


class IdempotencyKeyReused(Conflict):
    """This idempotency key was already used with a different request."""

    code = "idempotency_key_reused"


class AssetAlreadyExists(Conflict):
    """An asset with this code exists already."""

    code = "asset_already_exists"


class TransferAlreadyExists(Conflict):
    """A transfer with the id the caller chose exists already."""

    code = "transfer_already_exists"


class TransferNotPending(Conflict):
    """The transfer is not a pending transfer."""

    code = "transfer_not_pending"


class PendingTransferAlreadyResolved(Conflict):
    """The pending transfer was already posted, voided or expired."""

    code = "pending_transfer_already_resolved"


class TransferAlreadyReversed(Conflict):
    """The transfer was already reversed."""

    code = "transfer_already_reversed"


class InvalidAccountState(Conflict):
    """The account is not in a state that allows this change."""

    code = "invalid_account_state"
