"""Make BigCommerce's storefront scripts match the monitoring settings exactly.

One script per selected storefront channel (the Scripts API ties a script to one channel). The
planning is pure (`wanted_scripts`, `plan_scripts`). `sync_store` reads the saved state, then lists
what is live and applies the plan (no transaction open), then keeps `MonitoringScript` rows, which is
how a script deleted by the merchant in Script Manager is told apart from one we never installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.account.credentials import get_account
from smbc.bigcommerce.client import CallBuffer, for_store
from smbc.core.jobs import huey
from smbc.core.remote_calls import RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.monitoring.models import MonitoringScript
from smbc.monitoring.snippet import SnippetConfig, build_snippet, content_hash
from smbc.settings.store_settings import StoreSettings, load_store_settings

SCRIPT_NAME = "SALESmanago monitoring code"
SCRIPT_DESCRIPTION = (
    "SALESmanago tracking for this storefront. Managed by the SALESmanago app: change it on the app's "
    "Monitoring Code tab."
)
# BigCommerce allows each app 10 API-created scripts (per store or per channel is UNCONFIRMED:
# counting per store is the safe reading).
MAX_APP_SCRIPTS = 10
# Storefront channels that can show a script: live ones and ones being prepared for launch.
ACTIVE_CHANNEL_STATUSES = ("active", "prelaunch")
# Fields we set and compare; anything else BigCommerce returns (uuid, dates, api_client_id) is theirs.
MANAGED_FIELDS = (
    "name",
    "description",
    "html",
    "kind",
    "load_method",
    "location",
    "visibility",
    "consent_category",
    "enabled",
    "auto_uninstall",
    "channel_id",
)


class ScriptsApi(Protocol):
    """The Scripts API calls this module needs (BigCommerceClient provides them)."""

    def scripts(self) -> list[dict[str, Any]]: ...

    def create_script(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def update_script(self, uuid: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete_script(self, uuid: str) -> None: ...


class TooManyScripts(ValueError):
    """More storefronts selected than BigCommerce lets one app put scripts on."""


@dataclass(frozen=True)
class Account:
    """What the snippet needs from the connected SALESmanago account."""

    client_id: str
    endpoint: str
    smapp: str | int | None = None


@dataclass(frozen=True)
class ScriptPlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    error: str | None = None
    failure: RemoteCallError | None = None
    live: list[dict[str, Any]] = field(default_factory=list)  # our scripts after the sync

    @property
    def ok(self) -> bool:
        return self.error is None


# --- the store's storefronts ------------------------------------------------------------------------


def storefront_channels(store: Store) -> list[dict[str, Any]]:
    """Active storefront channels of the store (from the Store row), by id."""
    channels = []
    for channel in store.channels or []:
        if channel.get("type", "storefront") != "storefront":
            continue
        if channel.get("status", "active") not in ACTIVE_CHANNEL_STATUSES:
            continue
        if isinstance(channel.get("id"), int):
            channels.append(channel)
    if not channels:
        # A store whose channels were never read has its default storefront (always id 1).
        channels = [{"id": 1, "name": "Default storefront", "type": "storefront", "status": "active"}]
    return sorted(channels, key=lambda c: c["id"])


def selected_channel_ids(store: Store, settings: StoreSettings) -> list[int]:
    """The channels that should carry the code: all active storefronts, or the merchant's choice."""
    if not settings.monitoring_enabled:
        return []
    if settings.monitoring_channels == "all":
        return [c["id"] for c in storefront_channels(store)]
    return sorted(set(settings.monitoring_channels))


def check_script_cap(channel_ids: Sequence[int], other_scripts: int = 0) -> None:
    if len(channel_ids) + other_scripts > MAX_APP_SCRIPTS:
        taken = f" ({other_scripts} already used by other scripts of this app)" if other_scripts else ""
        raise TooManyScripts(
            f"BigCommerce allows at most {MAX_APP_SCRIPTS} scripts per app{taken}: the monitoring code "
            f"cannot go to {len(channel_ids)} storefronts. Select at most "
            f"{MAX_APP_SCRIPTS - other_scripts} storefronts."
        )


