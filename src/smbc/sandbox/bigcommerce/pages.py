"""HTML pages of the fake: the control panel (`/manage`) and one storefront per channel.

The control panel frames the app like BigCommerce does: Install posts to the fake, which answers with
a redirect to the app's auth callback (carrying a fresh one-time code) inside the iframe; Open redirects
the iframe to the app's load URL with a freshly signed JWT. Uninstall and Revoke call the app server
to server. Storefront buttons call the same Python API as tests (`bc.storefront(...)`).
"""

from __future__ import annotations

import hmac
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from smbc.sandbox.bigcommerce.actions import ActionError
from smbc.sandbox.bigcommerce.api import fake_of
from smbc.sandbox.bigcommerce.render import storefront, v3
from smbc.sandbox.bigcommerce.storefront import Storefront

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.state import Script, StoreState

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "bigcommerce"
STORE_COOKIE = "sbx_store"
SHOWN_VISIBILITIES = ("storefront", "all_pages")


def cart_cookie(store_hash: str, channel_id: int) -> str:
    return f"sbx_cart_{store_hash}_{channel_id}"


def customer_cookie(store_hash: str, channel_id: int) -> str:
    return f"sbx_customer_{store_hash}_{channel_id}"


CONSENT_CATEGORIES = ("functional", "analytics", "targeting")


def consent_cookie(store_hash: str, channel_id: int) -> str:
    return f"sbx_consent_{store_hash}_{channel_id}"


def scripts_for(
    store: StoreState, channel_id: int, location: str, consented: frozenset[str] | None
) -> list[Script]:
    """The scripts a Stencil page renders. With the consent banner on, only `essential` scripts and those in
    categories the shopper accepted run; `unknown` ones never do (BigCommerce's Scripts API says so)."""
    return [
        s
        for s in store.scripts.values()
        if s.enabled
        and s.channel_id == channel_id
        and s.location == location
        and s.visibility in SHOWN_VISIBILITIES
        and (consented is None or s.consent_category == "essential" or s.consent_category in consented)
    ]


router = APIRouter()
PAGES = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(PAGES.get_template(name).render(**context))


# -- control panel ---------------------------------------------------------------------------------


@router.get("/manage", response_class=HTMLResponse)
def manage(
    request: Request, store: str | None = None, user_id: int | None = None, message: str = "", error: str = ""
) -> HTMLResponse:
    fake = fake_of(request)
    with fake.lock:
        current = fake.stores.get(store or "") or fake.store(fake.default_store_hash)
        stores = [{"hash": s.hash, "name": s.name, "installed": s.installed} for s in fake.stores.values()]
        users = [
            {"id": u.id, "email": u.email, "owner": u.id == current.owner.id} for u in current.users.values()
        ]
        channels = [
            {"id": c.id, "name": c.name, "url": fake.storefront_url(current.hash, c.id)}
            for c in current.channels.values()
        ]
        hooks = [v3.hook_json(h, current.hash, with_status=True) for h in current.hooks.values()]
        scripts = [v3.script_json(s) for s in current.scripts.values()]
        products = list(current.products.values())
        bulk = current.bulk_products
        bulk_count = len([i for i in bulk.ids if i not in current.products]) if bulk else 0
    return page(
        "manage.html",
        store=current,
        stores=stores,
        users=users,
        selected_user=user_id or current.owner.id,
        channels=channels,
        hooks=hooks,
        scripts=scripts,
        products=products,
        bulk_products=bulk_count,
        app_url=fake.app_url,
        message=message,
        error=error,
    )


def back_to_manage(store_hash: str, user_id: int, **notes: str) -> RedirectResponse:
    query = urlencode({"store": store_hash, "user_id": user_id, **notes})
    return RedirectResponse(f"/manage?{query}", status_code=303)


@router.post("/manage/install")
def manage_install(request: Request, store: str = Form(...), user_id: int = Form(...)) -> Response:
    fake = fake_of(request)
    try:
        grant = fake.new_grant(store, user_id)
    except (KeyError, ValueError) as exc:
        return HTMLResponse(f"<p>{type(exc).__name__}</p>", status_code=400)
    return RedirectResponse(fake.auth_callback_url(grant), status_code=303)


