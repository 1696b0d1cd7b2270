"""HTML pages of the fake: the control panel (`/manage`) and the storefronts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce


def build_router(fake: FakeBigCommerce) -> APIRouter:
    return APIRouter()
