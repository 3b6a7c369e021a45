"""A merchant's settlement account as a payout destination: tokenized at the gateway when
it is put on file, announced with `payout_destination.added`, tokenized later if it was
kept without a token, and never written when the gateway cannot tokenize it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from pacioli.gateways.base import GatewayUnavailable
from pacioli.gateways.sandbox import SandboxGateway, magic
from pacioli.gateways.sandbox.tables import instruments
from pacioli.payments import settlement_errors as se
from pacioli.payments.identity_errors import SettlementAccountNotFound
from pacioli.payments.settlement_accounts import (
    bank_details,
    get_settlement_account,
    payout_destination,
    set_settlement_account,
    settlement_accounts,
)
from tests.integration.test_settlement import World, make_world

ACH = {"account_number": magic.BANK_SUCCEEDS, "routing_number": magic.ROUTING_NUMBER}


class UnreachableGateway(SandboxGateway):
    """The sandbox, but its tokenization endpoint cannot be reached."""

    def tokenize_bank_account(self, account_number, routing_number):
        raise GatewayUnavailable("the processor did not answer")


@pytest.fixture
def world(engine, ledger) -> World:
    return make_world(engine, ledger)


def owner_of(world: World, merchant_id) -> uuid.UUID:
    from pacioli.payments import merchants

    return merchants.get_merchant(world.engine, merchant_id).owner_user_id


def test_an_ach_account_is_tokenized_and_announced_once(world):
    shop = world.merchant(account_number=None)
    details = bank_details(account_holder="Shop", **ACH)

    account, changed = set_settlement_account(
        world.engine, shop.id, owner_user_id=owner_of(world, shop.id), details=details,
        one_time_code=None, gateway=world.gateway)
    again, changed_again = set_settlement_account(
        world.engine, shop.id, owner_user_id=owner_of(world, shop.id), details=details,
        one_time_code=None, gateway=world.gateway)

    assert (changed, changed_again) == (True, False)
    assert again == account
    destination = payout_destination(world.engine, world.gateway, shop.id)
    assert destination.destination_id == account.destination_id
    with world.engine.connect() as connection:
        token = connection.execute(
            select(instruments).where(instruments.c.token == destination.token)
        ).one()
    assert (token.kind, token.last4, token.routing_number) == (
        "bank_account", "6789", magic.ROUTING_NUMBER)
    assert world.events(shop.id) == [("payout_destination.added", {
        "merchant_id": str(shop.id), "owner_user_id": str(owner_of(world, shop.id)),
        "kind": "settlement_account", "masked": "\u2022\u2022\u2022\u2022 6789",
        "destination_id": str(account.destination_id),
    })]


def test_an_account_kept_without_a_token_is_tokenized_when_first_paid_out(world):
    shop = world.merchant()
    with world.engine.begin() as connection:
        connection.execute(update(settlement_accounts)
                           .where(settlement_accounts.c.merchant_id == shop.id)
                           .values(payout_token=None, payout_gateway=None))
    before = get_settlement_account(world.engine, shop.id)

    destination = payout_destination(world.engine, world.gateway, shop.id)

    assert destination.token.startswith("ba_") and destination.gateway == "sandbox"
    assert destination.destination_id == before.destination_id
    assert payout_destination(world.engine, world.gateway, shop.id) == destination


def test_an_iban_is_kept_and_announced_but_cannot_be_paid_out_to(world):
    shop = world.merchant(account_number=None, iban="GB82WEST12345698765432")

    with pytest.raises(se.SettlementAccountNotPayable):
        payout_destination(world.engine, world.gateway, shop.id)
    [(kind, payload)] = world.events(shop.id)
    assert (kind, payload["masked"]) == ("payout_destination.added",
                                         "\u2022\u2022\u2022\u2022 5432")


def test_nothing_is_written_when_the_gateway_cannot_tokenize(world):
    shop = world.merchant(account_number=None)
    unreachable = UnreachableGateway(world.engine)

    with pytest.raises(GatewayUnavailable):
        set_settlement_account(
            world.engine, shop.id, owner_user_id=owner_of(world, shop.id), one_time_code=None,
            details=bank_details(account_holder="Shop", **ACH), gateway=unreachable)

    with pytest.raises(SettlementAccountNotFound):
        get_settlement_account(world.engine, shop.id)
    assert world.events(shop.id) == []
