"""`/v3/channels` and `/v3/sites` (read only: the merchant changes channels in the control panel)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page
from smbc.sandbox.bigcommerce.state import ENABLED_CHANNEL_STATUSES, Json, Site

router = APIRouter()
ChannelReader = Annotated[StoreCall, Depends(authorized("channels"))]
SiteReader = Annotated[StoreCall, Depends(authorized("sites"))]
ChannelSiteReader = Annotated[StoreCall, Depends(authorized("channels", "sites"))]


def _site_json(call: StoreCall, site: Site) -> Json:
    return v3.site_json(site, call.fake.storefront_url(call.store.hash, site.channel_id))


@router.get("/stores/{store_hash}/v3/channels")
async def list_channels(call: ChannelReader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    statuses = listing.parse_str_list(q.get("status:in"))
    types = listing.parse_str_list(q.get("type:in"))
    platforms = listing.parse_str_list(q.get("platform:in"))
    with call.lock:
        rows = [
            c
            for c in call.store.channels.values()
            if (statuses is None or c.status in statuses)
            and (types is None or c.type in types)
            and (platforms is None or c.platform in platforms)
            and (q.get("available") != "true" or c.status in ENABLED_CHANNEL_STATUSES)
        ]
        return v3_page(rows, page, limit, v3.channel_json)


@router.get("/stores/{store_hash}/v3/channels/{channel_id}")
async def get_channel(call: ChannelReader, channel_id: int) -> JSONResponse:
    with call.lock:
        channel = found(call.store.channels, channel_id, f"Channel {channel_id} not found")
        return v3_answer(v3.channel_json(channel))


@router.get("/stores/{store_hash}/v3/channels/{channel_id}/site")
async def get_channel_site(call: ChannelSiteReader, channel_id: int) -> JSONResponse:
    with call.lock:
        site = call.store.site_for_channel(channel_id)
        if site is None:
            raise ApiError(404, f"Channel {channel_id} has no site")
        return v3_answer(_site_json(call, site))


@router.get("/stores/{store_hash}/v3/sites")
async def list_sites(call: SiteReader) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    with call.lock:
        rows = listing.kept_in(call.query, "channel_id", call.store.sites.values())
        data = [_site_json(call, s) for s in listing.offset_page(rows, page, limit)]
    # BigCommerce pages sites by offset, unlike its other v3 lists.
    meta = {"pagination": {"offset": (page - 1) * limit, "limit": limit, "total_items": len(rows)}}
    return v3_answer(data, meta)


@router.get("/stores/{store_hash}/v3/sites/{site_id}")
async def get_site(call: SiteReader, site_id: int) -> JSONResponse:
    with call.lock:
        return v3_answer(_site_json(call, found(call.store.sites, site_id, f"Site {site_id} not found")))
