"""The FastAPI application: `create_app(engine)` wires the ledger, auth, errors and metrics.

`pacioli serve` migrates the database, then runs `uvicorn.run(create_app(engine), ...)`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI
from sqlalchemy import Engine

from pacioli.api.caches import SessionCache, UserDirectory
from pacioli.api.deps import AdminKeyCache, admin_client
from pacioli.api.errors import install_error_handlers
from pacioli.api.observability import RequestObservability
from pacioli.api.routes import (
    accounts,
    assets,
    bills,
    carts,
    catalog,
    commerce_merchants,
    exchange_convert,
    exchange_market,
    exchange_orders,
    exchange_stream,
    funding,
    fx,
    gateways,
    health,
    history,
    merchants,
    notifications,
    offers,
    orders,
    p2p,
    promotions,
    qr,
    settlements,
    transfers,
    users,
    webhooks,
)
from pacioli.api.schemas.money import AssetScales
from pacioli.api.schemas.problems import ProblemPublic
from pacioli.config import get_settings
from pacioli.gc_settings import apply_service_gc_settings
from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import users as users_service
from pacioli.payments.chart import Chart
from pacioli.payments.p2p import P2P

log = logging.getLogger(__name__)

API_VERSION = "0.1.0"
# At start-up, P2P transfers posted this recently without a record get one (a crash
# between the ledger's commit and the record's); older ones are left to the flow check.
P2P_RECOVERY_WINDOW = timedelta(days=1)
# Connections per server process, as `pacioli serve` opens them.
SERVER_POOL_SIZE = 4

# `model` registers the schema; the problem+json entry names the media type actually sent.
_PROBLEM = {
    "model": ProblemPublic,
    "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}
    },
}
PROBLEM_RESPONSES = {
    401: {**_PROBLEM, "description": "No valid credentials (code unauthorized)."},
    404: {**_PROBLEM, "description": "Not found (account_not_found, transfer_not_found)."},
    409: {**_PROBLEM, "description": "Conflict (idempotency_key_reused, state conflicts)."},
    422: {**_PROBLEM, "description": "Invalid or refused (validation_error, invalid_amount, "
          "unknown_asset, insufficient_funds, account_frozen ...)."},
    503: {**_PROBLEM, "description": "The ledger is busy; retry after Retry-After seconds."},
}
IDENTITY_RESPONSES = {
    **PROBLEM_RESPONSES,
    403: {**_PROBLEM, "description": "Known caller, refused action (second_factor_required, "
          "invalid_second_factor, merchant_not_approved)."},
}


def create_app(
    engine: Engine,
    *,
    ledger: Ledger | None = None,
    password_hasher: PasswordHasher | None = None,
) -> FastAPI:
    """The HTTP API over `ledger`, or over a Ledger of its own on `engine`.

    A ledger passed in belongs to the caller, who closes it; without one, the app opens
    a Ledger at startup and closes it at shutdown (so run it with its lifespan).
    `password_hasher` defaults to argon2id with the configured parameters (tests pass a
    cheaper one).
    """
    app = FastAPI(
        title="Pacioli",
        version=API_VERSION,
        description="A double-entry ledger: assets, accounts, transfers, holds and balances. "
        "Amounts are decimal strings in major units with a currency.",
        # The funding flows' callback handlers are registered while the app runs.
        lifespan=orders.with_order_handlers(
            funding.with_funding_handlers(_lifespan(engine, owned=ledger is None))),
    )
    app.state.engine = engine
    app.state.ledger = ledger
    app.state.asset_scales = AssetScales(lambda: app.state.ledger.list_assets())
    app.state.admin_keys = AdminKeyCache(engine)
    app.state.sessions = SessionCache(engine)
    app.state.directory = UserDirectory(engine)
    app.state.password_hasher = password_hasher or users_service.password_hasher()
    install_error_handlers(app)
    app.add_middleware(RequestObservability)
    app.include_router(health.router)
    # Routes are matched in the order they are included, one pattern after another: the
    # busiest (P2P payments) first, which spared a tenth of the server's time per payment.
    for flow in (p2p, fx, qr):
        app.include_router(flow.router, responses=PROBLEM_RESPONSES)
    # Gateway callbacks prove themselves with a signature, not a key.
    app.include_router(gateways.router)
    for resource in (assets, accounts, transfers):
        app.include_router(
            resource.router, dependencies=[Depends(admin_client)], responses=PROBLEM_RESPONSES
        )
    for resource in (users, merchants):
        app.include_router(resource.router, responses=IDENTITY_RESPONSES)
    app.include_router(bills.router, responses=PROBLEM_RESPONSES)
    app.include_router(funding.router, responses=IDENTITY_RESPONSES)
    app.include_router(offers.router, responses=PROBLEM_RESPONSES)
    app.include_router(history.router, responses=PROBLEM_RESPONSES)
    app.include_router(settlements.router, responses=PROBLEM_RESPONSES)
    app.include_router(notifications.router, responses=PROBLEM_RESPONSES)
    app.include_router(webhooks.router, responses=IDENTITY_RESPONSES)
    for commerce in (catalog, commerce_merchants, promotions, carts):
        app.include_router(commerce.router, responses=IDENTITY_RESPONSES)
    # Public market data (no credentials) and the stream; convert acts as a user.
    for exchange_resource in (exchange_market, exchange_stream, exchange_convert,
                              exchange_orders):
        app.include_router(exchange_resource.router, responses=PROBLEM_RESPONSES)
    app.include_router(orders.router, responses=IDENTITY_RESPONSES)
    return app


def app_from_environment() -> FastAPI:
    """`create_app` on PACIOLI_DATABASE_URL, already migrated, for several server processes:
    `uvicorn --factory --workers N pacioli.api.app:app_from_environment`. Each process has
    its own engine and Ledger (its own writer); the ledger's advisory locks and
    SERIALIZABLE transactions keep writers in different processes correct. The exchange
    runs in the first process that starts it; the others answer its routes with
    `exchange_not_running`, so serve the exchange from one process of its own.
    """
    url = get_settings().database_url
    if not url:
        raise RuntimeError("set PACIOLI_DATABASE_URL (several processes need one server)")
    app = create_app(make_engine(url, pool_size=SERVER_POOL_SIZE))
    apply_service_gc_settings()
    return app


def _lifespan(engine: Engine, *, owned: bool):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not owned:
            try:
                yield
            finally:
                _close_p2p(app)
            return
        app.state.ledger = Ledger(
            engine,
            batch_size_max=get_settings().ledger_batch_size_max,
            writers=get_settings().ledger_writers,
        )
        # The exchange runs where the ledger is the app's own (`pacioli serve`); None when
        # another process already runs its markets (one writer per market).
        app.state.exchange = exchange_orders.open_exchange(engine, app.state.ledger)
        recovery = threading.Thread(
            target=_record_unrecorded_payments, args=(engine, app.state.ledger),
            name="p2p-recovery", daemon=True,
        )
        recovery.start()
        try:
            yield
        finally:
            recovery.join()
            _close_p2p(app)
            if app.state.exchange is not None:
                app.state.exchange.close()
                app.state.exchange = None
            app.state.ledger.close()
            app.state.ledger = None

    return lifespan


def _close_p2p(app: FastAPI) -> None:
    """Stop the threads of the P2P service the routes opened (`routes.p2p.get_p2p`)."""
    p2p = getattr(app.state, "p2p", None)
    if p2p is not None:
        p2p.close()
        app.state.p2p = None


def _record_unrecorded_payments(engine: Engine, ledger: Ledger) -> None:
    """Record the P2P payments a crash left posted but unrecorded (docs/payments.md)."""
    since = datetime.now(UTC) - P2P_RECOVERY_WINDOW
    try:
        recorded = P2P(engine, ledger, Chart(engine, ledger)).record_unrecorded_payments(
            since=since
        )
    except Exception:
        log.exception("recording unrecorded P2P payments failed; the flow check reports them")
        return
    if recorded:
        log.warning("recorded P2P payments a crash left unrecorded",
                    extra={"recorded": recorded})
