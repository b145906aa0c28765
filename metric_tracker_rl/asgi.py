"""ASGI helpers shared by the server's middlewares: buffer a request body, replay it, send a
whole response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyTooLarge(Exception):
    """The request body is longer than the limit."""


async def buffer_body(receive: Receive, limit: int | None = None) -> tuple[bytes, Receive]:
    """Read the whole request body; return it and a receive that replays it as one message.

    Raises ``BodyTooLarge`` past ``limit`` bytes. A disconnect before the end is replayed as
    it came (so streaming responses still see it), with an empty body.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", replay(message, receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replay({"type": "http.request", "body": body, "more_body": False}, receive)


def replay(first: dict[str, Any], receive: Receive) -> Receive:
    """A receive that yields ``first`` once, then defers to the real one."""
    pending = [first]

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


async def send_response(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a whole response: its start (``headers`` and the body's Content-Length), then its body."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
