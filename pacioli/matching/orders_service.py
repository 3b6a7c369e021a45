"""The exchange's order commands: place, amend, cancel, cancel-all, each idempotent.

Each one: replay the answer if the user's Idempotency-Key was used before (for the same
request; another request is `idempotency_key_reused`), else take the market's lock,
build the book command, refuse it if the book would (`book.check`, nothing moves), size
the hold it needs, and hand it to the sequencer (hold, apply, log). Refusals are not
recorded, so a retry after funding the wallet may succeed — as in the ledger.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from pacioli.ledger import DomainError, Written
from pacioli.ledger.domain.ids import uuid7
from pacioli.matching import holds, persistence
from pacioli.matching.errors import InvalidOrder, SizeTooSmall, rejection_error
from pacioli.matching.log_entries import LiveOrder, micros
from pacioli.matching.orders import AmendOrder, CancelAll, CancelOrder, PlaceOrder, Side
from pacioli.matching.results import ORDER_NOT_FOUND
from pacioli.matching.sequencer import KeyAlreadyUsed, MarketRuntime, Submission
from pacioli.matching.service_errors import (
    ExchangeOrderNotFound,
    IdempotencyKeyReusedForOrder,
    OrderNotHoldable,
    OrderNotOpen,
    RequestInProgress,
    UnknownMarket,
)
from pacioli.matching.views import OrderRequest, OrderView, request_hash

if TYPE_CHECKING:
    from pacioli.matching.service import Exchange

# (the answer, the market, the command's seq in its log — None for a replay)
Answer = tuple[Written, str, int | None]


class OrderCommands:
    def __init__(self, exchange: Exchange) -> None:
        self._x = exchange

    # Place.

    def place(self, user_id: UUID, request: OrderRequest, key: str) -> Answer:
        runtime = self._x.runtime(request.market)
        market = runtime.market
        fingerprint = request.request_hash()
        replayed = self._replayed_place(user_id, key, fingerprint)
        if replayed is not None:
            return Written(replayed, True), market.symbol, None
        hold_asset = market.base if request.side == Side.SELL else market.quote
        book_funds = None
        if request.funds is not None:
            book_funds = holds.split_funds(market, request.funds).book_funds
            if book_funds == 0:
                raise SizeTooSmall("the funds do not cover the fee and one minor unit")
        with runtime.lock:
            sequencer = self._x._sequencer
            ts = sequencer.next_ts(runtime)
            command = PlaceOrder(
                ts, runtime.next_order_id, str(user_id), request.side, request.type,
                size=request.size, price=request.price,
                funds=book_funds if request.funds is not None else None,
                stop_price=request.stop_price, tif=request.time_in_force,
                expires_at=None if request.expires_at is None else micros(request.expires_at),
                post_only=request.post_only, stp=request.stp,
            )
            reject = runtime.book.check(command)
            if reject is not None:
                raise rejection_error(reject)
            if not holds.holdable(command):
                raise OrderNotHoldable("a stop buy needs funds (or a price: stop_limit)")
            amount = self._hold_amount(runtime, command, request)
            # Found (or opened, on first use) only for a command the book accepts.
            wallet = self._x._accounts.wallet(user_id, hold_asset)
            clearing = self._x._accounts.clearing(hold_asset)
            order_id = uuid7()
            now = self._x._clock()
            order_row = _order_row(order_id, market.symbol, command, request, hold_asset,
                                   user_id, key, now, fingerprint)
            hold_row = None if amount == 0 else _hold_row(
                order_id, market.symbol, hold_asset, amount, wallet, clearing, runtime.next_seq
            )
            runtime.next_order_id += 1
            try:
                logged = sequencer.commit(runtime, Submission(
                    command, user_id, key, fingerprint, new_order=order_row,
                    new_live=LiveOrder(order_id, user_id, str(command.side), left=amount),
                    hold=hold_row,
                    own_order_id=command.order_id,
                ))
            except KeyAlreadyUsed:
                return Written(self._replayed_place(user_id, key, fingerprint), True), \
                    market.symbol, None
            if command.expires_at is not None:
                heapq.heappush(runtime.expiries, (command.expires_at, command.order_id))
        return Written(self.view(order_id), False), market.symbol, logged.seq

    def place_many(self, symbol: str,
                   entries: Sequence[tuple[UUID, OrderRequest, str]]) -> list[Written | Exception]:
        """Place many limit orders in one market at once (see Exchange.place_orders)."""
        runtime = self._x.runtime(symbol)
        market = runtime.market
        answers: list[Written | Exception | None] = [None] * len(entries)
        hashes = [request.request_hash() for _, request, _ in entries]
        with self._x._engine.connect() as connection:
            used = persistence.keys_used(connection, [(u, k) for u, _, k in entries])
        for index, (user_id, request, key) in enumerate(entries):
            if request.market != symbol:
                answers[index] = UnknownMarket(f"{request.market!r} is not {symbol!r}")
            elif not bulk_placeable(request):
                answers[index] = InvalidOrder(
                    "place_orders takes limit orders that are not post-only or fok")
            elif (user_id, key) in used:
                try:
                    answers[index] = Written(
                        self._replayed_place(user_id, key, hashes[index]), True)
                except DomainError as refused:
                    answers[index] = refused
        accounts = self._x._accounts
        with runtime.lock:
            sequencer = self._x._sequencer
            submissions, positions = [], []
            for index, (user_id, request, key) in enumerate(entries):
                if answers[index] is not None:
                    continue
                command = PlaceOrder(
                    sequencer.next_ts(runtime), runtime.next_order_id, str(user_id),
                    request.side, "limit", size=request.size, price=request.price,
                    tif=request.time_in_force,
                    expires_at=None if request.expires_at is None else micros(request.expires_at),
                    stp=request.stp,
                )
                reject = runtime.book.check(command)
                if reject is not None:
                    answers[index] = rejection_error(reject)
                    continue
                runtime.next_order_id += 1
                asset = market.base if command.side == Side.SELL else market.quote
                amount = holds.place_hold(market, command)
                order_id = uuid7()
                now = self._x._clock()
                submissions.append(Submission(
                    command, user_id, key, hashes[index],
                    new_order=_order_row(order_id, market.symbol, command, request, asset,
                                         user_id, key, now, hashes[index]),
                    new_live=LiveOrder(order_id, user_id, str(command.side), left=amount),
                    hold=_hold_row(order_id, market.symbol, asset, amount,
                                   accounts.wallet(user_id, asset), accounts.clearing(asset),
                                   runtime.next_seq),
                    own_order_id=command.order_id,
                ))
                positions.append(index)
            results = sequencer.commit_many(runtime, submissions) if submissions else []
            for index, submission, result in zip(positions, submissions, results, strict=True):
                if isinstance(result, KeyAlreadyUsed):
                    user_id, _, key = entries[index]
                    result = Written(self._replayed_place(user_id, key, hashes[index]), True)
                elif not isinstance(result, Exception):
                    expires = submission.command.expires_at
                    if expires is not None:
                        heapq.heappush(runtime.expiries, (expires, submission.command.order_id))
                    result = submission.new_order["id"]
                answers[index] = result
        placed = [a for a in answers if isinstance(a, UUID)]
        views = {view.id: view for view in self.views(placed)}
        return [Written(views[a], False) if isinstance(a, UUID) else a for a in answers]

    def _hold_amount(self, runtime: MarketRuntime, command: PlaceOrder,
                     request: OrderRequest) -> int:
        if request.funds is not None:
            return request.funds  # fees included: the book got the funds less the fee
        if command.side == Side.BUY and str(command.type) == "market":
            return holds.market_buy_cost(runtime.book, owner=command.owner,
                                         size=command.size, ts=command.ts)
        return holds.place_hold(runtime.market, command)

    def _replayed_place(self, user_id: UUID, key: str, fingerprint: str) -> OrderView | None:
        with self._x._engine.connect() as connection:
            row = persistence.order_by_key(connection, user_id, key)
            if row is None:
                if persistence.command_by_key(connection, user_id, key) is not None:
                    raise _reused(key)
                return None
        if row.request_hash != fingerprint:
            raise _reused(key)
        if row.status == "new":
            raise RequestInProgress(f"the order with Idempotency-Key {key!r} is being placed")
        return OrderView.of(row)

    # Amend, cancel, cancel-all.

    def amend(self, user_id: UUID, order_id: UUID, size: int | None, price: int | None,
              key: str) -> Answer:
        fingerprint = request_hash("amend", order=order_id, size=size, price=price)
        replayed = self._replayed_command(user_id, key, fingerprint)
        if replayed is not None:
            return replayed
        row = self._open_order(user_id, order_id)
        runtime = self._x.runtime(row.market)
        accounts = self._x._accounts
        with runtime.lock:
            command = AmendOrder(self._x._sequencer.next_ts(runtime), row.order_id,
                                 str(user_id), size=size, price=price)
            self._check(runtime, command, order_id)
            view = runtime.book.get_order(row.order_id)
            live = runtime.live[row.order_id]
            top_up = holds.amend_top_up(runtime.market, view, size=size, price=price,
                                        left=live.left)
            hold_row = None if top_up == 0 else _hold_row(
                row.id, row.market, row.hold_asset, top_up,
                accounts.wallet(user_id, row.hold_asset), accounts.clearing(row.hold_asset),
                runtime.next_seq,
            )
            logged = self._x._sequencer.commit(runtime, Submission(
                command, user_id, key, fingerprint, hold=hold_row, own_order_id=row.order_id,
                top_up=top_up,
            ))
        return Written(self.view(order_id), False), row.market, logged.seq

    def cancel(self, user_id: UUID, order_id: UUID, key: str) -> Answer:
        fingerprint = request_hash("cancel", order=order_id)
        replayed = self._replayed_command(user_id, key, fingerprint)
        if replayed is not None:
            return replayed
        row = self._open_order(user_id, order_id)
        runtime = self._x.runtime(row.market)
        with runtime.lock:
            command = CancelOrder(self._x._sequencer.next_ts(runtime), row.order_id,
                                  str(user_id))
            self._check(runtime, command, order_id)
            logged = self._x._sequencer.commit(runtime, Submission(
                command, user_id, key, fingerprint, own_order_id=row.order_id,
            ))
        return Written(self.view(order_id), False), row.market, logged.seq

    def cancel_all(self, user_id: UUID, symbol: str, side: str | None, key: str) -> Answer:
        runtime = self._x.runtime(symbol)
        fingerprint = request_hash("cancel_all", market=symbol, side=side)
        replayed = self._replayed_command(user_id, key, fingerprint)
        if replayed is not None:
            return replayed
        with runtime.lock:
            command = CancelAll(self._x._sequencer.next_ts(runtime), str(user_id), side)
            reject = runtime.book.check(command)
            if reject is not None:
                raise rejection_error(reject)
            logged = self._x._sequencer.commit(
                runtime, Submission(command, user_id, key, fingerprint)
            )
        return Written(self.views(logged.orders), False), symbol, logged.seq

    def _check(self, runtime: MarketRuntime, command, order_id: UUID) -> None:
        reject = runtime.book.check(command)
        if reject is None:
            return
        if reject.code == ORDER_NOT_FOUND:  # ours, but no longer live: filled or expired
            raise OrderNotOpen(f"order {order_id} is no longer open")
        raise rejection_error(reject)

    def _open_order(self, user_id: UUID, order_id: UUID):
        with self._x._engine.connect() as connection:
            row = persistence.order_row(connection, order_id)
        if row is None or row.user_id != user_id or row.status == "new":
            raise ExchangeOrderNotFound(f"no order {order_id}")
        if row.status != "open":
            raise OrderNotOpen(f"order {order_id} is {row.done_reason}")
        return row

    def _replayed_command(self, user_id: UUID, key: str, fingerprint: str) -> Answer | None:
        with self._x._engine.connect() as connection:
            row = persistence.command_by_key(connection, user_id, key)
            if row is None:
                if persistence.order_by_key(connection, user_id, key) is not None:
                    raise _reused(key)
                return None
        if row.request_hash != fingerprint:
            raise _reused(key)
        orders = [UUID(o) for o in row.result["orders"]]
        if row.kind == "cancel_all":
            return Written(self.views(orders), True), row.market, None
        return Written(self.view(orders[0]), True), row.market, None

    # Views.

    def view(self, order_id: UUID) -> OrderView:
        with self._x._engine.connect() as connection:
            return OrderView.of(persistence.order_row(connection, order_id))

    def views(self, order_ids: list[UUID]) -> list[OrderView]:
        with self._x._engine.connect() as connection:
            return [OrderView.of(r) for r in persistence.order_rows(connection, order_ids)]

    def reread(self, written: Written) -> Written:
        """The same answer, read again (after waiting for its settlement)."""
        value = written.value
        if isinstance(value, list):
            return Written(self.views([v.id for v in value]), written.replayed)
        return Written(self.view(value.id), written.replayed)


def bulk_placeable(request: OrderRequest) -> bool:
    """Whether an order's checks depend on nothing but itself (so many can go at once)."""
    return (request.type == "limit" and not request.post_only
            and request.time_in_force != "fok" and request.funds is None
            and request.stop_price is None)


def _order_row(order_id, market, command, request, hold_asset, user_id, key, now,
               fingerprint) -> dict:
    return {
        "id": order_id, "market": market, "order_id": command.order_id, "user_id": user_id,
        "side": str(command.side), "type": str(command.type), "time_in_force": str(command.tif),
        "post_only": command.post_only, "stp": str(command.stp), "price": request.price,
        "size": request.size, "funds": request.funds, "stop_price": request.stop_price,
        "expires_at": request.expires_at, "status": "new", "hold_asset": hold_asset,
        "idempotency_key": key, "request_hash": fingerprint, "created_at": now,
        "updated_at": now,
    }


def _hold_row(order_id, market, asset, amount, wallet, clearing, seq) -> dict:
    return {
        "id": uuid7(), "order": order_id, "market": market, "asset": asset, "amount": amount,
        "wallet_account_id": wallet, "clearing_account_id": clearing, "created_seq": seq,
        "status": "reserving",
    }


def _reused(key: str) -> IdempotencyKeyReusedForOrder:
    return IdempotencyKeyReusedForOrder(
        f"Idempotency-Key {key!r} was used for another exchange request"
    )