# --- pure planning ----------------------------------------------------------------------------------


def script_body(channel_id: int, html: str, consent_category: str) -> dict[str, Any]:
    return {
        "name": SCRIPT_NAME,
        "description": SCRIPT_DESCRIPTION,
        "html": html,
        "kind": "script_tag",
        "load_method": "default",  # the only method allowed for script_tag
        "location": "footer",
        "visibility": "storefront",
        "consent_category": consent_category,
        "enabled": True,
        "auto_uninstall": True,
        "channel_id": channel_id,
    }


def wanted_scripts(
    channel_ids: Iterable[int], settings: StoreSettings, account: Account, *, store_hash: str, app_url: str
) -> dict[int, dict[str, Any]]:
    """The body of the script each selected channel should have."""
    wanted = {}
    for channel_id in channel_ids:
        html = build_snippet(
            SnippetConfig(
                client_id=account.client_id,
                endpoint=account.endpoint,
                smapp=account.smapp,
                store_hash=store_hash,
                channel_id=channel_id,
                app_url=app_url,
                custom_script=settings.monitoring_custom_script,
                banners=settings.monitoring_banners,
                popups=settings.monitoring_popups,
                cookie_days=settings.monitoring_cookie_days,
            )
        )
        wanted[channel_id] = script_body(channel_id, html, settings.monitoring_consent_category)
    return wanted


def is_ours(script: dict[str, Any]) -> bool:
    return script.get("name") == SCRIPT_NAME


def differs(live: dict[str, Any], body: dict[str, Any]) -> bool:
    return any(live.get(key) != body[key] for key in MANAGED_FIELDS if key in body)


def plan_scripts(wanted: dict[int, dict[str, Any]], live: Sequence[dict[str, Any]]) -> ScriptPlan:
    """Creates, updates and deletes that turn our live scripts into exactly the wanted set."""
    plan = ScriptPlan()
    kept: set[int] = set()
    for script in live:
        if not is_ours(script):
            continue
        channel_id = script.get("channel_id")
        if channel_id not in wanted or channel_id in kept:
            plan.delete.append(script["uuid"])  # unselected channel, or a duplicate on one
            continue
        kept.add(channel_id)
        if differs(script, wanted[channel_id]):
            plan.update.append((script["uuid"], wanted[channel_id]))
    plan.create.extend(body for channel_id, body in sorted(wanted.items()) if channel_id not in kept)
    return plan


# --- applying it: read, then call BigCommerce, then write ---------------------------------------------


def load_account(session: Session, store: Store) -> Account | None:
    """The connected SALESmanago account of the store, or None while not connected."""
    row = get_account(session, store.id)
    if row is None:
        return None
    return Account(client_id=row.client_id, endpoint=row.endpoint, smapp=row.smapp)


def load_settings(session: Session, store: Store) -> StoreSettings:
    return load_store_settings(session, store.id)


@dataclass(frozen=True)
class SavedState:
    """What a sync or a check reads in one short transaction, before any BigCommerce call."""

    store: Store  # detached: read only
    settings: StoreSettings
    account: Account | None
    installed: dict[int, MonitoringScript]  # detached rows: our scripts since the last install


def read_saved_state(session: Session, store: Store) -> SavedState:
    return SavedState(
        store, load_settings(session, store), load_account(session, store), installed_rows(session, store)
    )


def wanted_for(state: SavedState, app_url: str, *, over_cap: str = "raise") -> dict[int, dict[str, Any]]:
    """The script each selected channel should carry; none without a SALESmanago account (what is
    there comes off). More channels than BigCommerce allows: TooManyScripts, or `over_cap="cut"`."""
    if state.account is None:
        return {}
    channel_ids = selected_channel_ids(state.store, state.settings)
    if over_cap == "cut":
        channel_ids = channel_ids[:MAX_APP_SCRIPTS]
    check_script_cap(channel_ids)
    return wanted_scripts(
        channel_ids, state.settings, state.account, store_hash=state.store.hash, app_url=app_url
    )


