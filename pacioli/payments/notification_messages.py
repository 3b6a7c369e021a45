"""What each event tells whom: the pure mapping from outbox events to notification drafts.

`drafts_for(event, lookup)` turns one catalog event (docs/architecture.md, the event
catalog in docs/notifications.md) into the notifications it causes, each for one user,
with a human-readable title and body. It reads nothing itself: names and asset scales
come from a `Lookup`, so the mapping is tested without a database.

Counterparties appear by display name (a user) or business name (a merchant, a biller),
never by email address or phone number. Amounts are formatted in major units with the
asset's scale (`12.50 USD`).

`CHANNELS` says which outside channels each kind goes to besides the in-app feed (every
notification is in the feed); docs/notifications.md explains the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

from pacioli.gateways.channels import Channel
from pacioli.ledger.outbox import Event

NOTE_SHOWN_LENGTH_MAX = 100


class Kind(StrEnum):
    """What a notification is about (stable: clients filter and pick icons by it)."""

    MONEY_RECEIVED = "money_received"
    CASHBACK_CREDITED = "cashback_credited"
    MONEY_REQUESTED = "money_requested"
    MONEY_REQUEST_PAID = "money_request_paid"
    MONEY_REQUEST_DECLINED = "money_request_declined"
    TOPUP_SUCCEEDED = "topup_succeeded"
    TOPUP_FAILED = "topup_failed"
    WITHDRAWAL_SUCCEEDED = "withdrawal_succeeded"
    WITHDRAWAL_FAILED = "withdrawal_failed"
    BILL_PAYMENT_SUCCEEDED = "bill_payment_succeeded"
    BILL_PAYMENT_REFUNDED = "bill_payment_refunded"
    QR_PAYMENT_SUCCEEDED = "qr_payment_succeeded"
    QR_PAYMENT_REFUNDED = "qr_payment_refunded"
    LOW_BALANCE = "low_balance"
    BILL_DUE = "bill_due"
    ORDER_FILLED = "order_filled"
    STOCK_LOW = "stock_low"
    ORDER_UPDATE = "order_update"
    ORDER_PAYMENT_FAILED = "order_payment_failed"
    ORDER_REFUNDED = "order_refunded"
    NEW_ORDER = "new_order"
    NEW_LOGIN = "new_login"
    NEW_PAYOUT_DESTINATION = "new_payout_destination"
    WEBHOOK_ENDPOINT_FAILING = "webhook_endpoint_failing"
    SETTLEMENT_PAID = "settlement_paid"
    SETTLEMENT_FAILED = "settlement_failed"


_PUSH = frozenset({Channel.PUSH})
_PUSH_EMAIL = frozenset({Channel.PUSH, Channel.EMAIL})
_EMAIL = frozenset({Channel.EMAIL})
_FEED_ONLY: frozenset[Channel] = frozenset()

# The outside channels of each kind. Money arriving and results the user waits for go to
# push; what needs the user to act (a failure, a low balance, a bill) also goes to email;
# security events go to email and push, and a new payout destination, the step an account
# takeover takes before emptying the wallet, also to SMS. What the user just did in the
# app in front of them (a QR or bill payment succeeding) stays in the feed.
CHANNELS: dict[Kind, frozenset[Channel]] = {
    Kind.MONEY_RECEIVED: _PUSH,
    Kind.CASHBACK_CREDITED: _PUSH,
    Kind.MONEY_REQUESTED: _PUSH,
    Kind.MONEY_REQUEST_PAID: _PUSH,
    Kind.MONEY_REQUEST_DECLINED: _PUSH,
    Kind.TOPUP_SUCCEEDED: _PUSH,
    Kind.TOPUP_FAILED: _PUSH_EMAIL,
    Kind.WITHDRAWAL_SUCCEEDED: _PUSH,
    Kind.WITHDRAWAL_FAILED: _PUSH_EMAIL,
    Kind.BILL_PAYMENT_SUCCEEDED: _FEED_ONLY,
    Kind.BILL_PAYMENT_REFUNDED: _PUSH_EMAIL,
    Kind.QR_PAYMENT_SUCCEEDED: _FEED_ONLY,
    Kind.QR_PAYMENT_REFUNDED: _PUSH,
    Kind.LOW_BALANCE: _PUSH_EMAIL,
    Kind.BILL_DUE: _PUSH_EMAIL,
    Kind.ORDER_FILLED: _PUSH,
    Kind.STOCK_LOW: _EMAIL,
    Kind.ORDER_UPDATE: _PUSH,
    Kind.ORDER_PAYMENT_FAILED: _PUSH_EMAIL,
    Kind.ORDER_REFUNDED: _PUSH,
    Kind.NEW_ORDER: _PUSH_EMAIL,
    Kind.NEW_LOGIN: _PUSH_EMAIL,
    Kind.NEW_PAYOUT_DESTINATION: frozenset({Channel.PUSH, Channel.EMAIL, Channel.SMS}),
    Kind.WEBHOOK_ENDPOINT_FAILING: _EMAIL,
    Kind.SETTLEMENT_PAID: _EMAIL,
    Kind.SETTLEMENT_FAILED: _PUSH_EMAIL,
}


@dataclass(frozen=True, slots=True)
class Draft:
    """A notification to store: for whom, what kind, what it says, and data for the app."""

    user_id: UUID
    kind: Kind
    title: str
    body: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MerchantRef:
    name: str
    owner_user_id: UUID


@dataclass(frozen=True, slots=True)
class WalletChange:
    """A user's wallet in `currency` moved: down (`debited`) or up."""

    user_id: UUID
    currency: str
    debited: bool