@router.post("/manage/open")
def manage_open(
    request: Request, store: str = Form(...), user_id: int = Form(...), channel_id: str = Form("")
) -> Response:
    fake = fake_of(request)
    if store not in fake.stores:
        return HTMLResponse("<p>Unknown store</p>", status_code=400)
    channel = int(channel_id) if channel_id.isdigit() else None
    return RedirectResponse(fake.load_url(store, user_id, channel_id=channel), status_code=303)


@router.post("/manage/uninstall")
def manage_uninstall(request: Request, store: str = Form(...), user_id: int = Form(...)) -> Response:
    fake = fake_of(request)
    answer = fake.uninstall(store, user_id)
    return back_to_manage(store, user_id, message=f"App uninstalled (the app answered {answer.status_code}).")


@router.post("/manage/remove-user")
def manage_remove_user(request: Request, store: str = Form(...), user_id: int = Form(...)) -> Response:
    fake = fake_of(request)
    if user_id == fake.store(store).owner.id:
        return back_to_manage(store, user_id, error="The store owner's access cannot be revoked.")
    answer = fake.remove_user(store, user_id)
    return back_to_manage(
        store,
        user_id,
        message=f"Access of user {user_id} revoked (the app answered {answer.status_code}).",
    )


@router.post("/manage/products/{action}")
async def manage_product(request: Request, action: str) -> Response:
    """The merchant changes a product: its price, a variant's stock, or deletes it."""
    fake = fake_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    store_hash, user_id = form.get("store", ""), int(form.get("user_id", "0") or 0)
    if store_hash not in fake.stores:
        return HTMLResponse("<p>Unknown store</p>", status_code=400)
    admin = fake.admin(store_hash)
    try:
        product_id = int(form.get("product_id", ""))
        if action == "price":
            admin.update_product(product_id, price=Decimal(form.get("price", "")))
            note = f"Price of product {product_id} saved."
        elif action == "stock":
            admin.set_stock(product_id, int(form.get("stock", "")), int(form.get("variant_id", "")))
            note = f"Stock of product {product_id} saved."
        elif action == "delete":
            admin.delete_product(product_id)
            note = f"Product {product_id} deleted."
        else:
            return HTMLResponse("<p>Unknown action</p>", status_code=404)
    except ActionError as exc:
        return back_to_manage(store_hash, user_id, error=str(exc))
    except (ArithmeticError, ValueError):
        return back_to_manage(store_hash, user_id, error="Price and stock must be numbers.")
    return back_to_manage(store_hash, user_id, message=note)


# -- storefront ------------------------------------------------------------------------------------


def shopper(request: Request, store_hash: str, channel_id: int) -> tuple[str | None, int | None]:
    cart_id = request.cookies.get(cart_cookie(store_hash, channel_id))
    raw = request.cookies.get(customer_cookie(store_hash, channel_id), "")
    return cart_id, int(raw) if raw.isdigit() else None