@dataclass
class AppliedSteps:
    """The script changes BigCommerce took, in order, to be written to our table afterwards."""

    kept: list[tuple[int, str, str]] = field(default_factory=list)  # (channel id, uuid, html) in order
    deleted: list[tuple[Any, str]] = field(default_factory=list)  # (channel id, uuid)
    unchanged: list[tuple[int, str, str]] = field(default_factory=list)
    planned: bool = False  # every planned step went through


def apply_scripts(api: ScriptsApi, wanted: dict[int, dict[str, Any]], result: SyncResult) -> AppliedSteps:
    """The BigCommerce half of a sync: list, then create, update and delete to match `wanted`.

    Makes no database call. A remote failure stops it and lands in `result`; the steps before it
    are in the answer, so the next sync continues from there."""
    steps = AppliedSteps()
    try:
        live = api.scripts()
        check_script_cap(list(wanted), other_scripts=sum(1 for s in live if not is_ours(s)))
        plan = plan_scripts(wanted, live)
        by_uuid = {s["uuid"]: s for s in live}
        for uuid in plan.delete:
            api.delete_script(uuid)
            result.deleted += 1
            steps.deleted.append((by_uuid[uuid].get("channel_id"), uuid))
        for uuid, body in plan.update:
            api.update_script(uuid, body)
            result.updated += 1
            steps.kept.append((body["channel_id"], uuid, body["html"]))
        for body in plan.create:
            created = api.create_script(body)
            result.created += 1
            steps.kept.append((body["channel_id"], created["uuid"], body["html"]))
        for script in live:
            channel_id = script.get("channel_id")
            if is_ours(script) and script["uuid"] not in plan.delete and channel_id in wanted:
                steps.unchanged.append((channel_id, script["uuid"], script.get("html", "")))
        steps.planned = True
        result.live = [s for s in api.scripts() if is_ours(s)]
    except RemoteCallError as exc:
        result.error = f"BigCommerce did not take the change: {exc.message}"
        result.failure = exc
    return steps


def track_scripts(
    session: Session, store_id: int, wanted: dict[int, dict[str, Any]], steps: AppliedSteps
) -> None:
    """The database half of a sync: our table follows what BigCommerce took."""
    rows = _rows_by_channel(session, store_id)
    for channel_id, uuid in steps.deleted:
        row = rows.get(channel_id)
        if row is not None and row.script_uuid == uuid:
            session.delete(row)
            rows.pop(row.channel_id)
    for channel_id, uuid, html in steps.kept:
        _remember(session, store_id, rows, channel_id, uuid, html)
    if not steps.planned:
        return
    # Unchanged live scripts: make sure the table knows them (e.g. after a lost transaction).
    for channel_id, uuid, html in steps.unchanged:
        row = rows.get(channel_id)
        if row is None or row.script_uuid != uuid:
            _remember(session, store_id, rows, channel_id, uuid, html)
    for channel_id, row in list(rows.items()):
        if channel_id not in wanted:
            session.delete(row)  # not wanted any more and not live: nothing left to track


def installed_rows(session: Session, store: Store) -> dict[int, MonitoringScript]:
    """Our scripts since the app was last installed: BigCommerce removed older ones with the app
    (`auto_uninstall`), so their absence is not the merchant's doing."""
    return {
        channel_id: row
        for channel_id, row in _rows_by_channel(session, store.id).items()
        if row.updated_at is None or store.installed_at is None or row.updated_at >= store.installed_at
    }


def _rows_by_channel(session: Session, store_id: int) -> dict[int, MonitoringScript]:
    rows = session.scalars(select(MonitoringScript).where(MonitoringScript.store_id == store_id))
    return {row.channel_id: row for row in rows}


def _remember(
    session: Session,
    store_id: int,
    rows: dict[int, MonitoringScript],
    channel_id: int,
    uuid: str,
    html: str,
) -> None:
    row = rows.get(channel_id)
    if row is None:
        row = MonitoringScript(store_id=store_id, channel_id=channel_id, script_uuid=uuid, content_hash="")
        session.add(row)
        rows[channel_id] = row
    row.script_uuid = uuid
    row.content_hash = content_hash(html)


