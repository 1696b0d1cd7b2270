"""Health: the queues (depth, age of the oldest waiting row) and, per store, what an operator checks
first when "nothing arrives in SALESmanago": last delivery received, hooks, SALESmanago
credentials, monitoring code, reconciliation watermark, pause.

Everything here is read from the database (and the queue's length): no remote call, so the detail
view and the metrics cost a few queries however many stores there are. The hooks and the watermark
are as the last reconciliation (every 15 minutes) found and left them; the Activity tab adds a live
read of the monitoring code.

One service function per view: `system_health` (the `/readyz?detail=1` answer and the Activity
tab's panel, for one store or all) and `health_gauges` (the gauges of `/metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, Text, column, func, select, table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smbc.account.models import SalesmanagoAccount
from smbc.core import jobs
from smbc.core.clock import utcnow
from smbc.core.metrics import Gauge
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.db.types import UTCDateTime
from smbc.engine.context import RowStatus
from smbc.engine.pausing import PauseReason
from smbc.engine.queue import QueuedRow
from smbc.engine.queue import due as is_due
from smbc.monitoring.models import MonitoringScript
from smbc.realtime.models import WebhookDelivery
from smbc.settings.models import StoreSettingsRow
from smbc.settings.store_settings import StoreSettings
from smbc.stores.hooks import NEEDED_SCOPES

# Reconciliation runs every 15 minutes: a watermark this old means four runs in a row did not finish.
WATERMARK_STALE_AFTER = timedelta(hours=1)
# A due row nobody has picked up for this long: too few workers, or none running.
QUEUE_LAG_LIMIT = timedelta(minutes=5)

# Reconciliation is a sibling feature (not importable from here): its table is read by its columns.
RECONCILE_STATES = table(
    "reconcile_states",
    column("store_id", Integer),
    column("watermark", UTCDateTime),
    column("last_run_at", UTCDateTime),
    column("last_result", JSON),
    column("last_error", Text),
)

_OPEN = (RowStatus.PENDING.value, RowStatus.PROCESSING.value, RowStatus.WAITING.value)


@dataclass(frozen=True)
class QueueHealth:
    """Open rows of one table of queued work (finished rows are history, not depth)."""

    queue: str
    due: int = 0  # pending and its time has come: a worker should be on it now
    scheduled: int = 0  # pending, retried later (backoff, rate limit)
    processing: int = 0
    waiting: int = 0  # its store is paused
    oldest_due_age_s: float | None = None  # how long the oldest due row has been due

    @property
    def depth(self) -> int:
        return self.due + self.scheduled + self.processing + self.waiting


@dataclass(frozen=True)
class HooksHealth:
    """The store's webhooks as the last reconciliation found them (it repairs what is missing)."""

    state: str  # active | repaired | check_failed | not_checked
    checked_at: datetime | None
    expected: int
    repaired: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class StoreHealth:
    hash: str
    name: str
    paused_reasons: list[str]
    last_delivery_at: datetime | None  # last webhook received (not reconciliation's own rows)
    hooks: HooksHealth
    salesmanago_credentials: str  # valid | refused | not_connected
    monitoring: str  # installed (as recorded) | not_installed | off | not_connected
    monitoring_channels: list[int]  # storefronts with our script, as recorded when installed
    watermark: datetime | None
    watermark_age_s: float | None
    reconcile_error: str
    deliveries_open: dict[str, int]  # pending / processing / waiting rows of this store
    oldest_due_age_s: float | None  # how long this store's oldest due delivery has been due
    problems: list[str]


