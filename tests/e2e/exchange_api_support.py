"""What the market-data, stream and convert tests share: an app over an exchange of its own.

Each test gets a market no other test uses (two fresh assets, like BTC and USD in their
grids), an `Exchange` on it wired to the payments chart as `pacioli serve` wires it,
and an app over that exchange, so its book starts empty. Orders are placed through the
exchange service, as the orders API places them. `serve` runs the app in a real
uvicorn server on a thread, for the stream (a TestClient does not stream an endless
response).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from pacioli.api.app import create_app
from pacioli.ledger import Ledger, credit, debit
from pacioli.matching.market import Market
from pacioli.matching.service import Exchange
from pacioli.matching.views import OrderRequest, OrderView
from pacioli.payments.chart import Chart, Purpose
from tests.e2e.conftest import E2E_PASSWORD_HASHER
from tests.integration.exchange_support import SCOPE, chart_accounts, new_market

SETTLE_WAIT_S = 5.0  # writes answer once their fills are settled (tests read wallets after)


@dataclass
class ExchangeVenue:
    """An app over an exchange on one fresh market, and ways to act on it."""

    engine: Engine
    ledger: Ledger
    chart: Chart
    market: Market
    exchange: Exchange
    app: FastAPI
    client: TestClient

    @property
    def prefix(self) -> str:
        return f"/v1/exchange/markets/{self.market.symbol}"

    def fund(self, user_id: str | UUID, amount_minor: int, asset: str) -> None:
        """Credit a user's wallet from the platform's bank account (a deposit)."""
        self.ledger.transfer(
            [debit(self.chart.platform(Purpose.BANK_SETTLEMENT, asset), amount_minor),
             credit(self.chart.wallet(UUID(str(user_id)), asset), amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    def place(self, user_id: str | UUID, side: str, *, size: int, price: int | None = None,
              type: str = "limit", **fields: Any) -> OrderView:
        request = OrderRequest(market=self.market.symbol, side=side, type=type, size=size,
                               price=price, **fields)
        return self.exchange.place_order(
            UUID(str(user_id)), request, idempotency_key=uuid.uuid4().hex
        ).value

    def cancel(self, user_id: str | UUID, order_id: UUID) -> OrderView:
        return self.exchange.cancel_order(
            UUID(str(user_id)), order_id, idempotency_key=uuid.uuid4().hex
        ).value

    def amend(self, user_id: str | UUID, order_id: UUID, **fields: int) -> OrderView:
        return self.exchange.amend_order(
            UUID(str(user_id)), order_id, idempotency_key=uuid.uuid4().hex, **fields
        ).value

    def balance(self, user_id: str | UUID, asset: str) -> tuple[int, int]:
        """(balance, available) of the user's wallet in minor units."""
        account = self.ledger.get_account(self.chart.wallet(UUID(str(user_id)), asset))
        return account.balance_minor, account.available_minor

    def fee_balance(self) -> int:
        return self.ledger.get_account(
            self.chart.platform(Purpose.FEE_REVENUE, self.market.quote, SCOPE)
        ).balance_minor

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(f"{self.prefix}{path}", params=params or None)


@contextmanager
def open_venue(engine: Engine, ledger: Ledger, **market_options: Any) -> Iterator[ExchangeVenue]:
    chart = Chart(engine, ledger)
    market = new_market(ledger, **market_options)
    exchange = Exchange(engine, ledger, chart_accounts(chart), [market],
                        settle_wait_s=SETTLE_WAIT_S)
    exchange.start()
    try:
        app = create_app(engine, ledger=ledger, password_hasher=E2E_PASSWORD_HASHER)
        app.state.exchange = exchange
        with TestClient(app) as client:
            yield ExchangeVenue(engine, ledger, chart, market, exchange, app, client)
    finally:
        exchange.close()


# A real server, for the stream.


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` (its state already set up) in uvicorn on a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Event:
    name: str
    id: int | None
    data: dict[str, Any]


class EventReader:
    """Reads a server-sent event stream on a thread into a queue (the test reads the queue)."""

    def __init__(self, url: str, params: dict[str, Any] | None = None) -> None:
        # A heartbeat a second wakes the reading thread, so close() ends it within one.
        params = {"heartbeat_s": 1, **(params or {})}
        self._closing = threading.Event()
        self.events: queue.Queue[Event | BaseException | None] = queue.Queue()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self._opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, params), daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the stream did not answer"

    def _read(self, url: str, params: dict[str, Any] | None) -> None:
        try:
            with self._client.stream("GET", url, params=params) as response:
                self.status = response.status_code
                self.headers = response.headers
                self._opened.set()
                if response.status_code != 200:
                    response.read()
                    self.body = response.text
                    return
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._closing.is_set():
                        return
                    if line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                        continue
                    if fields:
                        self.events.put(Event(
                            fields.get("event", "message"),
                            int(fields["id"]) if "id" in fields else None,
                            json.loads(fields.get("data", "null")),
                        ))
                        fields = {}
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.StreamClosed):
            pass  # closed by close() or by the server
        except BaseException as error:  # surfaced to the test by next()
            self.events.put(error)
        finally:
            self._opened.set()
            self.events.put(None)  # the end of the stream

    def next(self, timeout_s: float = 10.0) -> Event | None:
        """The next event, or None once the stream has ended."""
        item = self.events.get(timeout=timeout_s)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)
        self._client.close()
