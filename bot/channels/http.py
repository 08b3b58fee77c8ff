"""Small helpers shared by the API clients."""

from __future__ import annotations

import aiohttp


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit + 1` bytes when it is longer (so the caller can refuse it).

    `content.read(n)` may return less than n: gather chunks until the limit is passed."""
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            break
    return bytes(data)
