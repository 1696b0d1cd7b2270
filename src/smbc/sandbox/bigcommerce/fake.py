"""`FakeBigCommerce`: the stores, the app's OAuth grants and tokens, callbacks to the app, events."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import jwt

from smbc.core.clock import Clock, get_clock
from smbc.sandbox.bigcommerce.admin import Admin
from smbc.sandbox.bigcommerce.catalog import add_built_in_catalog, seed_products
from smbc.sandbox.bigcommerce.seeder import seed_store
from smbc.sandbox.bigcommerce.state import (
    Channel,
    Grant,
    Hook,
    Site,
    StoreState,
    Token,
    User,
)
from smbc.sandbox.bigcommerce.storefront import Storefront
from smbc.sandbox.bigcommerce.webhooks import Delivery, Event, Target, WebhookDispatcher, payload_hash

# Scopes the fake's app profile grants unless `set_app_scopes` says otherwise: what an app reading
# customers, orders, carts, channels and products and writing subscribers and scripts asks for.
DEFAULT_APP_SCOPES: tuple[str, ...] = (
    "store_v2_customers",
    "store_v2_orders_read_only",
    "store_v2_transactions_read_only",
    "store_cart_read_only",
    "store_v2_content",
    "store_v2_information_read_only",
    "store_channel_settings_read_only",
    "store_sites_read_only",
    "store_v2_products_read_only",
)
CODE_LIFETIME_S = 600
JWT_LIFETIME_S = 24 * 3600


@dataclass
class Faults:
    """Knobs read on every REST request; change them at any time."""

    latency_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered 500
    rate_limit_without_headers: float = 0.0  # share answered 429 without any X-Rate-Limit-* header
    timeout_rate: float = 0.0  # share that hang for `timeout_s` (longer than any sane client timeout)
    timeout_s: float = 30.0
    # While true, REST requests wait at the door, counted as in flight (tests observe concurrency).
    hold: bool = False


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


def scope_matches(hook_scope: str, event_scope: str) -> bool:
    if hook_scope == event_scope:
        return True
    if not hook_scope.endswith("/*"):
        return False
    prefix = hook_scope[:-1]
    if not event_scope.startswith(prefix):
        return False
    if prefix == "store/channel/":
        # `store/channel/*` is about channels themselves, not the channel-scoped cart/order events.
        return not event_scope.split("/")[2].isdigit()
    return True


class FakeBigCommerce:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        app_url: str = "http://127.0.0.1:8000",
        clock: Clock | None = None,
        account_uuid: str = "5c6ab7a3-0d4e-4c0b-a6c3-5f0f0a1b2c3d",
    ) -> None:
        if not client_secret:
            raise ValueError("client_secret must not be empty (an empty key makes JWTs forgeable)")
        self.client_id = client_id
        self.client_secret = client_secret
        self.app_url = app_url.rstrip("/")
        self.account_uuid = account_uuid
        self._clock = clock
        self.base_url = "http://127.0.0.1:8100"
        self.lock = threading.RLock()
        self.stores: dict[str, StoreState] = {}
        self.grants: dict[str, Grant] = {}
        self.app_scopes: tuple[str, ...] = DEFAULT_APP_SCOPES
        self.faults = Faults()
        self.closing = False
        self.requests_by_store: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.over_quota: Counter[str] = Counter()  # requests refused for the store's quota, by store
        self.in_flight: Counter[str] = Counter()
        # The most requests a store received (refused ones too) in one of its quota windows as the fake
        # counts them, and in any span of the window's length (sliding): what a benchmark holds the
        # app's limiter to. The arrivals of the last span are all that is kept.
        self.busiest_quota_window: Counter[str] = Counter()
        self.busiest_sliding_window: Counter[str] = Counter()
        self._arrivals: dict[str, deque[float]] = {}
        self.held: list[str] = []  # URLs of the requests waiting at the door while faults.hold
        self.webhooks = WebhookDispatcher(
            self._hooks_for, self._hook_active, self._deactivate_hook, self._delivery_failed
        )
        # (store, destination) -> when the last store/hook/deliveryException 90001 went out (monotonic).
        self._exceptions_sent: dict[tuple[str, str], float] = {}
        self._store_numbers = iter(range(1_000_001, 10_000_000))
        self._user_ids = iter(range(1001, 10_000_000))
        self.default_store_hash = self.add_store("sbx1demo", name="Sandbox Demo Store")
        # Here, not at the top: the API module imports this one's OAuthError.
        from smbc.sandbox.bigcommerce.api import create_app

        self.app = create_app(self)

    # -- time and URLs ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Record time (dates on rows and webhooks): the given clock, else the process clock."""
        return (self._clock or get_clock()).now().astimezone(UTC)

    def monotonic(self) -> float:
        """Quota windows: the given clock, else real time (a frozen process clock would never refill)."""
        return self._clock.monotonic() if self._clock else time.monotonic()

    def bind(self, base_url: str) -> None:
        """Tell the fake its own URL (for storefront/site URLs and links); call after the server starts."""
        self.base_url = base_url.rstrip("/")

    @property
    def api_url(self) -> str:
        """What the product uses as SMBC_BC_API_URL (and SMBC_BC_LOGIN_URL): the fake's own base."""
        return self.base_url

    def storefront_url(self, store_hash: str, channel_id: int) -> str:
        return f"{self.base_url}/storefront/{store_hash}/{channel_id}"

    def api_base(self, store_hash: str) -> str:
        return f"{self.base_url}/stores/{store_hash}"

    # -- stores ----------------------------------------------------------------------------------------

    def add_store(
        self,
        store_hash: str | None = None,
        name: str | None = None,
        owner_email: str | None = None,
        staff_email: str | None = None,
    ) -> str:
        """A store with owner, staff user, channels 1 and 2 with sites, and products; returns its hash."""
        with self.lock:
            number = next(self._store_numbers)
            store_hash = store_hash or f"sbx{number:07d}"[-10:]
            if store_hash in self.stores:
                raise ValueError(f"store {store_hash} exists")
            first = not self.stores
            owner = User(
                next(self._user_ids),
                owner_email or ("owner@sandbox.test" if first else f"owner+{store_hash}@sandbox.test"),
                "Sandbox Owner",
            )
            staff = User(
                next(self._user_ids),
                staff_email or ("staff@sandbox.test" if first else f"staff+{store_hash}@sandbox.test"),
                "Sandbox Staff",
            )
            now = self.now()
            store = StoreState(
                hash=store_hash,
                store_id=number,
                name=name or f"Sandbox Store {store_hash}",
                owner=owner,
                users={owner.id: owner, staff.id: staff},
                created=now,
            )
            for channel_id, channel_name in ((1, store.name), (2, f"{store.name} Outlet")):
                store.channels[channel_id] = Channel(channel_id, channel_name, now, now)
                site_id = 1000 + channel_id - 1
                store.sites[site_id] = Site(site_id, channel_id, now, now)
            add_built_in_catalog(store, now)
            self.stores[store_hash] = store
            return store_hash

    def store(self, store_hash: str) -> StoreState:
        try:
            return self.stores[store_hash]
        except KeyError:
            raise KeyError(f"no store {store_hash!r} in the fake BigCommerce") from None

    def set_quota(self, store_hash: str, requests: int = 450, window_s: float = 30.0) -> None:
        with self.lock:
            quota = self.store(store_hash).quota
            quota.requests, quota.window_s, quota.window_started, quota.used = requests, window_s, None, 0
            quota.received = 0
            # A new quota: its busiest windows are counted afresh.
            self.busiest_quota_window.pop(store_hash, None)
            self.busiest_sliding_window.pop(store_hash, None)
            self._arrivals.pop(store_hash, None)

    def record_arrival(self, store_hash: str) -> None:
        """A request reached the store's API: counted in the sliding span of the quota's window."""
        with self.lock:
            now = self.monotonic()
            arrivals = self._arrivals.setdefault(store_hash, deque())
            arrivals.append(now)
            window_s = self.stores[store_hash].quota.window_s
            while arrivals[0] <= now - window_s:
                arrivals.popleft()
            busiest = max(self.busiest_sliding_window[store_hash], len(arrivals))
            self.busiest_sliding_window[store_hash] = busiest

    # -- tokens and scopes -----------------------------------------------------------------------------

    def issue_token(self, store_hash: str, client_id: str, scopes: list[str] | tuple[str, ...]) -> str:
        """A token for another API account (e.g. to prove scripts and hooks are per client)."""
        with self.lock:
            value = secrets.token_hex(16)
            self.store(store_hash).tokens[value] = Token(value, client_id, frozenset(scopes))
            return value

    def access_token(self, store_hash: str) -> str | None:
        """The app's currently valid token for the store (None before install or after uninstall)."""
        with self.lock:
            return self.store(store_hash).app_token

    def set_app_scopes(self, scopes: list[str] | tuple[str, ...]) -> None:
        """Change the app profile's scopes: every app token stops working until the next install."""
        with self.lock:
            self.app_scopes = tuple(scopes)
            for store in self.stores.values():
                self._drop_app_token(store)

    def _drop_app_token(self, store: StoreState) -> None:
        if store.app_token:
            store.tokens.pop(store.app_token, None)
        store.app_token = None

    # -- OAuth -----------------------------------------------------------------------------------------

    @property
    def redirect_uri(self) -> str:
        return f"{self.app_url}/bigcommerce/auth"

    def new_grant(self, store_hash: str, user_id: int | None = None) -> Grant:
        with self.lock:
            store = self.store(store_hash)
            user_id = user_id or store.owner.id
            if user_id not in store.users:
                raise ValueError(f"user {user_id} has no access to store {store_hash}")
            grant = Grant(secrets.token_urlsafe(24), store_hash, user_id, self.app_scopes, time.time())
            self.grants[grant.code] = grant
            return grant

    def auth_callback_url(self, grant: Grant) -> str:
        query = httpx.QueryParams(
            code=grant.code,
            scope=" ".join(grant.scopes),
            context=f"stores/{grant.store_hash}",
            account_uuid=self.account_uuid,
        )
        return f"{self.redirect_uri}?{query}"

    def exchange_code(self, form: dict[str, Any]) -> dict[str, Any]:
        """`POST /oauth2/token`: check everything, spend the code, return the documented fields."""
        client_id = str(form.get("client_id") or "")
        client_secret = str(form.get("client_secret") or "")
        if not (
            hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise OAuthError(401, "invalid_client", "Invalid client id or client secret")
        if form.get("grant_type") != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be authorization_code")
        with self.lock:
            grant = self.grants.get(str(form.get("code") or ""))
            if grant is None or grant.used or time.time() - grant.issued_at > CODE_LIFETIME_S:
                raise OAuthError(
                    400, "invalid_grant", "The authorization code is invalid or was already used"
                )
            grant.used = True
            if form.get("redirect_uri") != self.redirect_uri:
                raise OAuthError(
                    400, "invalid_grant", "redirect_uri does not match the app's auth callback URL"
                )
            if form.get("context") not in (None, "", f"stores/{grant.store_hash}"):
                raise OAuthError(400, "invalid_grant", "context does not match the authorization code")
            store = self.store(grant.store_hash)
            token = store.tokens.get(store.app_token or "")
            if token is None or token.scopes != frozenset(grant.scopes):
                self._drop_app_token(store)
                value = secrets.token_hex(16)
                store.tokens[value] = Token(value, self.client_id, frozenset(grant.scopes))
                store.app_token = value
            store.installed = True
            user = store.users[grant.user_id]
            return {
                "access_token": store.app_token,
                "scope": " ".join(grant.scopes),
                "user": {"id": user.id, "username": user.username, "email": user.email},
                "owner": {"id": store.owner.id, "username": store.owner.username, "email": store.owner.email},
                "context": f"stores/{store.hash}",
                "account_uuid": self.account_uuid,
            }

    def signed_payload(self, store_hash: str, user_id: int | None = None, **claim_overrides: Any) -> str:
        """A `signed_payload_jwt` as BigCommerce makes it (HS256, client secret); claims can be overridden."""
        with self.lock:
            store = self.store(store_hash)
            user = store.users.get(user_id or store.owner.id) or User(
                user_id or 0, "unknown@sandbox.test", ""
            )
            now = int(time.time())
            claims: dict[str, Any] = {
                "aud": self.client_id,
                "iss": "bc",
                "iat": now,
                "nbf": now,
                "exp": now + JWT_LIFETIME_S,
                "jti": str(uuid.uuid4()),
                "sub": f"stores/{store_hash}",
                "user": {"id": user.id, "email": user.email, "locale": user.locale},
                "owner": {"id": store.owner.id, "email": store.owner.email},
                "url": "/",
                "channel_id": None,
            }
        claims.update(claim_overrides)
        return jwt.encode(claims, self.client_secret, algorithm="HS256")

    def load_url(
        self, store_hash: str, user_id: int | None = None, channel_id: int | None = None, url: str = "/"
    ) -> str:
        token = self.signed_payload(store_hash, user_id, channel_id=channel_id, url=url)
        return f"{self.app_url}/bigcommerce/load?signed_payload_jwt={token}"

    # -- callbacks to the app (server to server, as the browser / BigCommerce would) -------------------

    def install(self, store_hash: str, user_id: int | None = None) -> httpx.Response:
        """Issue a one-time code and GET the app's auth callback with it (the app exchanges it here)."""
        grant = self.new_grant(store_hash, user_id)
        with httpx.Client(timeout=60) as client:
            return client.get(self.auth_callback_url(grant))

    def load(
        self, store_hash: str, user_id: int | None = None, channel_id: int | None = None, url: str = "/"
    ) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.get(self.load_url(store_hash, user_id, channel_id, url))

    def uninstall(self, store_hash: str, user_id: int | None = None) -> httpx.Response:
        """Uninstall: token revoked, the app's hooks and auto-uninstall scripts deleted, then the callback.

        As on BigCommerce, the uninstall happens even when the app's callback fails."""
        token = self.signed_payload(store_hash, user_id)
        with self.lock:
            store = self.store(store_hash)
            self._drop_app_token(store)
            store.installed = False
            for hook_id in [h.id for h in store.hooks.values() if h.client_id == self.client_id]:
                del store.hooks[hook_id]
            for script_uuid in [
                s.uuid for s in store.scripts.values() if s.client_id == self.client_id and s.auto_uninstall
            ]:
                del store.scripts[script_uuid]
            store.touch()
        with httpx.Client(timeout=60) as client:
            return client.get(f"{self.app_url}/bigcommerce/uninstall", params={"signed_payload_jwt": token})

    def remove_user(self, store_hash: str, user_id: int | None = None) -> httpx.Response:
        """The owner revokes a user's access (default: the staff user): the remove-user callback."""
        with self.lock:
            store = self.store(store_hash)
            user_id = user_id or next(u for u in store.users if u != store.owner.id)
        token = self.signed_payload(store_hash, user_id)
        with httpx.Client(timeout=60) as client:
            return client.get(f"{self.app_url}/bigcommerce/remove-user", params={"signed_payload_jwt": token})

    # -- shopper, admin, seeding -----------------------------------------------------------------------

    def storefront(self, store_hash: str, channel_id: int = 1) -> Storefront:
        return Storefront(self, store_hash, channel_id)

    def admin(self, store_hash: str) -> Admin:
        return Admin(self, store_hash)

    def seed(
        self,
        store_hash: str,
        customers: int = 0,
        orders: int = 0,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        seed: int = 1,
        subscribers: int | None = None,
        products: int = 0,
        products_with_variants: int = 0,
    ) -> dict[str, int]:
        """Bulk rows (no webhooks): customers, subscribers and orders, and `products` made on read."""
        with self.lock:
            store = self.store(store_hash)
            counts = seed_store(store, customers, orders, start, end, seed, subscribers)
            if products:
                counts.update(seed_products(store, products, products_with_variants, self.now()))
            return counts

    # -- events ----------------------------------------------------------------------------------------

    def emit(self, store: StoreState, scope: str, data: dict[str, Any], client_id: str | None = None) -> None:
        """Fire one webhook event (delivered on the background thread after the caller returns).

        `client_id` limits it to that API client's hooks (delivery exceptions are per client)."""
        payload = {
            "scope": scope,
            "store_id": str(store.store_id),
            "data": data,
            "hash": payload_hash(scope, data, self.webhooks.next_event_number()),
            "created_at": int(self.now().timestamp()),
            "producer": f"stores/{store.hash}",
        }
        self.webhooks.publish(Event(store.hash, scope, payload, client_id))

    def _hooks_for(self, event: Event) -> list[Target]:
        with self.lock:
            store = self.stores.get(event.store_hash)
            if store is None:
                return []
            return [
                Target(h.id, h.client_id, h.destination, dict(h.headers or {}))
                for h in store.hooks.values()
                if h.is_active
                and scope_matches(h.scope, event.scope)
                and (event.client_id is None or h.client_id == event.client_id)
            ]

    def _delivery_failed(self, delivery: Delivery, message: str, error_code: int) -> None:
        """`store/hook/deliveryException` to the client's exception hooks on other destinations: 90001 at
        most once per 10 minutes per destination, 90002 when retries ran out, 90003 when blocked."""
        if delivery.payload["scope"] == "store/hook/deliveryException":
            return
        key = (delivery.store_hash, delivery.destination)
        now = time.monotonic()
        with self.lock:
            if error_code == 90001:
                last = self._exceptions_sent.get(key)
                if last is not None and now - last < 600 * self.webhooks.retry_time_scale:
                    return
                self._exceptions_sent[key] = now
            store = self.stores.get(delivery.store_hash)
            listening = store is not None and any(
                h.scope == "store/hook/deliveryException"
                and h.client_id == delivery.target.client_id
                and h.destination != delivery.destination
                for h in store.hooks.values()
            )
            if not listening:
                return
            data = {"type": "webhook", "id": delivery.hook_id, "error_code": error_code, "message": message}
            assert store is not None
            self.emit(store, "store/hook/deliveryException", data, client_id=delivery.target.client_id)

    def _hook_active(self, store_hash: str, hook_id: int) -> bool:
        with self.lock:
            hook = self.stores[store_hash].hooks.get(hook_id)
            return hook is not None and hook.is_active

    def _deactivate_hook(self, store_hash: str, hook_id: int) -> None:
        with self.lock:
            hook: Hook | None = self.stores[store_hash].hooks.get(hook_id)
            if hook is not None:
                hook.is_active = False
                hook.deactivated = True
                hook.updated_at = int(self.now().timestamp())

    def close(self) -> None:
        """Stop the delivery thread and release hanging requests (servers are stopped by their owners)."""
        self.closing = True
        self.webhooks.close()
