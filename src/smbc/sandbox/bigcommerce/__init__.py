"""A fake BigCommerce for tests, `smbc demo` and `smbc sandbox`: OAuth and control-panel callbacks,
the REST API (shapes of BigCommerce's OpenAPI specs, including the awkward parts), rate limits,
faults, webhooks with BigCommerce's retry ladder, storefront pages and a fast seeder.

It imports nothing from the product (`smbc.bigcommerce`, `smbc.salesmanago`, `smbc.sync`, `smbc.web`).

Starting it
-----------
    from smbc.core.http_server import BackgroundServer
    from smbc.sandbox.bigcommerce import FakeBigCommerce

    bc = FakeBigCommerce(client_id="...", client_secret="...", app_url="http://127.0.0.1:8000", clock=None)
    with BackgroundServer(bc.app) as server:
        bc.bind(server.url)            # its own URL: storefront/site URLs and links are built from it
        ...                            # product settings: SMBC_BC_API_URL = SMBC_BC_LOGIN_URL = server.url
    bc.close()                         # stops the webhook thread, releases hanging (timeout-fault) requests

`clock`: dates on rows and webhook `created_at` come from this clock (default: `smbc.core.clock.get_clock()`,
so a test's `FakeClock` applies); quota windows use it too when given, else real monotonic time.
JWT `iat`/`exp` always use real time (apps verify them against the wall clock).

Stores
------
    bc.default_store_hash          "sbx1demo": owner user 1001 owner@sandbox.test, staff user 1002
                                   staff@sandbox.test, storefront channels 1 and 2 with sites 1000/1001 at
                                   {base}/storefront/{hash}/{channel_id}, 15 order statuses, and a catalog:
                                   77-81 on both channels (SKUs MUG-01, TEE-01, PST-01, HOOD-01, NOTE-01;
                                   variant ids 177-181: what carts and seeded orders hold), 82 Sandbox
                                   Sneakers with a Size option (variants 182-184, SNK-01-S/M/L, stock per
                                   variant, L dearer), 83 TOTE-01 (channel 1 only, on sale), 84 UMB-01
                                   (channel 2 only, on sale), 85 WRAP-01 (not visible); categories 20-27 in
                                   tree 1 (both channels), brands 31-32; HTML descriptions, custom URLs,
                                   1-3 images each (served as PNGs at {base}/product_images/...)
    bc.add_store(store_hash=None, name=None, owner_email=None, staff_email=None) -> hash
                                   same layout; each store has its own owner/staff user ids
    bc.store(hash) -> StoreState   .customers/.subscribers/.orders/.refunds/.channels/.sites/.products
                                   (dicts by id), .carts/.scripts (by uuid), .hooks (by id), .converted_carts,
                                   .tokens, .installed, .app_token, .store_id (numeric, = webhook store_id)
    bc.lock                        hold it while reading StoreState from another thread
    bc.seed(hash, customers=N, orders=N, start=date, end=date, seed=1, subscribers=None) -> counts
                                   deterministic; each customer gets an address and a subscriber record
                                   (about 60 % with marketing_newsletter consent); orders ~20 % guests,
                                   ~5 % refunded (one refund each, made when the order last changed);
                                   no webhooks; 100,000 of each in seconds
    bc.seed(hash, products=N, products_with_variants=M)   N bulk products (ids from 100000, SKUs
                                   BULK-{id}), M of them with sizes S/M/L (SKUs BULK-{id}-S...), every tenth
                                   on channel 2 only and the next on channel 1 only; made on read, so
                                   50,000 cost nothing until read; date_modified one second apart up to now

OAuth and callbacks (server to server with httpx, as the browser / BigCommerce would)
--------------------------------------------------------------------------------------
    bc.install(hash, user_id=None) -> httpx.Response   user_id None = the store owner. Issues a one-time
        code and GETs {app_url}/bigcommerce/auth?code&scope&context=stores/{hash}&account_uuid. The app then
        POSTs {base}/oauth2/token (JSON or form) with client_id, client_secret, code, scope, context,
        grant_type=authorization_code, redirect_uri={app_url}/bigcommerce/auth; answer: access_token, scope,
        user{id,username,email}, owner{id,username,email}, context, account_uuid. Errors: 401
        invalid_client; 400 invalid_grant (unknown/used/expired code, wrong redirect_uri or context);
        400 unsupported_grant_type. The token is reused across re-installs while scopes are unchanged.
    bc.load(hash, user_id=None, channel_id=None, url="/") -> httpx.Response   GET {app_url}/bigcommerce/load
    bc.load_url(...) -> str        the same URL (for a browser)
    bc.signed_payload(hash, user_id=None, **claim_overrides) -> str   HS256 with the client secret; claims
        aud, iss="bc", iat, nbf=iat, exp=iat+24h, jti, sub="stores/{hash}", user{id,email,locale},
        owner{id,email}, url, channel_id
    bc.uninstall(hash, user_id=None) -> httpx.Response   token revoked, the app's hooks and auto_uninstall
        scripts deleted, then GET {app_url}/bigcommerce/uninstall?signed_payload_jwt
    bc.remove_user(hash, user_id=None) -> httpx.Response   (default: the staff user)
        GET {app_url}/bigcommerce/remove-user?signed_payload_jwt
    bc.access_token(hash) -> str | None     the app's currently valid token
    bc.set_app_scopes([...])       changing scopes revokes every app token; the next install issues a new one
    bc.app_scopes                  default DEFAULT_APP_SCOPES
    bc.issue_token(hash, client_id, scopes) -> str   a token of another API account (scripts/hooks are
                                   visible only to the client that created them)

Shopper actions (each fires its webhooks; results are API-shaped dicts)
-----------------------------------------------------------------------
    sf = bc.storefront(hash, channel_id=1)
    sf.register(email, first_name, last_name, newsletter=False, phone="", company="", address=None)
        -> customer
        customer/created (+ customer/address/created when `address` is a dict, {} = defaults;
        + subscriber/created with consents [marketing_newsletter] when newsletter)
    sf.update_customer(customer_id, **fields) -> customer           customer/updated
    sf.add_address(customer_id, **fields) -> address                customer/address/created
    sf.subscribe(email, first_name="", last_name="") -> subscriber  subscriber/created or /updated
    sf.unsubscribe(email) -> subscriber | None                      consents [] (record kept),
                                                                    subscriber/updated
    sf.add_to_cart(cart_id=None, product_id=77, quantity=1, customer_id=None, variant_id=None) -> cart
        (v3 `data`; the line is the product's default variant, or `variant_id`, at its sale price if any)
        new cart: cart/created; new line: cart/lineItem/created; same product again: lineItem/updated;
        always cart/updated. Plus channel-scoped store/channel/{id}/cart/... events
        (data {cart_id[, cart_item_id]}).
    sf.update_item(cart_id, item_id, quantity) / sf.remove_item(cart_id, item_id) (last item: cart/deleted,
        returns None) / sf.set_cart_email(cart_id, email) / sf.get_cart(cart_id)
    sf.abandon(cart_id) -> token   cart/abandoned {type, id, token} (as after an hour without changes);
        GET /v3/abandoned-carts/{token} -> {data: {cart_id}}
    sf.checkout(cart_id, customer_id=None, guest_email=None, newsletter=False, billing=None) -> order (v2)
        order/created, cart/converted {orderId} (the cart is gone: GET /v3/carts/{id} is 404),
        order/statusUpdated 0 -> 11; status 11, shipping 5.00, is_email_opt_in=newsletter; the items
        leave stock (not below 0): product/inventory/order/updated, or sku/inventory/order/updated for a
        product with options, {..., inventory{product_id, method "relative", value: the change}}.
        Like BigCommerce, the email gets a subscriber record even without the box ticked (consents []);
        with the box: consents [marketing_newsletter] (created or updated, source "order", order_id).
    Bad input raises ActionError (a ValueError) and changes nothing.

Admin actions
-------------
    adm = bc.admin(hash)
    adm.create_customer(email, first_name, last_name, newsletter=False, ..., channel_id=1)   = sf.register
    adm.update_customer(id, **fields)
    adm.delete_customer(id) / adm.subscribe(email, channel_id=1) / adm.unsubscribe(email)
    adm.set_order_status(order_id, status_id)   order/updated + order/statusUpdated
    adm.refund(order_id, amount=None, reason="") -> refund   order/refund/created, status 4 (full) or 14
    adm.archive_order(order_id)                  order/archived (then hidden from /v2/orders)
    adm.create_channel(name, type="storefront", platform="bigcommerce", status="active") -> channel (+ a site)
    adm.update_channel(channel_id, **fields)     channel/updated
    adm.delete_script(uuid) / adm.set_script_consent(uuid, category)   Script Manager edits (no webhook)
    adm.update_store_information(name)           information/updated
    adm.create_product(name, sku, price, stock=10, channel_ids=[1], categories=[20], description="")
        -> product                                product/created
    adm.update_product(id, name=, price=, sale_price=, description=, is_visible=, availability=,
        brand_id=, categories=, channel_ids=, custom_url=)   product/updated
    adm.set_stock(id, level, variant_id=None)    product/inventory/updated {type, id, inventory{product_id,
        method "absolute", value}} (value: the change, as the spec says, not the new level); a product
        with options keeps stock per variant: sku/inventory/updated {type "sku", id, inventory{...,
        variant_id}}
    adm.delete_product(id)                       product/deleted (then 404)
    adm.set_consent_banner(enabled)              storefront cookie-consent banner ("Accept all cookies" /
                                                 "Only essential cookies"); while the shopper has not
                                                 accepted, only `essential` scripts run; `unknown` never

REST (`{base}/stores/{hash}/v2|v3/...`, header X-Auth-Token; 401 without a valid token, 403 without the scope)
---------------------------------------------------------------------------------------------------------------
    v2: /store, /time, /orders (filters min_id, max_id, min_total, max_total, customer_id, email, status_id,
        cart_id, channel_id, min/max_date_created, min/max_date_modified (RFC-2822 or ISO-8601), is_deleted,
        sort field[:asc|:desc], page, limit <= 250, include=consignments[.line_items]; 204 with no body when
        empty), /orders/count, /orders/{id}, /orders/{id}/products, /order_statuses[/{id}],
        /currencies (USD the default, EUR at 0.915; `StoreState.currencies`)
    v3: /channels[/{id}[/site]], /channels/{id}/currency-assignments (the store's unless
        `StoreState.channel_currencies` gives the channel its own), /sites[/{id}],
        /customers (id:in, email:in, name:in, name:like, company:in,
        date_created[:min|:max], date_modified[:min|:max], include, sort, page/limit, after/before cursors,
        documented meta), /customers/subscribers (GET filters, POST, DELETE needs a filter) and /{id}
        (GET/PUT/DELETE), /orders/{id}/payment_actions/refunds (GET; POST refunds the sum of `payments`
        amounts, needs store_v2_orders or store_v2_transactions), /orders/payment_actions/refunds[/{id}]
        (order_id:in, id:in, created:min, created:max),
        /carts/{id} (include=redirect_urls), /abandoned-carts/{token},
        /content/scripts[/{uuid}] (per client, at most 10 per app),
        /hooks[/{id}], /hooks/admin (GET, PUT emails),
        /catalog/products (id, id:in, id:not_in, id:min/max/greater/less, channel_id:in, categories:in,
        brand_id, sku, sku:in, name, keyword, is_visible, availability, date_modified[:min|:max], sort +
        direction, include=variants,images,primary_image,options,channels,..., include_fields,
        exclude_fields, page/limit <= 250) and /{id} (404 when gone), /{id}/variants[/{id}], /{id}/images,
        /catalog/products/channel-assignments and /category-assignments (product_id:in, channel_id:in /
        category_id:in), /catalog/variants (id:in, product_id:in, sku, sku:in), /catalog/categories[/{id}],
        /catalog/trees (channel_id:in), /catalog/trees/categories, /catalog/trees/{id}/categories,
        /catalog/brands[/{id}]; all catalog routes need store_v2_products[_read_only]
    Errors: v2 `[{"status", "message"}]`, v3 `{"status", "title", "type", "errors"}`.

Rate limits, faults, counters
-----------------------------
    bc.set_quota(hash, requests=450, window_s=30)   every API response carries X-Rate-Limit-Requests-Left,
        -Requests-Quota, -Time-Window-Ms, -Time-Reset-Ms; over quota: 429 with X-Retry-After (seconds)
    bc.faults.latency_ms, .error_rate (share of 500s), .rate_limit_without_headers (share of header-less
        429s), .timeout_rate (share that hang for .timeout_s, default 30 s), .hold (while True, REST
        requests wait at the door, counted as in flight: tests observe concurrency without racing)
    bc.requests_by_store[hash], bc.max_in_flight[hash], bc.in_flight[hash], bc.held (held URLs),
    bc.over_quota[hash] (requests refused for the quota), bc.busiest_quota_window[hash] (most requests
        received in one of the fake's quota windows, refused ones too), bc.busiest_sliding_window[hash] (most
        received within any span of the window's length); set_quota starts both afresh

Webhooks
--------
    Hooks registered through /v3/hooks get matching events (exact scope, or a `/*` prefix; `store/channel/*`
    covers channel events only, not store/channel/{id}/...) as POST JSON {scope, store_id, data, hash,
    created_at, producer} with the hook's custom headers, from a background thread (4 at a time, so order
    is not guaranteed). Real BigCommerce takes only https on port 443; the fake also takes http:// to
    127.0.0.1, localhost and the app's own URL.
    bc.webhooks.retry_time_scale = 1.0   multiplies RETRY_LADDER_S (60 s ... 86400 s, about 48 h in all);
                                         1e-5 runs the whole ladder in about 2 s
    bc.webhooks.duplicates = True        every delivery is sent twice (same body and hash)
    bc.webhooks.drop_next(n)             the next n deliveries (event x hook) are lost, kept in .dropped as
                                         Delivery(payload, destination, headers, hook_id, store_hash, attempt)
    bc.webhooks.flush(timeout=10) -> bool   wait until every queued delivery and scheduled retry was attempted
    bc.webhooks.log / .attempts(scope=None, store_hash=None)   DeliveryAttempt(store_hash, hook_id, scope,
                                         destination, status (None: no answer), time, attempt, payload,
                                         headers, error)
    A non-2xx (or no) answer is retried on the ladder; after the last retry the hook gets is_active=false
    (status "deactivated" in /v3/hooks/admin). PUT is_active=true re-enables it.
    bc.webhooks.blocking = True          a domain (host:port) with < 90 % successes over the last 120 s (at
                                         least 100 deliveries) is blocked for 180 s x retry_time_scale per
                                         client: its deliveries wait; see /v3/hooks/admin blocked_domains
    bc.webhooks.timeout_s = 5.0          delivery timeout (no answer in time = failure)
    bc.webhooks.set_senders(4)           how many deliveries are posted at once (4 unless told)
    store/hook/deliveryException         hooks of the same client on another destination get
                                         {type: "webhook", id, error_code, message}: 90001 failed, will retry
                                         (at most once per 10 min x scale per destination), 90002 retries
                                         exhausted (hook deactivated), 90003 domain blocked

Pages
-----
    {base}/manage[?store=HASH]      control panel: pick the store ("Store", "Switch store"), the acting user
        ("Act as user": owner or staff) and "Open from" (Apps menu, or a storefront: channel_id claim);
        buttons "Install app" (POST -> 303 to the app's auth callback with a fresh code, in the iframe named
        "app-frame"), "Open app" (303 to the app's load URL with a fresh JWT, in the iframe), "Uninstall" and
        "Revoke user access" (server-to-server callbacks, then back to the page; the fake keeps the revoked
        user, so they can open the app again as a new user); tables of storefronts, products ("Save price
        of <product>", "Save stock of <product>[ <size>]", "Delete <product>": the admin actions above),
        scripts and hooks. Serve it as http://localhost:PORT/manage so the app (127.0.0.1) is cross-site.
    {base}/storefront/{hash}/{channel_id}/   renders that channel's enabled scripts with visibility storefront
        or all_pages (head or footer by `location`; src scripts as <script src>, script_tag html verbatim);
        buttons: "Add <product> to cart", "Update <product>" (label "Quantity of <product>"), "Remove
        <product>", "Place order" (label "Checkout email" for guests, checkbox "Subscribe to our newsletter"),
        "Save guest email" ("Guest email"), "Create account" ("Registration email", "First name",
        "Last name", "Sign up for the newsletter"), "Sign in" ("Login email"), "Sign out", "Subscribe" /
        "Unsubscribe" ("Newsletter email"). They call the Python API above; the shopper's cart and login
        live in cookies sbx_cart_{hash}_{channel} / sbx_customer_{hash}_{channel} on the fake's origin.
    {base}/api/storefront/carts     Storefront API cart list (its own shape: camelCase) of the storefront
        this browser visited last (cookie sbx_store); also per storefront at
        {base}/storefront/{hash}/{channel_id}/api/storefront/carts
    {base}/customer/current.jwt?app_client_id=ID   Current Customer API: the bare JWT (HS512, client secret;
        claims customer{id,email,group_id}, iss "bc/apps", aud/application_id, store_hash, operation,
        channel_id) of the shopper signed in on the storefront last visited; 404 for guests, 403 for
        another client id; also per storefront at {base}/storefront/{hash}/{channel_id}/customer/current.jwt
    sf.log_in(email, cart_id=None) -> customer   sign-in; a guest cart is taken over (cart/updated)
"""

from smbc.sandbox.bigcommerce.actions import ActionError
from smbc.sandbox.bigcommerce.admin import Admin
from smbc.sandbox.bigcommerce.fake import DEFAULT_APP_SCOPES, FakeBigCommerce, Faults
from smbc.sandbox.bigcommerce.storefront import Storefront
from smbc.sandbox.bigcommerce.webhooks import RETRY_LADDER_S, DeliveryAttempt

__all__ = [
    "DEFAULT_APP_SCOPES",
    "RETRY_LADDER_S",
    "ActionError",
    "Admin",
    "DeliveryAttempt",
    "FakeBigCommerce",
    "Faults",
    "Storefront",
]