class Lookup(Protocol):
    """What the mapping needs to know beyond the event."""

    def user_name(self, user_id: UUID) -> str:
        """The user's display name, or a neutral stand-in (never an email or phone)."""
        ...

    def merchant(self, merchant_id: UUID) -> MerchantRef | None:
        """The merchant's name and owner, or None for an unknown merchant."""
        ...

    def biller_name(self, biller_id: str) -> str:
        ...

    def money(self, amount_minor: int, currency: str) -> str:
        """`amount_minor` in major units with the currency: "12.50 USD"."""
        ...


def drafts_for(event: Event, lookup: Lookup) -> list[Draft]:
    """The notifications `event` causes (none for a type notifications ignore)."""
    mapping = _MAPPINGS.get(event.event_type)
    if mapping is None:
        return []
    return mapping(event.payload, lookup)


def wallet_changes(event: Event) -> list[WalletChange]:
    """The user wallets `event` moved, for the low-balance watch."""
    p = event.payload
    match event.event_type:
        case "p2p_payment.succeeded":
            return [WalletChange(_id(p, "payer_user_id"), p["currency"], debited=True),
                    WalletChange(_id(p, "payee_user_id"), p["currency"], debited=False)]
        case "international_transfer.succeeded":
            return [WalletChange(_id(p, "sender_user_id"), p["source_currency"], debited=True),
                    WalletChange(_id(p, "recipient_user_id"), p["target_currency"],
                                 debited=False)]
        case "qr_payment.succeeded":
            return [WalletChange(_id(p, "payer_user_id"), p["currency"], debited=True)]
        case "withdrawal.succeeded" | "bill_payment.succeeded":
            return [WalletChange(_id(p, "user_id"), p["currency"], debited=True)]
        case ("topup.succeeded" | "cashback.credited" | "withdrawal.failed"
              | "bill_payment.refunded"):
            return [WalletChange(_id(p, "user_id"), p["currency"], debited=False)]
        case "qr_payment.refunded":
            return [WalletChange(_id(p, "payer_user_id"), p["currency"], debited=False)]
    return []


def low_balance_draft(
    user_id: UUID, currency: str, *, available_minor: int, threshold_minor: int, lookup: Lookup
) -> Draft:
    balance = lookup.money(available_minor, currency)
    threshold = lookup.money(threshold_minor, currency)
    return Draft(
        user_id, Kind.LOW_BALANCE, f"Low balance: {balance}",
        f"Your {currency} balance is {balance}, below your alert threshold of {threshold}.",
        {"currency": currency, "available_minor": str(available_minor),
         "threshold_minor": str(threshold_minor)},
    )