@dataclass(frozen=True)
class SystemHealth:
    checked_at: datetime
    queues: list[QueueHealth]
    queue_messages: int | None  # messages in the queue's storage (None: unreachable)
    stores: list[StoreHealth]
    problems: list[str]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for queue, health in zip(data["queues"], self.queues, strict=True):
            queue["depth"] = health.depth
        return _jsonable(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


# -- queues ----------------------------------------------------------------------------------------


def queued_models() -> list[type[QueuedRow]]:
    """Every table of queued work the engine runs (each feature's model mixes in `QueuedRow`)."""
    return sorted(QueuedRow.__subclasses__(), key=lambda model: model.__tablename__)  # type: ignore[attr-defined]


def queue_health(session: Session, model: type[QueuedRow], now: datetime) -> QueueHealth:
    counts: dict[str, int] = dict(
        session.execute(
            select(model.status, func.count()).where(model.status.in_(_OPEN)).group_by(model.status)
        ).all()  # type: ignore[arg-type]
    )
    due, oldest = session.execute(
        select(func.count(), func.min(_became_due(model))).where(is_due(model, now))
    ).one()
    pending = counts.get(RowStatus.PENDING.value, 0)
    return QueueHealth(
        queue=model.__tablename__,  # type: ignore[attr-defined]
        due=int(due or 0),
        scheduled=max(pending - int(due or 0), 0),
        processing=counts.get(RowStatus.PROCESSING.value, 0),
        waiting=counts.get(RowStatus.WAITING.value, 0),
        oldest_due_age_s=_age(now, oldest),
    )


def _became_due(model: type[QueuedRow]) -> Any:
    return func.coalesce(model.next_attempt_at, model.received_at)


def _age(now: datetime, since: datetime | None) -> float | None:
    return max((now - since).total_seconds(), 0.0) if since is not None else None


def queue_messages() -> int | None:
    try:
        return int(jobs.huey.pending_count())
    except Exception:  # the queue's storage is down: readiness says so; here it is just unknown
        return None


# -- stores ----------------------------------------------------------------------------------------


def _hooks(state: Any) -> HooksHealth:
    expected = len(NEEDED_SCOPES)
    if state is None or state.last_run_at is None:
        return HooksHealth("not_checked", None, expected)
    result = state.last_result or {}
    if state.last_error:
        return HooksHealth("check_failed", state.last_run_at, expected, error=state.last_error)
    repaired = list(result.get("hooks_created", [])) + list(result.get("hooks_repaired", []))
    return HooksHealth("repaired" if repaired else "active", state.last_run_at, expected, repaired)


def _credentials(connected: bool, paused: str | None) -> str:
    if paused == PauseReason.SALESMANAGO_CREDENTIALS.value:
        return "refused"
    if not connected or paused == PauseReason.LOGGED_OUT.value:
        return "not_connected"
    return "valid"


def _monitoring(connected: bool, enabled: bool, channels: list[int]) -> str:
    if not connected:
        return "not_connected"
    if not enabled:
        return "off"
    return "installed" if channels else "not_installed"


def _problems(health: StoreHealth) -> list[str]:
    problems = [f"sync paused: {reason}" for reason in health.paused_reasons]
    if health.salesmanago_credentials == "refused":
        problems.append("SALESmanago refused the stored credentials: log in again")
    elif health.salesmanago_credentials == "not_connected":
        problems.append("not connected to SALESmanago")
    if health.hooks.state == "check_failed":
        problems.append(f"webhooks could not be checked: {health.hooks.error}")
    if health.monitoring == "not_installed":
        problems.append("monitoring code is not installed on any storefront")
    if health.watermark_age_s is not None and health.watermark_age_s > WATERMARK_STALE_AFTER.total_seconds():
        problems.append(f"reconciliation is behind: watermark {int(health.watermark_age_s // 60)} min old")
    if health.deliveries_open.get(RowStatus.WAITING.value):
        problems.append(
            f"{health.deliveries_open[RowStatus.WAITING.value]} deliveries wait for the pause to end"
        )
    return problems


def stores_health(session: Session, now: datetime, store_hash: str | None = None) -> list[StoreHealth]:
    """Installed stores (or the one named), a handful of queries whatever their number."""
    query = select(Store).where(Store.status == "installed").order_by(Store.hash)
    if store_hash is not None:
        query = select(Store).where(Store.hash == store_hash)
    stores = list(session.scalars(query))
    if not stores:
        return []
    ids = [store.id for store in stores]
    connected = set(
        session.scalars(select(SalesmanagoAccount.store_id).where(SalesmanagoAccount.store_id.in_(ids)))
    )
    states = {
        row.store_id: row
        for row in session.execute(select(RECONCILE_STATES).where(RECONCILE_STATES.c.store_id.in_(ids)))
    }
    scripts: dict[int, list[int]] = {}
    for store_id, channel_id in session.execute(
        select(MonitoringScript.store_id, MonitoringScript.channel_id)
        .where(MonitoringScript.store_id.in_(ids))
        .order_by(MonitoringScript.channel_id)
    ):
        scripts.setdefault(store_id, []).append(channel_id)
    monitoring_enabled = {
        row.store_id: StoreSettings.model_validate(row.data or {}).monitoring_enabled
        for row in session.scalars(select(StoreSettingsRow).where(StoreSettingsRow.store_id.in_(ids)))
    }
    last_delivery = dict(
        session.execute(
            select(WebhookDelivery.store_id, func.max(WebhookDelivery.received_at))
            .where(WebhookDelivery.store_id.in_(ids), WebhookDelivery.source == "webhook")
            .group_by(WebhookDelivery.store_id)
        ).all()  # type: ignore[arg-type]
    )
    open_rows: dict[int, dict[str, int]] = {}
    for store_id, status, count in session.execute(
        select(WebhookDelivery.store_id, WebhookDelivery.status, func.count())
        .where(WebhookDelivery.store_id.in_(ids), WebhookDelivery.status.in_(_OPEN))
        .group_by(WebhookDelivery.store_id, WebhookDelivery.status)
    ):
        open_rows.setdefault(store_id, {})[status] = count
    oldest_due = dict(
        session.execute(
            select(WebhookDelivery.store_id, func.min(_became_due(WebhookDelivery)))
            .where(WebhookDelivery.store_id.in_(ids), is_due(WebhookDelivery, now))
            .group_by(WebhookDelivery.store_id)
        ).all()  # type: ignore[arg-type]
    )
    out = []
    for store in stores:
        state = states.get(store.id)
        watermark = state.watermark if state is not None else None
        is_connected = store.id in connected
        health = StoreHealth(
            hash=store.hash,
            name=str((store.info or {}).get("name") or ""),
            paused_reasons=[store.sync_paused_reason] if store.sync_paused_reason else [],
            last_delivery_at=last_delivery.get(store.id),
            hooks=_hooks(state),
            salesmanago_credentials=_credentials(is_connected, store.sync_paused_reason),
            monitoring=_monitoring(
                is_connected, monitoring_enabled.get(store.id, True), scripts.get(store.id, [])
            ),
            monitoring_channels=scripts.get(store.id, []),
            watermark=watermark,
            watermark_age_s=_age(now, watermark),
            reconcile_error=state.last_error if state is not None else "",
            deliveries_open=open_rows.get(store.id, {}),
            oldest_due_age_s=_age(now, oldest_due.get(store.id)),
            problems=[],
        )
        health.problems.extend(_problems(health))
        out.append(health)
    return out


def _system_problems(queues: Iterable[QueueHealth], messages: int | None) -> list[str]:
    problems = []
    for queue in queues:
        if queue.oldest_due_age_s is not None and queue.oldest_due_age_s > QUEUE_LAG_LIMIT.total_seconds():
            problems.append(
                f"{queue.queue}: the oldest due row has waited {int(queue.oldest_due_age_s)} s for a worker"
            )
    if messages is None:
        problems.append("the queue's storage cannot be reached")
    return problems


def system_health(db: Database, *, store_hash: str | None = None, stores: bool = True) -> SystemHealth:
    """The health detail: every queue, and every installed store (or only `store_hash`; none when
    `stores` is false). Raises LookupError for a store hash the app does not know."""
    now = utcnow()
    with db.session() as session:
        queues = [queue_health(session, model, now) for model in queued_models()]
        per_store = stores_health(session, now, store_hash) if stores else []
    if store_hash is not None and not per_store:
        raise LookupError(f"no store with hash {store_hash!r}")
    messages = queue_messages()
    return SystemHealth(now, queues, messages, per_store, _system_problems(queues, messages))


# -- gauges for /metrics ---------------------------------------------------------------------------


def health_gauges(db: Database) -> list[Gauge]:
    """What `/metrics` reads at each scrape: queue depth by state, the oldest due row's age, the
    queue's messages, stores installed and paused by reason. A database that cannot be read gives
    `smbc_database_up 0` (and no other database gauges) rather than a failed scrape."""
    now = utcnow()
    messages = queue_messages()
    gauges = [
        Gauge("smbc_queue_up", "1 when the queue's storage answers", 1.0 if messages is not None else 0.0),
        Gauge("smbc_queue_messages", "Messages in the queue's storage", float(messages or 0)),
    ]
    try:
        with db.session() as session:
            queues = [queue_health(session, model, now) for model in queued_models()]
            paused = dict(
                session.execute(
                    select(Store.sync_paused_reason, func.count())
                    .where(Store.status == "installed", Store.sync_paused_reason.is_not(None))
                    .group_by(Store.sync_paused_reason)
                ).all()  # type: ignore[arg-type]
            )
            installed = session.scalar(select(func.count()).where(Store.status == "installed"))
    except SQLAlchemyError:
        return [*gauges, Gauge("smbc_database_up", "1 when the database answers", 0.0)]
    gauges.append(Gauge("smbc_database_up", "1 when the database answers", 1.0))
    gauges.extend(_queue_gauges(queues))
    gauges.append(Gauge("smbc_stores_installed", "Installed stores", float(installed or 0)))
    reasons = [reason.value for reason in PauseReason] + sorted(set(paused) - {r.value for r in PauseReason})
    gauges.extend(
        Gauge(
            "smbc_stores_paused",
            "Installed stores whose sync is paused, by reason",
            float(paused.get(r, 0)),
            {"reason": r},
        )
        for r in reasons
    )
    return gauges


def _queue_gauges(queues: Sequence[QueueHealth]) -> list[Gauge]:
    gauges = []
    for queue in queues:
        for state in ("due", "scheduled", "processing", "waiting"):
            gauges.append(
                Gauge(
                    "smbc_queue_rows",
                    "Open rows of each table of queued work, by state",
                    float(getattr(queue, state)),
                    {"queue": queue.queue, "state": state},
                )
            )
        gauges.append(
            Gauge(
                "smbc_queue_oldest_due_age_seconds",
                "How long the oldest due row of each queue has waited for a worker (0: none due)",
                queue.oldest_due_age_s or 0.0,
                {"queue": queue.queue},
            )
        )
    return gauges
