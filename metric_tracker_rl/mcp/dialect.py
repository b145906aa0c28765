"""OpenEnv's own MCP dialect: one session's tools as a FastMCP server.

OpenEnv 0.10 serves ``env.mcp_server`` at ``POST /mcp`` (``tools/list``, ``tools/call``,
``openenv/session/*``) and in WebSocket ``mcp`` messages, and calls each tool's function
directly. A call returns the whole observation (an error observation for a bad call). The
tools carry their titles, annotations and output schemas (the whole observation's), for
whatever lists them through FastMCP; OpenEnv 0.10's own ``tools/list`` sends only name,
description and input schema.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.tools import FunctionTool
from mcp.types import ToolAnnotations

from metric_tracker_rl.tools import EpisodeTools, tool_catalog


def fastmcp_server(tools: EpisodeTools) -> FastMCP:
    """A FastMCP server with every tool of the catalog, each driving ``tools``."""
    server = FastMCP("metric_tracker_rl")
    for tool in tool_catalog():
        server.add_tool(
            FunctionTool(
                name=tool.name,
                title=tool.title,
                description=tool.description,
                parameters=tool.mcp_input_schema,
                output_schema=tool.dialect_output_schema,
                annotations=ToolAnnotations(**tool.annotations),
                fn=_caller(tools, tool.name),
            )
        )
    return server


def _caller(tools: EpisodeTools, name: str):
    def call(**arguments: Any) -> dict[str, Any]:
        return tools.call(name, arguments).full()

    return call
