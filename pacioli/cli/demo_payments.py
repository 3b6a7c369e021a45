"""`pacioli demo`, the payments part: two users, a café, and money moved by the flows.

It calls the same services the API does (sign-up, merchant registration, P2P, QR and
international transfers), each write under a fixed `demo:` key, so running it again
replays every write. The two users can log in to the API with the password below.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Engine

from pacioli.gateways.fx import SandboxFxRates
from pacioli.ledger import Ledger, credit, debit
from pacioli.payments import merchants, users
from pacioli.payments.chart import Chart, OwnerKind, Purpose
from pacioli.payments.fx import InternationalTransfers
from pacioli.payments.identity_idempotency import WriteKey
from pacioli.payments.p2p import P2P
from pacioli.payments.qr_payments import MerchantProfile, QrPayments

DEMO_PASSWORD = "pacioli demo password"
PRINCIPAL = "demo"


@dataclass(frozen=True, slots=True)
class DemoBalance:
    owner: str
    currency: str
    available_minor: int
    scale: int


@dataclass(frozen=True, slots=True)
class PaymentsDemoResult:
    logins: tuple[str, ...]  # the demo users' email addresses
    balances: tuple[DemoBalance, ...]
    story: tuple[str, ...]  # one line per flow, for a newcomer to read


def run_payments_demo(engine: Engine, ledger: Ledger) -> PaymentsDemoResult:
    """Sign up Ada and Bruno, register Ada's café, and move money through every flow."""
    chart = Chart(engine, ledger)
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}
    ada = _user(engine, "ada", "ada@example.com", "Ada Lovelace")
    bruno = _user(engine, "bruno", "bruno@example.com", "Bruno Pacioli")
    cafe = merchants.register_merchant(
        engine, name="Cafe Lisboa", owner_user_id=ada, approved=True,
        write_key=WriteKey(PRINCIPAL, "demo:merchant:cafe"),
    ).value.merchant
    story = []

    for user_id, name, amount_minor in ((ada, "ada", 500_00), (bruno, "bruno", 80_00)):
        ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), amount_minor),
             credit(chart.wallet(user_id, "USD"), amount_minor)],
            metadata={"demo": f"deposit:{name}"}, idempotency_key=f"demo:deposit:{name}",
        )
    story.append("Bank deposits: Ada 500.00 USD, Bruno 80.00 USD into their wallets.")

    P2P(engine, ledger, chart).send(
        payer_user_id=ada, payee_user_id=bruno, currency="USD", amount_minor=25_00,
        note="Dinner on Friday", idempotency_key="demo:p2p:dinner",
    )
    story.append("P2P: Ada sent Bruno 25.00 USD for dinner.")

    qr = QrPayments(engine, ledger, chart, scale_of=scales.__getitem__)
    counter = qr.create_code(
        MerchantProfile(cafe.id, cafe.name, "Lisbon", "PT", "5814"), currency="USD",
        idempotency_key="demo:qr:counter",
    ).value
    qr.pay(payer_user_id=bruno, payload=counter.payload, amount_minor=4_50,
           idempotency_key="demo:qr:coffee")
    story.append("QR: Bruno paid Cafe Lisboa 4.50 USD at its counter code (fee 0.03).")

    fx = InternationalTransfers(engine, ledger, chart, SandboxFxRates(),
                                scale_of=scales.__getitem__)
    quote = fx.quote(user_id=ada, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=100_00,
                     idempotency_key="demo:fx:quote").value
    fx.execute(user_id=ada, quote_id=quote.id, idempotency_key="demo:fx:execute")
    story.append("FX: Ada sent Bruno 100.00 USD, received as 90.62 EUR (fee 0.50 USD).")

    balances = []
    for owner, kind, owner_id in (("Ada", OwnerKind.USER, ada), ("Bruno", OwnerKind.USER, bruno),
                                  ("Cafe Lisboa", OwnerKind.MERCHANT, cafe.id)):
        for (_purpose, currency), account_id in sorted(
            chart.owned_accounts(kind, str(owner_id)).items()
        ):
            account = ledger.get_account(account_id)
            balances.append(DemoBalance(owner, currency, account.available_minor,
                                        scales[currency]))
    return PaymentsDemoResult(("ada@example.com", "bruno@example.com"), tuple(balances),
                              tuple(story))


def _user(engine: Engine, name: str, email: str, display_name: str) -> UUID:
    return users.sign_up(
        engine, email=email, phone=None, password=DEMO_PASSWORD, display_name=display_name,
        write_key=WriteKey(PRINCIPAL, f"demo:user:{name}"),
    ).value.id