@router.get("/storefront/{store_hash}/{channel_id}/", response_class=HTMLResponse)
@router.get("/storefront/{store_hash}/{channel_id}", response_class=HTMLResponse, include_in_schema=False)
def storefront_page(
    request: Request, store_hash: str, channel_id: int, message: str = "", error: str = ""
) -> Response:
    fake = fake_of(request)
    if store_hash not in fake.stores or channel_id not in fake.store(store_hash).channels:
        return HTMLResponse("<h1>Storefront not found</h1>", status_code=404)
    cart_id, customer_id = shopper(request, store_hash, channel_id)
    consent = request.cookies.get(consent_cookie(store_hash, channel_id))
    with fake.lock:
        store = fake.store(store_hash)
        consented = frozenset((consent or "").split(",")) - {""} if store.consent_banner else None
        cart = store.carts.get(cart_id or "")
        customer = store.customers.get(customer_id or 0)
        html = page(
            "storefront.html",
            store=store,
            channel=store.channels[channel_id],
            base=fake.storefront_url(store_hash, channel_id),
            head_scripts=scripts_for(store, channel_id, "head", consented),
            footer_scripts=scripts_for(store, channel_id, "footer", consented),
            consent_banner=store.consent_banner and consent is None,
            products=[p for p in store.products.values() if p.is_visible and channel_id in p.channel_ids],
            cart=v3.cart_json(cart, fake.storefront_url(store_hash, channel_id)) if cart else None,
            customer=customer,
            message=message,
            error=error,
        )
    html.set_cookie(STORE_COOKIE, f"{store_hash}.{channel_id}", path="/", samesite="lax")
    if cart_id and cart is None:
        html.delete_cookie(cart_cookie(store_hash, channel_id), path="/")
    return html


@router.post("/storefront/{store_hash}/{channel_id}/actions/{action}")
async def storefront_action(request: Request, store_hash: str, channel_id: int, action: str) -> Response:
    fake = fake_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    cart_id, customer_id = shopper(request, store_hash, channel_id)
    base = f"/storefront/{store_hash}/{channel_id}/"
    try:
        sf = fake.storefront(store_hash, channel_id)
        cookies, message = run_action(sf, action, form, cart_id, customer_id)
    except (ActionError, KeyError, ValueError) as exc:
        return RedirectResponse(f"{base}?{urlencode({'error': str(exc)})}", status_code=303)
    response = RedirectResponse(f"{base}?{urlencode({'message': message})}", status_code=303)
    names = {
        "cart": cart_cookie(store_hash, channel_id),
        "customer": customer_cookie(store_hash, channel_id),
        "consent": consent_cookie(store_hash, channel_id),
    }
    for name, value in cookies.items():
        cookie = names[name]
        if value is None:
            response.delete_cookie(cookie, path="/")
        else:
            response.set_cookie(cookie, value, path="/", samesite="lax")
    return response


def current_cart(request: Request, store_hash: str, channel_id: int) -> list[dict[str, Any]]:
    fake = fake_of(request)
    cart_id, _ = shopper(request, store_hash, channel_id)
    with fake.lock:
        store = fake.stores.get(store_hash)
        cart = store.carts.get(cart_id or "") if store else None
        if cart is None:
            return []
        return [storefront.storefront_cart_json(cart, fake.storefront_url(store_hash, channel_id))]


@router.get("/api/storefront/carts")
def storefront_carts(request: Request) -> JSONResponse:
    """The Storefront API cart of the storefront last visited in this browser (cookie `sbx_store`)."""
    store_hash, _, channel = request.cookies.get(STORE_COOKIE, "").partition(".")
    if not channel.isdigit():
        return JSONResponse([])
    return JSONResponse(current_cart(request, store_hash, int(channel)))


def current_customer_jwt(request: Request, store_hash: str, channel_id: int, app_client_id: str) -> Response:
    """The Current Customer API: a JWT (HS512, the app's client secret) naming the signed-in shopper."""
    fake = fake_of(request)
    if not hmac.compare_digest(app_client_id.encode(), fake.client_id.encode()):
        return PlainTextResponse("Unknown app_client_id", status_code=403)
    _, customer_id = shopper(request, store_hash, channel_id)
    with fake.lock:
        store = fake.stores.get(store_hash)
        customer = store.customers.get(customer_id or 0) if store else None
        if customer is None:
            # UNCONFIRMED what BigCommerce answers for a guest; the fake says "nobody" with a 404.
            return PlainTextResponse("No customer is signed in", status_code=404)
        now = int(time.time())
        claims = {
            "customer": {
                "id": customer.id,
                "email": customer.email,
                "group_id": str(customer.customer_group_id),
            },
            "iss": "bc/apps",
            "sub": store_hash,
            "iat": now,
            "exp": now + 900,
            "version": 1,
            "aud": fake.client_id,
            "application_id": fake.client_id,
            "store_hash": store_hash,
            "operation": "current_customer",
            "channel_id": channel_id,
        }
    # The body is the bare token, as BigCommerce's own example reads it (responseText).
    return PlainTextResponse(jwt.encode(claims, fake.client_secret, algorithm="HS512"))