def bill_due_draft(
    user_id: UUID, *, biller_id: str, bill_reference: str, customer_reference: str,
    amount_minor: int, minimum_due_minor: int | None, currency: str, due_date: date,
    today: date, lookup: Lookup,
) -> Draft:
    biller = lookup.biller_name(biller_id)
    amount = lookup.money(amount_minor, currency)
    days = (due_date - today).days
    when = "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"
    minimum = ""
    if minimum_due_minor is not None and minimum_due_minor != amount_minor:
        minimum = f" (minimum due {lookup.money(minimum_due_minor, currency)})"
    return Draft(
        user_id, Kind.BILL_DUE, f"Bill due {when}: {biller}",
        f"Your {biller} bill of {amount}{minimum} for account {mask(customer_reference)}"
        f" is due on {due_date.isoformat()}.",
        {"biller_id": biller_id, "bill_reference": bill_reference,
         "amount_minor": str(amount_minor), "currency": currency,
         "due_date": due_date.isoformat()},
    )


def mask(reference: str) -> str:
    """A reference shown by its last four characters only: "••••6789"."""
    return "••••" + reference[-4:]


# One function per event type. Each returns the drafts for the users the event concerns.


def _p2p_succeeded(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
    payer = _id(p, "payer_user_id")
    return [Draft(
        _id(p, "payee_user_id"), Kind.MONEY_RECEIVED, f"You received {amount}",
        f"{lookup.user_name(payer)} sent you {amount}.{_note(p)}",
        {"payment_id": p["payment_id"], "amount_minor": p["amount_minor"],
         "currency": p["currency"], "counterparty_user_id": str(payer)},
    )]


def _international_succeeded(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    received = lookup.money(_minor(p, "target_amount_minor"), p["target_currency"])
    sent = lookup.money(_minor(p, "source_amount_minor"), p["source_currency"])
    sender = _id(p, "sender_user_id")
    return [Draft(
        _id(p, "recipient_user_id"), Kind.MONEY_RECEIVED, f"You received {received}",
        f"{lookup.user_name(sender)} sent you {received}, converted from {sent}.",
        {"transfer_id": p["transfer_id"], "amount_minor": p["target_amount_minor"],
         "currency": p["target_currency"], "counterparty_user_id": str(sender)},
    )]


def _request_created(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
    requester = lookup.user_name(_id(p, "requester_user_id"))
    return [Draft(
        _id(p, "payer_user_id"), Kind.MONEY_REQUESTED, f"{requester} requests {amount}",
        f"{requester} asked you for {amount}.{_note(p)}", _request_data(p),
    )]


def _request_resolved(kind: Kind, verb: str) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
        payer = lookup.user_name(_id(p, "payer_user_id"))
        return [Draft(
            _id(p, "requester_user_id"), kind, f"{payer} {verb} your request",
            f"{payer} {verb} your request for {amount}.", _request_data(p),
        )]

    return drafts


def _cashback(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
    merchant = _merchant_name(p, lookup)
    return [Draft(
        _id(p, "user_id"), Kind.CASHBACK_CREDITED, f"Cashback: {amount}",
        f"You earned {amount} cashback from {merchant}.",
        {"payment_id": p["payment_id"], "merchant_id": p["merchant_id"],
         "amount_minor": p["amount_minor"], "currency": p["currency"]},
    )]


def _topup(succeeded: bool) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
        if succeeded:
            kind, title = Kind.TOPUP_SUCCEEDED, f"Top-up of {amount} complete"
            body = f"{amount} was added to your wallet."
        else:
            kind, title = Kind.TOPUP_FAILED, f"Top-up of {amount} failed"
            body = (f"Your top-up of {amount} did not go through{_reason(p)}."
                    " Your wallet was not credited.")
        return [Draft(_id(p, "user_id"), kind, title, body, _flow_data(p, "topup_id"))]

    return drafts


def _withdrawal(succeeded: bool) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
        if succeeded:
            kind, title = Kind.WITHDRAWAL_SUCCEEDED, f"Withdrawal of {amount} sent"
            body = f"{amount} was paid out to your bank account."
        else:
            kind, title = Kind.WITHDRAWAL_FAILED, f"Withdrawal of {amount} failed"
            body = (f"Your withdrawal of {amount} did not go through{_reason(p)}."
                    " The money stays in your wallet.")
        return [Draft(_id(p, "user_id"), kind, title, body, _flow_data(p, "withdrawal_id"))]

    return drafts


def _bill_payment(succeeded: bool) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
        biller = lookup.biller_name(p["biller_id"])
        if succeeded:
            kind, title = Kind.BILL_PAYMENT_SUCCEEDED, f"Bill paid: {biller}"
            body = f"Your payment of {amount} to {biller} went through."
        else:
            kind, title = Kind.BILL_PAYMENT_REFUNDED, f"Bill payment to {biller} not accepted"
            body = (f"Your payment of {amount} to {biller} was not accepted{_reason(p)}."
                    " The amount is back in your wallet.")
        data = {**_flow_data(p, "payment_id"), "biller_id": p["biller_id"]}
        return [Draft(_id(p, "user_id"), kind, title, body, data)]

    return drafts


def _qr_paid(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
    merchant = _merchant_name(p, lookup)
    return [Draft(
        _id(p, "payer_user_id"), Kind.QR_PAYMENT_SUCCEEDED, f"You paid {merchant}",
        f"You paid {amount} to {merchant}.",
        {"payment_id": p["payment_id"], "merchant_id": p["merchant_id"],
         "amount_minor": p["amount_minor"], "currency": p["currency"]},
    )]


def _qr_refunded(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    amount = lookup.money(_minor(p, "amount_minor"), p["currency"])
    merchant = _merchant_name(p, lookup)
    return [Draft(
        _id(p, "payer_user_id"), Kind.QR_PAYMENT_REFUNDED, f"{merchant} refunded {amount}",
        f"{merchant} refunded {amount} of your payment; it is back in your wallet.",
        {"payment_id": p["payment_id"], "refund_id": p["refund_id"],
         "merchant_id": p["merchant_id"], "amount_minor": p["amount_minor"],
         "currency": p["currency"]},
    )]


def _logged_in(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    at = datetime.fromisoformat(p["logged_in_at"])
    at = at.astimezone(UTC) if at.tzinfo is not None else at  # a naive time is UTC already
    return [Draft(
        _id(p, "user_id"), Kind.NEW_LOGIN, "New login to your account",
        f"Your account was signed in to on {at:%Y-%m-%d at %H:%M} UTC. If this was not you,"
        " change your password now.",
        {"session_id": p["session_id"], "logged_in_at": p["logged_in_at"]},
    )]


def _payout_destination(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    data = {"destination_id": p["destination_id"], "kind": p["kind"], "masked": p["masked"]}
    warning = "If you did not add it, contact support at once."
    if p.get("merchant_id") is None:
        return [Draft(
            _id(p, "user_id"), Kind.NEW_PAYOUT_DESTINATION, "New payout destination added",
            f"A bank account ({p['masked']}) was added to your account for withdrawals."
            f" {warning}", data,
        )]
    merchant = lookup.merchant(_id(p, "merchant_id"))
    if merchant is None:
        return []
    return [Draft(
        merchant.owner_user_id, Kind.NEW_PAYOUT_DESTINATION,
        f"New settlement account for {merchant.name}",
        f"A settlement account ({p['masked']}) was set for {merchant.name}'s payouts."
        f" {warning}", {**data, "merchant_id": p["merchant_id"]},
    )]


def _endpoint_failing(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    merchant = lookup.merchant(_id(p, "merchant_id"))
    if merchant is None:
        return []
    # Only the host: a URL's path or query may carry a token the merchant put there.
    host = urlsplit(p["url"]).hostname or "your endpoint"
    return [Draft(
        merchant.owner_user_id, Kind.WEBHOOK_ENDPOINT_FAILING,
        f"Webhook endpoint failing: {merchant.name}",
        f"Webhook deliveries to {host} for {merchant.name} kept failing and are no longer"
        " retried. Fix the endpoint, then ask for a redelivery of the events it missed.",
        {"endpoint_id": p["endpoint_id"], "merchant_id": p["merchant_id"]},
    )]


def _settlement(paid: bool) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        merchant = lookup.merchant(_id(p, "merchant_id"))
        if merchant is None:
            return []
        currency = p["currency"]
        net = lookup.money(_minor(p, "net_minor"), currency)
        if paid:
            kind, title = Kind.SETTLEMENT_PAID, f"Settlement paid: {net}"
            body = (f"{merchant.name}'s settlement of {p['item_count']} payments was paid out:"
                    f" gross {lookup.money(_minor(p, 'gross_minor'), currency)},"
                    f" fees {lookup.money(_minor(p, 'fees_minor'), currency)},"
                    f" refunds {lookup.money(_minor(p, 'refunds_minor'), currency)},"
                    f" net {net}.")
        else:
            kind, title = Kind.SETTLEMENT_FAILED, f"Settlement payout failed: {net}"
            body = (f"The payout of {net} for {merchant.name} failed{_reason(p)}."
                    " The funds are back in the merchant balance.")
        data = {"batch_id": p["batch_id"], "merchant_id": p["merchant_id"],
                "net_minor": p["net_minor"], "currency": currency}
        return [Draft(merchant.owner_user_id, kind, title, body, data)]

    return drafts


def _order_filled(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    return [Draft(
        _id(p, "user_id"), Kind.ORDER_FILLED, f"Order filled on {p['market']}",
        f"Your {p['side']} order on {p['market']} filled: {p['filled_size']}"
        f" at {p['price']}.",
        {"order_id": p["order_id"], "market": p["market"], "side": p["side"],
         "filled_size": p["filled_size"], "price": p["price"]},
    )]


def _stock_low(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
    """A supplier's variant fell below its low-stock threshold (commerce/inventory.py)."""
    merchant = lookup.merchant(_id(p, "merchant_id"))
    if merchant is None:
        return []
    return [Draft(
        merchant.owner_user_id, Kind.STOCK_LOW, f"Low stock: {p['product_name']} ({p['sku']})",
        f"Only {p['stock_available']} units of {p['product_name']} ({p['sku']}) are left for"
        f" sale at {merchant.name} (threshold {p['low_stock_threshold']}).",
        {"merchant_id": p["merchant_id"], "product_id": p["product_id"],
         "variant_id": p["variant_id"], "sku": p["sku"],
         "stock_available": p["stock_available"]},
    )]


# A checkout order's change (commerce/order_records.py): what the shopper is told, and
# for a new paid order or a return on its way, what the supplier's owner is told.
_ORDER_NEWS = {
    "paid": "is confirmed", "shipped": "has shipped", "tracking_updated": "has a tracking update",
    "delivered": "was delivered", "cancelled": "was cancelled",
    "partially_returned": "was partly returned", "returned": "was returned",
}


def _commerce_order(event: str) -> Callable[[dict[str, Any], Lookup], list[Draft]]:
    def drafts(p: dict[str, Any], lookup: Lookup) -> list[Draft]:
        order = f"Order {str(p['order_id'])[-8:]}"
        total = lookup.money(_minor(p, "total_minor"), p["currency"])
        data = {"order_id": p["order_id"], "status": p["status"], "merchant_id": p["merchant_id"],
                "total_minor": p["total_minor"], "currency": p["currency"]}
        shopper = _id(p, "user_id")
        found = []
        if event == "payment_failed":
            found.append(Draft(shopper, Kind.ORDER_PAYMENT_FAILED, f"{order} was not paid",
                               f"Your payment of {total} was not taken{_reason(p)}; nothing"
                               " was charged. Your cart is as you left it.", data))
        elif event == "refunded":
            amount = lookup.money(_minor(p, "refund_minor"), p["currency"])
            found.append(Draft(shopper, Kind.ORDER_REFUNDED, f"{order}: {amount} refunded",
                               f"{amount} of your order was refunded to your"
                               f" {p['refund_destination']}.",
                               {**data, "refund_id": p["refund_id"]}))
        elif event in _ORDER_NEWS:
            tracking = (f" ({p['carrier']} {p['tracking_number']})"
                        if event in ("shipped", "tracking_updated") else "")
            found.append(Draft(shopper, Kind.ORDER_UPDATE, f"{order} {_ORDER_NEWS[event]}",
                               f"Your order of {total} {_ORDER_NEWS[event]}{tracking}.", data))
        merchant = lookup.merchant(_id(p, "merchant_id"))
        if merchant is not None and event in ("paid", "return_requested"):
            title = (f"New order to ship: {total}" if event == "paid"
                     else f"{order}: a return is on its way")
            found.append(Draft(merchant.owner_user_id, Kind.NEW_ORDER, title,
                               f"{merchant.name}: {order} ({total}) "
                               + ("is paid and waits to be packed and shipped." if event == "paid"
                                  else "is being sent back; receive it to refund the shopper."),
                               data))
        return found

    return drafts


_MAPPINGS: dict[str, Callable[[dict[str, Any], Lookup], list[Draft]]] = {
    "p2p_payment.succeeded": _p2p_succeeded,
    "international_transfer.succeeded": _international_succeeded,
    "money_request.created": _request_created,
    "money_request.paid": _request_resolved(Kind.MONEY_REQUEST_PAID, "paid"),
    "money_request.declined": _request_resolved(Kind.MONEY_REQUEST_DECLINED, "declined"),
    "cashback.credited": _cashback,
    "topup.succeeded": _topup(succeeded=True),
    "topup.failed": _topup(succeeded=False),
    "withdrawal.succeeded": _withdrawal(succeeded=True),
    "withdrawal.failed": _withdrawal(succeeded=False),
    "bill_payment.succeeded": _bill_payment(succeeded=True),
    "bill_payment.refunded": _bill_payment(succeeded=False),
    "qr_payment.succeeded": _qr_paid,
    "qr_payment.refunded": _qr_refunded,
    "user.logged_in": _logged_in,
    "payout_destination.added": _payout_destination,
    "webhook_endpoint.failing": _endpoint_failing,
    "settlement.paid": _settlement(paid=True),
    "settlement.failed": _settlement(paid=False),
    "order.filled": _order_filled,
    "commerce.stock_low": _stock_low,
    **{f"commerce_order.{event}": _commerce_order(event)
       for event in (*_ORDER_NEWS, "payment_failed", "refunded", "return_requested")},
}

EVENT_TYPES = frozenset(_MAPPINGS)


# Payload readers: ids and amounts travel as strings.


def _id(p: dict[str, Any], key: str) -> UUID:
    return UUID(str(p[key]))


def _minor(p: dict[str, Any], key: str) -> int:
    return int(p[key])


def _note(p: dict[str, Any]) -> str:
    note = (p.get("note") or "").strip()
    if not note:
        return ""
    if len(note) > NOTE_SHOWN_LENGTH_MAX:
        note = note[: NOTE_SHOWN_LENGTH_MAX - 1] + "…"
    return f' Note: "{note}"'


def _reason(p: dict[str, Any]) -> str:
    """" (card declined)" from a failure code, or nothing when there is none."""
    code = p.get("failure_code")
    return f" ({code.replace('_', ' ')})" if code else ""


def _merchant_name(p: dict[str, Any], lookup: Lookup) -> str:
    merchant = lookup.merchant(_id(p, "merchant_id"))
    return merchant.name if merchant is not None else "a merchant"


def _request_data(p: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": p["request_id"], "amount_minor": p["amount_minor"],
            "currency": p["currency"]}


def _flow_data(p: dict[str, Any], id_key: str) -> dict[str, Any]:
    return {id_key: p[id_key], "amount_minor": p["amount_minor"], "currency": p["currency"],
            "failure_code": p.get("failure_code")}
