"""/v1/me/wallets, /v1/p2p/payments and /v1/p2p/requests: a user's wallets, payments to
other users, and requests for money. Every route acts as the user whose token it carries;
what belongs to someone else is a 404."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from pacioli.api.auth import (
    CurrentUser,
    EngineDep,
    IdempotencyKeyHeader,
    IdempotencyKeyValue,
)
from pacioli.api.caches import UserDirectory
from pacioli.api.deps import (
    PAGE_LIMIT_DEFAULT,
    REPLAYED_HEADER,
    LedgerDep,
    PageLimit,
    ScalesDep,
    checked_idempotency_key,
)
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.money import AssetScales
from pacioli.api.schemas.p2p import (
    MoneyRequestCreate,
    MoneyRequestPublic,
    P2PPaymentCreate,
    P2PPaymentPublic,
    UserRef,
    WalletPublic,
)
from pacioli.payments import errors as pe
from pacioli.payments import users
from pacioli.payments.chart import Chart, ChartKey, OwnerKind, Purpose
from pacioli.payments.directory import display_names
from pacioli.payments.identity_errors import UserNotFound
from pacioli.payments.p2p import P2P, Answer, MoneyRequest, P2PPayment

router = APIRouter(tags=["wallets and P2P"])


async def get_chart(request: Request) -> Chart:
    return chart_of(request)


def chart_of(request: Request) -> Chart:
    """The app's chart (one per app: it remembers the accounts it has found)."""
    chart = getattr(request.app.state, "chart", None)
    if chart is None:
        chart = request.app.state.chart = Chart(request.app.state.engine, request.app.state.ledger)
    return chart


ChartDep = Annotated[Chart, Depends(get_chart)]


async def get_p2p(request: Request) -> P2P:
    return p2p_of(request)


def p2p_of(request: Request) -> P2P:
    """The app's P2P service (one per app and ledger)."""
    p2p = getattr(request.app.state, "p2p", None)
    if p2p is None or p2p.ledger is not request.app.state.ledger:
        p2p = request.app.state.p2p = P2P(request.app.state.engine, request.app.state.ledger,
                                          chart_of(request))
    return p2p


P2PDep = Annotated[P2P, Depends(get_p2p)]


# Wallets.


@router.get(f"{API_PREFIX}/me/wallets", summary="The caller's wallets and their balances")
def list_wallets(
    user: CurrentUser, chart: ChartDep, ledger: LedgerDep, scales: ScalesDep
) -> list[WalletPublic]:
    owned = chart.owned_accounts(OwnerKind.USER, str(user.id))
    return [
        _wallet(currency, account_id, ledger, scales)
        for (purpose, currency), account_id in sorted(owned.items())
        if purpose == Purpose.WALLET
    ]


@router.get(f"{API_PREFIX}/me/wallets/{{currency}}", summary="One of the caller's wallets")
def get_wallet(
    currency: str, user: CurrentUser, chart: ChartDep, ledger: LedgerDep, scales: ScalesDep
) -> WalletPublic:
    """A wallet never used yet shows zero balances (and is not opened by looking)."""
    scales.scale_of(currency)  # an unknown currency is a 422 unknown_asset
    account_id = chart.find(ChartKey(OwnerKind.USER, str(user.id), Purpose.WALLET, currency))
    return _wallet(currency, account_id, ledger, scales)


def _wallet(currency: str, account_id: UUID | None, ledger, scales: AssetScales) -> WalletPublic:
    if account_id is None:
        zero = scales.to_major(0, currency)
        return WalletPublic(currency=currency, account_id=None, available=zero, posted=zero,
                            pending_out=zero, pending_in=zero)
    account = ledger.get_account(account_id)
    b = account.balances
    return WalletPublic(
        currency=currency, account_id=account_id,
        available=scales.to_major(b.available(account.normal_side), currency),
        posted=scales.to_major(b.net_posted(account.normal_side), currency),
        pending_out=scales.to_major(b.debits_pending, currency),
        pending_in=scales.to_major(b.credits_pending, currency),
    )


# Payments.


@router.post(
    f"{API_PREFIX}/p2p/payments", status_code=201, response_model=P2PPaymentPublic,
    summary="Send money to a user",
)
async def send_payment(
    user: CurrentUser, body: P2PPaymentCreate, request: Request,
    idempotency_key: IdempotencyKeyValue = None,
) -> Response:
    """The busiest write, kept lean. It is an asyncio route: the ledger transfer and the
    record's statements are awaited (`P2P.send_async`), and the session, the payee and the
    display names come from the app's caches when they can, so a payment holds no worker
    thread. The P2P service and the scales are read from the app, and the Idempotency-Key
    checked, here rather than as dependencies (FastAPI's solving of the six a route like
    this declared was a fifth of the server's time per payment), and the answer is
    serialized once, by its model, instead of being validated again as the response
    model."""
    key = checked_idempotency_key(idempotency_key)
    p2p = p2p_of(request)
    scales: AssetScales = request.app.state.asset_scales
    directory: UserDirectory = request.app.state.directory
    payee_id = await resolve_user_async(request, body.to)
    if scales.knows(body.currency):
        amount_minor = scales.to_minor(body.amount, body.currency)
    else:
        amount_minor = await run_in_threadpool(scales.to_minor, body.amount, body.currency)
    answer = await p2p.send_async(
        payer_user_id=user.id, payee_user_id=payee_id, currency=body.currency,
        amount_minor=amount_minor, note=body.note, idempotency_key=key,
    )
    payment = answer.value
    parties = _parties_of_payments([payment])
    names = directory.cached_names(parties)
    if names is None:
        names = await run_in_threadpool(directory.names, parties)
    return Response(
        P2PPaymentPublic.of(payment, user.id, names, scales).model_dump_json(),
        status_code=201, media_type="application/json",
        headers={REPLAYED_HEADER: "true"} if answer.replayed else None,
    )