@router.get("/customer/current.jwt")
def current_customer(request: Request, app_client_id: str = "") -> Response:
    store_hash, _, channel = request.cookies.get(STORE_COOKIE, "").partition(".")
    if not channel.isdigit():
        return PlainTextResponse("No customer is signed in", status_code=404)
    return current_customer_jwt(request, store_hash, int(channel), app_client_id)


@router.get("/storefront/{store_hash}/{channel_id}/customer/current.jwt")
def current_customer_scoped(
    request: Request, store_hash: str, channel_id: int, app_client_id: str = ""
) -> Response:
    return current_customer_jwt(request, store_hash, channel_id, app_client_id)


# The smallest valid PNG (one transparent pixel): every product picture of the fake.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


@router.get("/product_images/{size}/{product_id}/{number}.png")
def product_image(size: str, product_id: int, number: int) -> Response:
    return Response(PIXEL_PNG, media_type="image/png")


@router.get("/storefront/{store_hash}/{channel_id}/api/storefront/carts")
def storefront_carts_scoped(request: Request, store_hash: str, channel_id: int) -> JSONResponse:
    return JSONResponse(current_cart(request, store_hash, channel_id))


def run_action(
    sf: Storefront, action: str, form: dict[str, str], cart_id: str | None, customer_id: int | None
) -> tuple[dict[str, str | None], str]:
    """One storefront button: returns the cookies to set (None = delete) and the message to show."""
    newsletter = form.get("newsletter") == "on"
    if action == "register":
        customer = sf.register(
            form.get("email", ""), form.get("first_name", ""), form.get("last_name", ""), newsletter
        )
        if cart_id:
            sf.log_in(customer["email"], cart_id)
        return {"customer": str(customer["id"])}, f"Welcome, {customer['first_name']}! Your account is ready."
    if action == "login":
        customer = sf.log_in(form.get("email", ""), cart_id)
        return {"customer": str(customer["id"])}, f"Signed in as {customer['email']}."
    if action == "consent":
        accepted = CONSENT_CATEGORIES if form.get("choice") == "all" else ()
        return {"consent": ",".join(accepted)}, "Cookie preferences saved."
    if action == "logout":
        return {"customer": None, "cart": None}, "Signed out."
    if action == "subscribe":
        sf.subscribe(form.get("email", ""))
        return {}, "Subscribed to the newsletter."
    if action == "unsubscribe":
        sf.unsubscribe(form.get("email", ""))
        return {}, "Unsubscribed from the newsletter."
    if action == "add":
        product_id = int(form.get("product_id", "0"))
        variant_id = int(form["variant_id"]) if form.get("variant_id") else None
        open_cart = cart_id if sf.get_cart(cart_id or "") else None
        cart = sf.add_to_cart(open_cart, product_id, 1, customer_id, variant_id)
        return {"cart": cart["id"]}, "Added to cart."
    if not cart_id or sf.get_cart(cart_id) is None:
        raise ActionError("Your cart is empty.")
    if action == "update":
        sf.update_item(cart_id, form.get("item_id", ""), int(form.get("quantity", "0") or 0))
        return ({} if sf.get_cart(cart_id) else {"cart": None}), "Cart updated."
    if action == "remove":
        left = sf.remove_item(cart_id, form.get("item_id", ""))
        return ({} if left else {"cart": None}), "Item removed."
    if action == "email":
        sf.set_cart_email(cart_id, form.get("email", ""))
        return {}, "Email saved."
    if action == "checkout":
        order = sf.checkout(cart_id, customer_id, form.get("email") or None, newsletter)
        return {"cart": None}, f"Thank you! Order #{order['id']} was placed."
    raise ActionError(f"unknown action {action!r}")
