"""What the merchant does in the control panel: customers, orders and refunds, channels, scripts and
store settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smbc.sandbox.bigcommerce.actions import ActionError, StoreActions, existing
from smbc.sandbox.bigcommerce.render import v2, v3
from smbc.sandbox.bigcommerce.state import ORDER_STATUSES, Channel, Json, Order, Refund, Site, money

REFUNDED = 4
PARTIALLY_REFUNDED = 14


class Admin(StoreActions):
    """What the merchant does in the control panel."""

    # -- customers and subscribers ---------------------------------------------------------------------

    def create_customer(
        self,
        email: str,
        first_name: str = "Admin",
        last_name: str = "Created",
        channel_id: int = 1,
        phone: str = "",
        company: str = "",
        address: dict[str, Any] | None = None,
    ) -> Json:
        with self.fake.lock:
            customer = self._new_customer(
                email, first_name, last_name, channel_id, phone=phone, company=company, address=address
            )
            return v3.customer_json(customer, {"addresses"})

    def delete_customer(self, customer_id: int) -> None:
        with self.fake.lock:
            self._customer(customer_id)
            del self.state.customers[customer_id]
            self.state.touch()
            self._emit("store/customer/deleted", {"type": "customer", "id": customer_id})

    def subscribe(self, email: str, channel_id: int = 1) -> Json:
        return self._subscribe(email, channel_id, "custom")

    # -- orders ----------------------------------------------------------------------------------------

    def _order(self, order_id: int) -> Order:
        return existing(self.state.orders, order_id, "order")

    def _status_change(self, order: Order, status_id: int) -> None:
        previous = order.status_id
        order.status_id = status_id
        order.date_modified = self.fake.now()
        self.state.touch()
        self._order_event(order, "updated")
        if previous != status_id:
            self._status_updated(order, previous)

    def set_order_status(self, order_id: int, status_id: int) -> Json:
        """`order/updated`, and `order/statusUpdated` when the status changes."""
        if status_id not in ORDER_STATUSES:
            raise ActionError(f"no order status {status_id}")
        with self.fake.lock:
            order = self._order(order_id)
            self._status_change(order, status_id)
            return v2.order_json(order, self.fake.api_base(self.store_hash))

    def refund(self, order_id: int, amount: Decimal | float | str | None = None, reason: str = "") -> Json:
        """Refund all (status 4 Refunded) or part (status 14 Partially Refunded) of an order."""
        with self.fake.lock:
            order = self._order(order_id)
            left = order.total - order.refunded_amount
            value = left if amount is None else money(amount)
            if value <= 0 or value > left:
                raise ActionError(f"refund amount must be between 0.01 and {left}")
            store = self.state
            refund = Refund(next(store.refund_ids), order.id, value, self.fake.now(), reason)
            store.refunds[refund.id] = refund
            order.refunded_amount += value
            fully = order.refunded_amount >= order.total
            if fully:
                for line in order.lines:
                    line.quantity_refunded = line.quantity
            self._order_event(order, "refund/created", refund={"refund_id": refund.id})
            self._status_change(order, REFUNDED if fully else PARTIALLY_REFUNDED)
            return v3.refund_json(refund)

    def archive_order(self, order_id: int) -> None:
        """`order/archived`; the order then shows only with `is_deleted=true`."""
        with self.fake.lock:
            order = self._order(order_id)
            order.is_deleted = True
            order.date_modified = self.fake.now()
            self.state.touch()
            self._order_event(order, "archived")

    # -- channels --------------------------------------------------------------------------------------

    def create_channel(
        self, name: str, type: str = "storefront", platform: str = "bigcommerce", status: str = "active"
    ) -> Json:
        """A new storefront channel with its own site (fires `store/channel/created`)."""
        with self.fake.lock:
            store = self.state
            now = self.fake.now()
            channel = Channel(
                next(store.channel_ids), name, now, now, type=type, platform=platform, status=status
            )
            store.channels[channel.id] = channel
            site = Site(next(store.site_ids), channel.id, now, now)
            store.sites[site.id] = site
            store.touch()
            self._emit("store/channel/created", {"type": "channel", "id": channel.id})
            return v3.channel_json(channel)

    def update_channel(self, channel_id: int, **fields: Any) -> Json:
        with self.fake.lock:
            channel = existing(self.state.channels, channel_id, "channel")
            for name in ("name", "status", "platform", "is_visible"):
                if name in fields:
                    setattr(channel, name, fields[name])
            channel.date_modified = self.fake.now()
            self.state.touch()
            self._emit("store/channel/updated", {"type": "channel", "id": channel.id})
            return v3.channel_json(channel)

    # -- scripts and settings (no webhooks on BigCommerce either, but for the store name) ----------------

    def delete_script(self, script_uuid: str) -> None:
        """The merchant deletes a script in Script Manager."""
        with self.fake.lock:
            existing(self.state.scripts, script_uuid, "script")
            del self.state.scripts[script_uuid]
            self.state.touch()

    def set_script_consent(self, script_uuid: str, consent_category: str) -> None:
        with self.fake.lock:
            script = existing(self.state.scripts, script_uuid, "script")
            script.consent_category = consent_category
            script.date_modified = self.fake.now()
            self.state.touch()

    def set_consent_banner(self, enabled: bool) -> None:
        """Turn the storefront cookie-consent banner on or off (Settings > Privacy)."""
        with self.fake.lock:
            self.state.consent_banner = enabled
            self.state.touch()

    def update_store_information(self, name: str) -> None:
        with self.fake.lock:
            self.state.name = name
            self.state.touch()
            self._emit("store/information/updated", {"type": "store"})