@router.get(f"{API_PREFIX}/p2p/payments", summary="The caller's payments, sent and received")
def list_payments(
    user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[P2PPaymentPublic]:
    rows = p2p.list_payments(user.id, limit=limit + 1, starting_after=starting_after)
    names = display_names(engine, _parties_of_payments(rows))
    return Page.of(
        rows, limit, lambda p: P2PPaymentPublic.of(p, user.id, names, scales), lambda p: p.id
    )


@router.get(f"{API_PREFIX}/p2p/payments/{{payment_id}}", summary="One of the caller's payments")
def get_payment(
    payment_id: UUID, user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep
) -> P2PPaymentPublic:
    return _payment_public(p2p.get_payment(user.id, payment_id), user.id, engine, scales)


# Money requests.


@router.post(f"{API_PREFIX}/p2p/requests", status_code=201, summary="Ask a user for money")
def create_request(
    body: MoneyRequestCreate, user: CurrentUser, key: IdempotencyKeyHeader, p2p: P2PDep,
    engine: EngineDep, scales: ScalesDep, response: Response,
) -> MoneyRequestPublic:
    payer_id = resolve_user(engine, body.from_)
    answer = p2p.request(
        requester_user_id=user.id, payer_user_id=payer_id, currency=body.currency,
        amount_minor=scales.to_minor(body.amount, body.currency), note=body.note,
        idempotency_key=key,
    )
    return _request_public(_answered(answer, response), user.id, engine, scales)


@router.get(f"{API_PREFIX}/p2p/requests", summary="Requests the caller made or must answer")
def list_requests(
    user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep,
    status: Annotated[Literal["open", "paid", "declined", "cancelled"] | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[MoneyRequestPublic]:
    rows = p2p.list_requests(user.id, status=status, limit=limit + 1,
                             starting_after=starting_after)
    names = display_names(
        engine, {r.requester_user_id for r in rows} | {r.payer_user_id for r in rows}
    )
    return Page.of(
        rows, limit, lambda r: MoneyRequestPublic.of(r, user.id, names, scales), lambda r: r.id
    )


@router.get(f"{API_PREFIX}/p2p/requests/{{request_id}}", summary="One money request")
def get_request(
    request_id: UUID, user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep
) -> MoneyRequestPublic:
    return _request_public(p2p.get_request(user.id, request_id), user.id, engine, scales)


@router.post(
    f"{API_PREFIX}/p2p/requests/{{request_id}}/pay", status_code=201,
    summary="Pay a money request addressed to the caller",
)
def pay_request(
    request_id: UUID, user: CurrentUser, key: IdempotencyKeyHeader, p2p: P2PDep,
    engine: EngineDep, scales: ScalesDep, response: Response,
) -> P2PPaymentPublic:
    answer = p2p.pay_request(payer_user_id=user.id, request_id=request_id, idempotency_key=key)
    return _payment_public(_answered(answer, response), user.id, engine, scales)


@router.post(
    f"{API_PREFIX}/p2p/requests/{{request_id}}/decline",
    summary="Decline a money request addressed to the caller",
)
def decline_request(
    request_id: UUID, user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep
) -> MoneyRequestPublic:
    declined = p2p.decline_request(payer_user_id=user.id, request_id=request_id)
    return _request_public(declined, user.id, engine, scales)


@router.post(
    f"{API_PREFIX}/p2p/requests/{{request_id}}/cancel",
    summary="Cancel a money request the caller made",
)
def cancel_request(
    request_id: UUID, user: CurrentUser, p2p: P2PDep, engine: EngineDep, scales: ScalesDep
) -> MoneyRequestPublic:
    cancelled = p2p.cancel_request(requester_user_id=user.id, request_id=request_id)
    return _request_public(cancelled, user.id, engine, scales)


# Helpers.


def resolve_user(engine: Engine, ref: UserRef) -> UUID:
    """The user a reference names. Raises: RecipientNotFound."""
    try:
        if ref.user_id is not None:
            return users.get_user(engine, ref.user_id).id
        return users.find_user(engine, email=ref.email, phone=ref.phone).id
    except UserNotFound:
        raise pe.RecipientNotFound("no user matches the recipient given") from None


async def resolve_user_async(request: Request, ref: UserRef) -> UUID:
    """`resolve_user`, answered from the app's UserDirectory for a known user id."""
    directory: UserDirectory = request.app.state.directory
    if ref.user_id is None:
        return await run_in_threadpool(resolve_user, request.app.state.engine, ref)
    if directory.known(ref.user_id) or await run_in_threadpool(directory.exists, ref.user_id):
        return ref.user_id
    raise pe.RecipientNotFound("no user matches the recipient given")


def _answered(answer: Answer, response: Response):
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer.value


def _parties_of_payments(payments: list[P2PPayment]) -> set[UUID]:
    return {p.payer_user_id for p in payments} | {p.payee_user_id for p in payments}


def _payment_public(payment: P2PPayment, viewer_id: UUID, engine, scales) -> P2PPaymentPublic:
    names = display_names(engine, _parties_of_payments([payment]))
    return P2PPaymentPublic.of(payment, viewer_id, names, scales)


def _request_public(request: MoneyRequest, viewer_id: UUID, engine, scales) -> MoneyRequestPublic:
    names = display_names(engine, {request.requester_user_id, request.payer_user_id})
    return MoneyRequestPublic.of(request, viewer_id, names, scales)
