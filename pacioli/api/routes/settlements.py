"""/v1/merchants/me/settlements: a merchant's settlements and their reports (with its
secret key); /v1/merchants/{id}/settlement-schedule: its cycle (admins set it). A
merchant sees only its own settlements; anyone else's is a 404."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from pacioli.api.auth import CurrentMerchant, EngineDep
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, AdminClient, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.funding import app_chart, app_gateway
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.settlements import (
    SettlementPublic,
    SettlementReportPublic,
    SettlementSchedulePublic,
    SettlementSchedulePut,
)
from pacioli.config import get_settings
from pacioli.payments import merchants
from pacioli.payments.settlement import Settlement

router = APIRouter(tags=["settlements"])
MERCHANTS = f"{API_PREFIX}/merchants"


def get_settlement(request: Request) -> Settlement:
    app = request.app
    return Settlement(app.state.engine, app.state.ledger, app_chart(app), app_gateway(app),
                      cycle_days=get_settings().settlement_cycle_days)


SettlementDep = Annotated[Settlement, Depends(get_settlement)]


@router.get(f"{MERCHANTS}/me/settlements", summary="The merchant's settlements, newest first")
def list_settlements(
    merchant: CurrentMerchant, settlement: SettlementDep, scales: ScalesDep,
    currency: str | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[SettlementPublic]:
    rows = settlement.list(merchant.id, currency=currency, limit=limit + 1,
                           starting_after=starting_after)
    return Page.of(rows, limit, lambda b: SettlementPublic.of(b, scales), lambda b: b.id)


@router.get(f"{MERCHANTS}/me/settlements/{{settlement_id}}",
            summary="A settlement's report: gross, fees, refunds, net and its items")
def get_settlement_report(
    settlement_id: UUID, merchant: CurrentMerchant, settlement: SettlementDep,
    scales: ScalesDep,
) -> SettlementReportPublic:
    return SettlementReportPublic.of_report(settlement.report(merchant.id, settlement_id),
                                            scales)


@router.get(f"{MERCHANTS}/me/settlement-schedule", summary="The merchant's settlement cycle")
def get_own_schedule(merchant: CurrentMerchant,
                     settlement: SettlementDep) -> SettlementSchedulePublic:
    return SettlementSchedulePublic(merchant_id=merchant.id,
                                    cycle_days=settlement.cycle_days_of(merchant.id))


@router.put(f"{MERCHANTS}/{{merchant_id}}/settlement-schedule",
            summary="Set a merchant's settlement cycle (admin)")
def put_schedule(
    merchant_id: UUID, body: SettlementSchedulePut, _admin: AdminClient, engine: EngineDep,
    settlement: SettlementDep,
) -> SettlementSchedulePublic:
    merchants.get_merchant(engine, merchant_id)  # MerchantNotFound for an unknown id
    cycle_days = settlement.set_cycle_days(merchant_id, body.cycle_days)
    return SettlementSchedulePublic(merchant_id=merchant_id, cycle_days=cycle_days)