# --- what is live, and what is wrong --------------------------------------------------------------


@dataclass(frozen=True)
class ChannelScript:
    channel_id: int
    channel_name: str
    state: str  # live | outdated | missing | not_installed
    html: str = ""  # as read back from BigCommerce
    consent_category: str = ""

    @property
    def problem(self) -> str | None:
        if self.state == "missing":
            return f"missing on channel {self.channel_id}"
        if self.state == "not_installed":
            return f"not installed on channel {self.channel_id}"
        if self.state == "outdated":
            return f"changed outside the app on channel {self.channel_id}"
        return None


@dataclass(frozen=True)
class MonitoringStatus:
    channels: list[ChannelScript]
    extra: list[dict[str, Any]]  # our scripts on channels that should not have one

    @property
    def problems(self) -> list[str]:
        found = [c.problem for c in self.channels if c.problem]
        found += [f"not removed from channel {s.get('channel_id')}" for s in self.extra]
        return found

    @property
    def restorable(self) -> bool:
        return bool(self.problems)


def describe_status(
    store: Store,
    wanted: dict[int, dict[str, Any]],
    live: Sequence[dict[str, Any]],
    rows: dict[int, MonitoringScript],
) -> MonitoringStatus:
    """Compare the wanted scripts with what BigCommerce lists (pure)."""
    names = {c.get("id"): c.get("name") or f"Channel {c.get('id')}" for c in store.channels or []}
    ours: dict[int, dict[str, Any]] = {}
    extra: list[dict[str, Any]] = []
    for script in live:
        if not is_ours(script):
            continue
        channel_id = script.get("channel_id")
        if channel_id in wanted and channel_id not in ours:
            ours[channel_id] = script
        else:
            extra.append(script)
    channels = []
    for channel_id, body in sorted(wanted.items()):
        name = names.get(channel_id) or f"Channel {channel_id}"
        script = ours.get(channel_id)
        if script is None:
            state = "missing" if channel_id in rows else "not_installed"
            channels.append(ChannelScript(channel_id, name, state))
            continue
        state = "outdated" if differs(script, body) else "live"
        channels.append(
            ChannelScript(channel_id, name, state, script.get("html", ""), script.get("consent_category", ""))
        )
    return MonitoringStatus(channels=channels, extra=extra)


# --- entry points: each opens its own short transactions, never one around a BigCommerce call ---------

NOT_INSTALLED = "the app is not installed on this store"


class StorefrontsApi(ScriptsApi, Protocol):
    def channels(self) -> list[dict[str, Any]]: ...

    def sites(self) -> list[dict[str, Any]]: ...


def _installed_store(db: Database, store_id: int) -> Store | None:
    with db.session() as session:
        store = session.get(Store, store_id)
        return store if store is not None and store.installed else None


def _flush(db: Database, calls: CallBuffer) -> None:
    if calls.calls:
        with db.session() as session:
            calls.flush(session)


def _refresh(db: Database, store_id: int, api: StorefrontsApi) -> None:
    """Re-read the store's channels and sites, then keep them in a short transaction. Every store has
    channel 1, so an empty answer is not believed (the stored lists are kept)."""
    channels = api.channels()
    sites = api.sites() if channels else []
    if not channels:
        return
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is not None:
            store.channels = channels
            if sites:
                store.sites = sites


def refresh_storefronts(db: Database, store_id: int) -> None:
    """The store's channels and sites as BigCommerce has them now, so "all storefronts" and the
    cart-link origins are current. Records its calls; raises RemoteCallError."""
    store = _installed_store(db, store_id)
    if store is None:
        return
    calls = CallBuffer()
    try:
        _refresh(db, store_id, for_store(store, recorder=calls, context="monitoring"))
    finally:
        _flush(db, calls)


