"""/v1/me/cards, /v1/me/bank-accounts, /v1/me/topups and /v1/me/withdrawals: a user's
linked instruments, wallet top-ups and withdrawals. Every route acts as the user whose
token it carries; another user's instrument, top-up or withdrawal is a 404.

The gateway is `app.state.gateway` (the sandbox processor unless a test or a deployment
sets another before the app starts). While the app runs, its lifespan registers the
callback handlers that settle top-ups and withdrawals (`with_funding_handlers`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from pacioli.api.auth import CurrentUser, IdempotencyKeyHeader, OneTimeCode
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.funding import (
    BankAccountCreate,
    BankAccountPublic,
    CardCreate,
    CardPublic,
    TopUpCreate,
    TopUpPublic,
    TopUpStatus,
    WithdrawalCreate,
    WithdrawalPublic,
    WithdrawalStatus,
)
from pacioli.gateways.base import PaymentGateway
from pacioli.gateways.sandbox import SandboxGateway
from pacioli.payments.chart import Chart
from pacioli.payments.instruments import BANK_ACCOUNT, CARD, Instruments
from pacioli.payments.settlement import register_settlement_handler
from pacioli.payments.topups import TopUps, register_funding_handlers
from pacioli.payments.withdrawals import Withdrawals

router = APIRouter(tags=["top-ups and withdrawals"])

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def app_gateway(app: FastAPI) -> PaymentGateway:
    """The app's gateway: `app.state.gateway`, the sandbox processor if none was set."""
    gateway = getattr(app.state, "gateway", None)
    if gateway is None:
        gateway = app.state.gateway = SandboxGateway(app.state.engine)
    return gateway


def app_chart(app: FastAPI) -> Chart:
    """The app's chart (shared with the other flows' routes through `app.state.chart`)."""
    chart = getattr(app.state, "chart", None)
    if chart is None:
        chart = app.state.chart = Chart(app.state.engine, app.state.ledger)
    return chart


