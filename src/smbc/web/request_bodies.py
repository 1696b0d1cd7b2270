"""Request bodies read with a size limit: the webhook receiver, SALESmanago's callbacks and the
storefront's cart links never hold more than their limit in memory, whatever Content-Length claims."""

from __future__ import annotations

from fastapi import Request


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it (or its declared Content-Length) passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
