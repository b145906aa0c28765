"""Drive MCP sessions with the official MCP Python SDK client, as any MCP host would.

Runs in this directory's own environment (``uv run --project tests/mcp_sdk_client``): the
SDK client 2.x cannot share the project's environment, whose openenv 0.10 needs fastmcp 3,
which needs mcp < 2. The tests write a plan as JSON on stdin:

    {"transport": "http", "url": "http://127.0.0.1:8000/mcp",            (or)
     "transport": "stdio", "command": "...", "args": [...], "cwd": "...", "env": {...},
     "api": "session" | "client",
     "sessions": [[{"op": "call", "name": "start_episode", "arguments": {...}}, ...], ...]}

``api`` "session" is ``ClientSession`` with the ``initialize`` handshake; "client" is the
high-level ``Client`` (probes ``server/discover``, then falls back to the handshake). The
sessions run concurrently; each runs its operations in order. Every result is printed as
JSON on stdout (MCP wire names); an operation that fails records its error and the
session goes on.

With ``"fresh_connections": true`` (HTTP, ``ClientSession``) every request goes on a new
connection (``Connection: close``), as behind a load balancer or across a server's workers,
where consecutive requests of a session can reach different processes. An operation
``{"op": "pause", "paused": PATH, "resume": PATH}`` writes ``paused`` and waits until
``resume`` exists: a test does something to the server in between (stops a replica, say).

A plan with ``"stateless": [op, ...]`` instead of ``sessions`` (HTTP, ``ClientSession``)
plays as a client that keeps no session: each operation opens a session of its own, runs,
and closes it. An argument given as "$episode_id" is replaced by the ``episode_id`` of the
latest ``start_episode`` result. Each result also lists the ``Mcp-Session-Id`` values the
server sent during that operation.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

HANDLE = "$episode_id"
PAUSE_LIMIT_S = 120.0  # a paused session gives up waiting after this long


def dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


async def run_op(session: Any, op: dict[str, Any]) -> Any:
    kind = op["op"]
    if kind == "list_tools":
        return dump(await session.list_tools())
    if kind == "call":
        return dump(await session.call_tool(op["name"], op.get("arguments")))
    if kind == "list_prompts":
        return dump(await session.list_prompts())
    if kind == "get_prompt":
        return dump(await session.get_prompt(op["name"], op.get("arguments")))
    if kind == "list_resources":
        return dump(await session.list_resources())
    if kind == "read_resource":
        return dump(await session.read_resource(op["uri"]))
    if kind == "pause":
        Path(op["paused"]).write_text("paused", encoding="utf-8")
        deadline = time.monotonic() + PAUSE_LIMIT_S
        while not Path(op["resume"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {op['resume']} after {PAUSE_LIMIT_S:.0f} s")
            await asyncio.sleep(0.05)
        return {"resumed": True}
    raise ValueError(f"unknown op {kind!r}")


def connection(plan: dict[str, Any]) -> Any:
    if plan["transport"] == "http":
        return plan["url"]
    return StdioServerParameters(
        command=plan["command"], args=plan.get("args", []), cwd=plan.get("cwd"), env=plan.get("env")
    )


async def open_session(plan: dict[str, Any], stack: AsyncExitStack) -> tuple[Any, dict[str, Any]]:
    """An initialized session and what the handshake told."""
    target = connection(plan)
    if plan["api"] == "client":
        client = await stack.enter_async_context(Client(target))
        info = {"protocol_version": client.protocol_version, "server_name": client.server_info.name}
        return client, info
    if isinstance(target, str):
        http = None
        if plan.get("fresh_connections"):
            http = await stack.enter_async_context(create_mcp_http_client(headers={"connection": "close"}))
        streams = streamable_http_client(target, http_client=http)
    else:
        streams = stdio_client(target)
    read_stream, write_stream = await stack.enter_async_context(streams)
    session = await stack.enter_async_context(ClientSession(read_stream, write_stream))
    result = await session.initialize()
    info = {
        "protocol_version": result.protocol_version,
        "server_name": result.server_info.name,
        "instructions": result.instructions,
    }
    return session, info


async def play(plan: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        session, info = await open_session(plan, stack)
        results = []
        for op in ops:
            try:
                results.append({"ok": await run_op(session, op)})
            except Exception as err:  # recorded for the test to judge
                results.append({"error": f"{type(err).__name__}: {err}"})
        return {**info, "results": results}


async def in_own_session(url: str, op: dict[str, Any], session_ids: list[str]) -> Any:
    """One operation in a session opened for it (and closed after it)."""

    async def seen(response: Any) -> None:
        if "mcp-session-id" in response.headers:
            session_ids.append(response.headers["mcp-session-id"])

    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(create_mcp_http_client())
        http.event_hooks["response"].append(seen)
        streams = streamable_http_client(url, http_client=http)
        read_stream, write_stream = await stack.enter_async_context(streams)
        session = await stack.enter_async_context(ClientSession(read_stream, write_stream))
        await session.initialize()
        return await run_op(session, op)


async def play_stateless(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation in a session of its own; handles passed on from start_episode."""
    handle = None
    results = []
    for op in plan["stateless"]:
        arguments = {k: handle if v == HANDLE else v for k, v in (op.get("arguments") or {}).items()}
        session_ids: list[str] = []
        try:
            answer = await in_own_session(plan["url"], {**op, "arguments": arguments}, session_ids)
        except Exception as err:  # recorded for the test to judge
            results.append({"error": f"{type(err).__name__}: {err}", "session_ids": sorted(set(session_ids))})
            continue
        if op.get("name") == "start_episode":
            handle = (answer.get("structuredContent") or {}).get("episode_id")
        results.append({"ok": answer, "session_ids": sorted(set(session_ids))})
    return results


async def main() -> None:
    plan = json.load(sys.stdin)
    if "stateless" in plan:
        json.dump({"stateless": await play_stateless(plan)}, sys.stdout)
        return
    sessions = await asyncio.gather(*(play(plan, ops) for ops in plan["sessions"]))
    json.dump({"sessions": sessions}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