def sync_store(
    db: Database, store_id: int, *, app_url: str, refresh: bool = False, api: StorefrontsApi | None = None
) -> SyncResult:
    """Make BigCommerce match the store's saved monitoring settings (save, restore, log in/out).

    The saved state is read first, the BigCommerce calls come after that transaction, and one last
    short transaction writes our table and the call records. TooManyScripts is raised before any
    change. `refresh` re-reads the store's channels and sites first ("all storefronts" as they are
    now). `api` replaces the store's client (its calls are then recorded by its own recorder)."""
    calls = CallBuffer()
    steps: AppliedSteps | None = None
    wanted: dict[int, dict[str, Any]] = {}
    try:
        store = _installed_store(db, store_id)
        if store is None:
            return SyncResult(error=NOT_INSTALLED)
        api = api or for_store(store, recorder=calls, context="monitoring")
        if refresh:
            _refresh(db, store_id, api)
        with db.session() as session:
            store = session.get(Store, store_id)
            if store is None or not store.installed:
                return SyncResult(error=NOT_INSTALLED)
            state = read_saved_state(session, store)
        wanted = wanted_for(state, app_url)
        result = SyncResult()
        steps = apply_scripts(api, wanted, result)
        return result
    except RemoteCallError as exc:
        return SyncResult(error=f"BigCommerce did not take the change: {exc.message}", failure=exc)
    finally:
        if steps is not None or calls.calls:
            with db.session() as session:
                calls.flush(session)
                if steps is not None:
                    track_scripts(session, store_id, wanted, steps)


def live_status(
    db: Database, store_id: int, *, app_url: str, context: str = "monitoring", api: ScriptsApi | None = None
) -> MonitoringStatus | None:
    """What is live now (one Scripts API read, after the saved state was read) against the saved
    settings; None when the app is not installed. Records its call; raises RemoteCallError."""
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            return None
        state = read_saved_state(session, store)
    calls = CallBuffer()
    try:
        live = (api or for_store(state.store, recorder=calls, context=context)).scripts()
    finally:
        _flush(db, calls)
    return describe_status(state.store, wanted_for(state, app_url, over_cap="cut"), live, state.installed)


def check_monitoring(store_id: int) -> list[str]:
    """For the health check: the monitoring-code problems of one store, read live from BigCommerce
    (e.g. ["missing on channel 2"]); a BigCommerce failure is itself a problem."""
    runtime = get_runtime()
    try:
        status = live_status(runtime.db, store_id, app_url=runtime.settings.app_url, context="health")
    except RemoteCallError as exc:
        return [f"could not be checked: {exc.message}"]
    return status.problems if status is not None else []


def install_on_new_channel(
    db: Database,
    store_id: int,
    channel_id: int,
    *,
    app_url: str,
    api: StorefrontsApi | None = None,
) -> None:
    """`store/channel/created`: the new storefront gets the code when the merchant chose "all" (and
    the channel is an active storefront; re-reading the channels tells). Call it outside any
    transaction: it opens its own short ones. A retryable failure is raised, so the delivery is
    tried again later (any failure to re-read the channels too)."""
    store = _installed_store(db, store_id)
    if store is None:
        return
    with db.session() as session:
        settings = load_settings(session, store)
    if not settings.monitoring_enabled or settings.monitoring_channels != "all":
        return
    calls = CallBuffer()
    try:
        api = api or for_store(store, recorder=calls, context=f"channel-created:{channel_id}")
        _refresh(db, store_id, api)
        result = sync_store(db, store_id, app_url=app_url, api=api)
    finally:
        _flush(db, calls)
    if result.failure is not None and result.failure.outcome.retryable:
        raise result.failure


@huey.task()
def monitoring_sync_task(store_id: int) -> bool:
    """Queue a sync (e.g. after logging in to or out of SALESmanago): carries only the store's id."""
    runtime = get_runtime()
    result = sync_store(runtime.db, store_id, app_url=runtime.settings.app_url, refresh=True)
    if result.failure is not None and result.failure.outcome.retryable:
        raise result.failure  # Huey records it; the merchant's next save or restore tries again
    return result.ok
