"""The routes of one row by its key (read it, change it, delete it) for the resources whose rows take
the same three steps: scripts and subscribers. Each resource brings its lookup, its validation and its
webhook; the steps under the fake's lock are written once, here."""

# No `from __future__ import annotations`: FastAPI reads the routes' parameter types at run time, and
# they are the factory's arguments (the resource's key type and its `StoreCall` dependencies).

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce.rest.access import StoreCall
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer
from smbc.sandbox.bigcommerce.state import Json, StoreState

K = TypeVar("K")
R = TypeVar("R")


def no_webhook(call: StoreCall, change: str, key: Any) -> None:
    """For a resource whose changes fire no webhook."""


@dataclass(frozen=True)
class KeyedRows(Generic[K, R]):
    """How one resource finds, renders, validates and announces its rows."""

    rows: Callable[[StoreState], dict[K, R]]
    find: Callable[[StoreCall, K], R]  # the row, or a 404
    render: Callable[[R], Json]
    changes: Callable[[StoreCall, Json, R], Json]  # a PUT body's validated fields to set on the row
    announce: Callable[[StoreCall, str, K], None] = no_webhook  # (call, "updated" | "deleted", key)

    def add_routes(self, router: APIRouter, path: str, key_type: type, reader: Any, writer: Any) -> None:
        """GET, PUT and DELETE on `path` (ending in `{key}`); `reader` and `writer` are the annotated
        `StoreCall` dependencies that admit reading and changing the resource."""

        async def get_row(call: reader, key: key_type) -> JSONResponse:
            with call.lock:
                return v3_answer(self.render(self.find(call, key)))

        async def update_row(call: writer, key: key_type) -> JSONResponse:
            body = await call.json_object()
            with call.lock:
                row = self.find(call, key)
                call.store.modified(row, call.fake.now(), self.changes(call, body, row))
                self.announce(call, "updated", key)
                return v3_answer(self.render(row))

        async def delete_row(call: writer, key: key_type) -> Response:
            with call.lock:
                self.find(call, key)
                call.store.removed(self.rows(call.store), key)
                self.announce(call, "deleted", key)
            return Response(status_code=204)

        router.add_api_route(path, get_row, methods=["GET"])
        router.add_api_route(path, update_row, methods=["PUT"])
        router.add_api_route(path, delete_row, methods=["DELETE"])
