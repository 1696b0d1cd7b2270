"""The Activity tab: the store's recent webhook deliveries and remote calls, with Retry on failed ones
and Send again on those whose event is unconfirmed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from smbc.account.credentials import get_account
from smbc.actions import deliveries as delivery_actions
from smbc.actions.deliveries import DeliveryNotFound
from smbc.actions.store_lookup import StoreNotInstalled
from smbc.activity.health import system_health
from smbc.activity.recent import recent_activity
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.monitoring.scripts import check_monitoring
from smbc.realtime.unconfirmed import unconfirmed_deliveries
from smbc.stores.access import DashboardSession
from smbc.web.session import current_session, installed_store_or_404
from smbc.web.templating import render

router = APIRouter()
RETRYABLE = (RowStatus.FAILED.value, RowStatus.SKIPPED.value)


def _context(request: Request, store_hash: str, failed_only: bool) -> dict[str, Any]:
    db = request.app.state.runtime.db
    with db.session() as session:
        store = installed_store_or_404(session, store_hash)
        paused_reason = store.sync_paused_reason
        store_id = store.id
        connected = get_account(session, store_id) is not None
    # Read live from BigCommerce, so a script deleted in Script Manager shows here with Restore.
    monitoring_problems = check_monitoring(store_id) if connected else []
    deliveries, calls = recent_activity(db, store_hash, failed_only=failed_only)
    return {
        "monitoring_problems": monitoring_problems,
        "health": system_health(db, store_hash=store_hash),
        "connected": connected,
        "deliveries": deliveries,
        "calls": calls,
        "failed_only": failed_only,
        "paused_reason": paused_reason,
        "retryable": RETRYABLE,
        "unconfirmed": unconfirmed_deliveries(db, store_id, [d.id for d in deliveries]),
        "messages": [],
    }


@router.get("/app/tabs/activity", response_class=HTMLResponse)
async def activity_tab(
    request: Request, failed: bool = False, dash: DashboardSession = Depends(current_session)
) -> HTMLResponse:
    context = await run_in_threadpool(_context, request, dash.store_hash, failed)
    return render(request, "activity.html", context)


# The Activity tab's buttons on a delivery: the action the CLI runs too, and what it says after.
DELIVERY_ACTIONS: dict[str, tuple[Callable[[Database, str, int], Any], Callable[[int, Any], str]]] = {
    "retry": (delivery_actions.retry_delivery, delivery_actions.retried_message),
    "resend": (delivery_actions.resend_unconfirmed, delivery_actions.resent_message),
}


@router.post("/app/activity/deliveries/{delivery_id}/{action_name}", response_class=HTMLResponse)
async def delivery_action(
    request: Request, delivery_id: int, action_name: str, dash: DashboardSession = Depends(current_session)
) -> HTMLResponse:
    """Retry (a failed or skipped delivery) or resend (its unconfirmed events), then show the tab with
    what the action said."""
    if action_name not in DELIVERY_ACTIONS:
        raise HTTPException(status_code=404, detail="No such action on a delivery.")
    action, message = DELIVERY_ACTIONS[action_name]
    store_hash = dash.store_hash

    def run() -> Any:
        try:
            return action(request.app.state.runtime.db, store_hash, delivery_id)
        except (DeliveryNotFound, StoreNotInstalled):  # another store's id answers like a missing one
            raise HTTPException(status_code=404, detail="No such delivery in this store.") from None

    result = await run_in_threadpool(run)
    context = await run_in_threadpool(_context, request, store_hash, False)
    context["messages"] = [{"kind": "success" if result else "warning", "text": message(delivery_id, result)}]
    return render(request, "activity.html", context)