def with_funding_handlers(inner: Lifespan) -> Lifespan:
    """`inner`, plus the top-up, withdrawal and settlement payout callback handlers while
    the app runs.

    Registered after `inner` opened the ledger, removed at shutdown, so a stopped app
    (tests start many) leaves no handler behind.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            flows = (app.state.engine, app.state.ledger, app_chart(app), app_gateway(app))
            removers = [register_funding_handlers(*flows), register_settlement_handler(*flows)]
            try:
                yield
            finally:
                for unregister in removers:
                    unregister()

    return lifespan


def get_instruments(request: Request) -> Instruments:
    return Instruments(request.app.state.engine, app_gateway(request.app))


def get_topups(request: Request) -> TopUps:
    app = request.app
    return TopUps(app.state.engine, app.state.ledger, app_chart(app), app_gateway(app))


def get_withdrawals(request: Request) -> Withdrawals:
    app = request.app
    return Withdrawals(app.state.engine, app.state.ledger, app_chart(app), app_gateway(app))


InstrumentsDep = Annotated[Instruments, Depends(get_instruments)]
TopUpsDep = Annotated[TopUps, Depends(get_topups)]
WithdrawalsDep = Annotated[Withdrawals, Depends(get_withdrawals)]


def _answered(answer, response: Response):
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer.value


# Cards.


@router.post(f"{API_PREFIX}/me/cards", status_code=201, summary="Link a card")
def link_card(
    body: CardCreate, user: CurrentUser, key: IdempotencyKeyHeader,
    instruments: InstrumentsDep, response: Response,
) -> CardPublic:
    """The number and CVC go to the gateway, which returns a token; only the token, brand,
    last four digits and expiry are kept."""
    answer = instruments.link_card(
        user_id=user.id, number=body.number.get_secret_value(), exp_month=body.exp_month,
        exp_year=body.exp_year, cvc=body.cvc.get_secret_value(), idempotency_key=key,
    )
    return CardPublic.of(_answered(answer, response))


@router.get(f"{API_PREFIX}/me/cards", summary="The caller's linked cards")
def list_cards(
    user: CurrentUser, instruments: InstrumentsDep, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[CardPublic]:
    rows = instruments.list(user.id, CARD, limit=limit + 1, starting_after=starting_after)
    return Page.of(rows, limit, CardPublic.of, lambda c: c.id)


@router.get(f"{API_PREFIX}/me/cards/{{card_id}}", summary="One of the caller's cards")
def get_card(card_id: UUID, user: CurrentUser, instruments: InstrumentsDep) -> CardPublic:
    return CardPublic.of(instruments.get(user.id, card_id, CARD))


@router.delete(f"{API_PREFIX}/me/cards/{{card_id}}", summary="Remove a linked card")
def remove_card(card_id: UUID, user: CurrentUser, instruments: InstrumentsDep) -> CardPublic:
    return CardPublic.of(instruments.remove(user.id, card_id, CARD))


# Bank accounts.


@router.post(
    f"{API_PREFIX}/me/bank-accounts", status_code=201,
    summary="Link a bank account (a payout destination)",
)
def link_bank_account(
    body: BankAccountCreate, user: CurrentUser, key: IdempotencyKeyHeader,
    instruments: InstrumentsDep, response: Response, otp: OneTimeCode = None,
) -> BankAccountPublic:
    """A user with an authenticator enrolled must send its code (Pacioli-OTP)."""
    answer = instruments.link_bank_account(
        user_id=user.id, account_number=body.account_number.get_secret_value(),
        routing_number=body.routing_number, idempotency_key=key, one_time_code=otp,
    )
    return BankAccountPublic.of(_answered(answer, response))


@router.get(f"{API_PREFIX}/me/bank-accounts", summary="The caller's linked bank accounts")
def list_bank_accounts(
    user: CurrentUser, instruments: InstrumentsDep, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[BankAccountPublic]:
    rows = instruments.list(user.id, BANK_ACCOUNT, limit=limit + 1,
                            starting_after=starting_after)
    return Page.of(rows, limit, BankAccountPublic.of, lambda a: a.id)


@router.get(
    f"{API_PREFIX}/me/bank-accounts/{{bank_account_id}}", summary="One linked bank account"
)
def get_bank_account(
    bank_account_id: UUID, user: CurrentUser, instruments: InstrumentsDep
) -> BankAccountPublic:
    return BankAccountPublic.of(instruments.get(user.id, bank_account_id, BANK_ACCOUNT))


@router.delete(
    f"{API_PREFIX}/me/bank-accounts/{{bank_account_id}}", summary="Remove a linked bank account"
)
def remove_bank_account(
    bank_account_id: UUID, user: CurrentUser, instruments: InstrumentsDep
) -> BankAccountPublic:
    return BankAccountPublic.of(instruments.remove(user.id, bank_account_id, BANK_ACCOUNT))


# Top-ups.


@router.post(f"{API_PREFIX}/me/topups", status_code=201, summary="Fund the wallet")
def create_topup(
    body: TopUpCreate, user: CurrentUser, key: IdempotencyKeyHeader, topups: TopUpsDep,
    scales: ScalesDep, response: Response,
) -> TopUpPublic:
    """Answers with the top-up: `succeeded` when the processor confirmed at once, `failed`
    when it declined, otherwise `pending` until its callback or a refresh."""
    kind, source_id = (CARD, body.card_id) if body.card_id else (BANK_ACCOUNT,
                                                                 body.bank_account_id)
    answer = topups.create(
        user_id=user.id, instrument_id=source_id, source_kind=kind, currency=body.currency,
        amount_minor=scales.to_minor(body.amount, body.currency), idempotency_key=key,
    )
    return TopUpPublic.of(_answered(answer, response), scales)


@router.get(f"{API_PREFIX}/me/topups", summary="The caller's top-ups, newest first")
def list_topups(
    user: CurrentUser, topups: TopUpsDep, scales: ScalesDep,
    status: Annotated[TopUpStatus | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[TopUpPublic]:
    rows = topups.list(user.id, status=status, limit=limit + 1, starting_after=starting_after)
    return Page.of(rows, limit, lambda t: TopUpPublic.of(t, scales), lambda t: t.id)


@router.get(f"{API_PREFIX}/me/topups/{{topup_id}}", summary="One of the caller's top-ups")
def get_topup(
    topup_id: UUID, user: CurrentUser, topups: TopUpsDep, scales: ScalesDep
) -> TopUpPublic:
    return TopUpPublic.of(topups.get(user.id, topup_id), scales)


@router.post(
    f"{API_PREFIX}/me/topups/{{topup_id}}/refresh",
    summary="Ask the processor how a top-up stands and settle it",
)
def refresh_topup(
    topup_id: UUID, user: CurrentUser, topups: TopUpsDep, scales: ScalesDep
) -> TopUpPublic:
    """Idempotent by itself (no Idempotency-Key): a settled top-up is returned as it is."""
    return TopUpPublic.of(topups.refresh(user.id, topup_id), scales)


# Withdrawals.


@router.post(
    f"{API_PREFIX}/me/withdrawals", status_code=201,
    summary="Withdraw to a linked bank account",
)
def create_withdrawal(
    body: WithdrawalCreate, user: CurrentUser, key: IdempotencyKeyHeader,
    withdrawals: WithdrawalsDep, scales: ScalesDep, response: Response,
    otp: OneTimeCode = None,
) -> WithdrawalPublic:
    """Above the second-factor threshold the authenticator's code is needed (Pacioli-OTP)."""
    answer = withdrawals.create(
        user_id=user.id, bank_account_id=body.bank_account_id, currency=body.currency,
        amount_minor=scales.to_minor(body.amount, body.currency), idempotency_key=key,
        one_time_code=otp,
    )
    return WithdrawalPublic.of(_answered(answer, response), scales)


@router.get(f"{API_PREFIX}/me/withdrawals", summary="The caller's withdrawals, newest first")
def list_withdrawals(
    user: CurrentUser, withdrawals: WithdrawalsDep, scales: ScalesDep,
    status: Annotated[WithdrawalStatus | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[WithdrawalPublic]:
    rows = withdrawals.list(user.id, status=status, limit=limit + 1,
                            starting_after=starting_after)
    return Page.of(rows, limit, lambda w: WithdrawalPublic.of(w, scales), lambda w: w.id)


@router.get(
    f"{API_PREFIX}/me/withdrawals/{{withdrawal_id}}", summary="One of the caller's withdrawals"
)
def get_withdrawal(
    withdrawal_id: UUID, user: CurrentUser, withdrawals: WithdrawalsDep, scales: ScalesDep
) -> WithdrawalPublic:
    return WithdrawalPublic.of(withdrawals.get(user.id, withdrawal_id), scales)


@router.post(
    f"{API_PREFIX}/me/withdrawals/{{withdrawal_id}}/refresh",
    summary="Ask the processor how a payout stands and settle the withdrawal",
)
def refresh_withdrawal(
    withdrawal_id: UUID, user: CurrentUser, withdrawals: WithdrawalsDep, scales: ScalesDep
) -> WithdrawalPublic:
    return WithdrawalPublic.of(withdrawals.refresh(user.id, withdrawal_id), scales)

