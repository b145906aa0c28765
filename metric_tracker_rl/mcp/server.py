"""The standard MCP server: the tool catalog, a prompt and resources, episodes by handle.

Built on the ``mcp`` SDK's low-level ``Server``. Its lifespan makes an environment: once for
a stdio process (its one session), once per request over streamable HTTP, where the session's
state is in the server's records (``sessions.McpSessions``: which kept episode it plays), so
any worker or replica answers it. The environments share one store of kept episodes
(``episodes``), so ``start_episode`` answers an ``episode_id`` that works from any session,
and a call without one plays the session's own episode. Tools are listed with their titles, annotations and
output schemas. Tool calls come back as ``CallToolResult``: ``structuredContent`` is the
observation without the catalogs (it follows the tool's output schema), the text is a
short summary followed by that JSON (for hosts that pass only text to the model), and a
bad call is ``isError`` with its message.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import McpError

from metric_tracker_rl import __version__
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeStore
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.mcp.sessions import McpSessions
from metric_tracker_rl.tasks import NAMED_TASKS, TaskSpec
from metric_tracker_rl.tools import START_EPISODE, SUBMIT_REPORT, tool_catalog

SERVER_NAME = "metric_tracker_rl"
PROMPT_NAME = "investigate_episode"
TASK_URI = "metric-tracker://task/{task_id}"
EPISODE_URI = "metric-tracker://episode/config"
INSTRUCTIONS = (
    "metric_tracker_rl is a benchmark: find the seeded anomalies in four weeks of synthetic "
    f"product-funnel metrics. Call {START_EPISODE}, investigate with the analysis tools (each "
    f"description states its cost in budget units), then grade a report with {SUBMIT_REPORT}. "
    f"The prompt {PROMPT_NAME!r} shows how to begin; the resources describe the named tasks and "
    "the current episode's public config."
)


def investigation_prompt(task_id: str) -> str:
    """The text of the prompt: the steps of a good investigation, with this server's tool names."""
    by_kind: dict[str, list[str]] = {}
    for spec in REGISTRY.values():
        by_kind.setdefault(spec.kind, []).append(spec.name)
    detectors = ", ".join(dict.fromkeys(f.detection_method for f in FAMILIES))
    broad = ", ".join([*by_kind.get("discovery", []), *by_kind.get("generator", [])[-1:]])
    return (
        f"Investigate one episode of metric_tracker_rl with its MCP tools.\n"
        f"1. Call {START_EPISODE} with task_id={task_id!r}. The result says how many anomaly rows "
        "to find (null where the difficulty hides it: then report every row you confirm) and the "
        "budget; every tool call spends budget (its description gives the cost).\n"
        "2. Call task_overview: the anomaly families, their detection methods, the public threshold "
        "of every entity, the severity cut-offs and the row schema.\n"
        f"3. Find candidate (date, entity) pairs with the broad tools ({broad}) and keep those "
        "beyond the public thresholds.\n"
        f"4. Confirm each candidate with its family's detection method ({detectors}); a non-normal "
        "assessment is a row of the report, values copied exactly.\n"
        f"5. Call {SUBMIT_REPORT} with the confirmed rows as classifications. Extra rows cost points; "
        "you may resubmit while submissions remain (where the row count is hidden, the first report "
        "is the only one).\n"
        "Finish by reporting the score and the rows you submitted."
    )


def task_text(task: TaskSpec) -> str:
    """A named task as Markdown: what it contains and how to start it."""
    config = ", ".join(f"{k}={v}" for k, v in task.reset_arguments().items())
    return (
        f"# {task.task_id}\n\n{task.description}\n\n"
        f"- difficulty: {task.difficulty}\n"
        f"- to find: {task.size_text()}\n"
        f"- fixed config: {config}\n\n"
        f"Start it with `{START_EPISODE}` and `task_id={task.task_id!r}`.\n"
    )


def build_server(
    new_environment: Callable[[], MetricTrackerRlEnvironment] | None = None,
    sessions: McpSessions | None = None,
) -> Server:
    """The MCP server; each session (each request, with ``sessions``) gets its own environment
    from ``new_environment`` (by default: environments sharing a store of kept episodes with
    the operator's limits). With ``sessions`` (streamable HTTP), a request plays the kept
    episode its session plays, and a session that starts one plays it from then on."""
    if new_environment is None:
        new_environment = kept_environments()

    @asynccontextmanager
    async def session_environment(_: Server) -> AsyncIterator[MetricTrackerRlEnvironment]:
        environment = new_environment()
        try:
            yield environment
        finally:
            environment.close()

    server: Server = Server(
        SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, lifespan=session_environment
    )

    def environment() -> MetricTrackerRlEnvironment:
        """The request's environment, playing its session's kept episode."""
        environment = server.request_context.lifespan_context
        session_id = _session_id(server)
        if sessions is not None and session_id is not None:
            environment.follow(sessions.episode(session_id))
        return environment

    def remember(environment: MetricTrackerRlEnvironment, before: str | None) -> None:
        """After a call: the kept episode a call started is the session's from now on."""
        session_id = _session_id(server)
        if sessions is not None and session_id is not None and environment.kept_episode_id != before:
            sessions.follow(session_id, environment.kept_episode_id)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [
            types.Tool(
                name=t.name,
                title=t.title,
                description=t.description,
                inputSchema=t.mcp_input_schema,
                outputSchema=t.output_schema,
                annotations=types.ToolAnnotations(**t.annotations),
            )
            for t in tool_catalog()
        ]

    # Arguments are checked by the tools themselves, so a bad one is an error result with a
    # precise message; the strict schemas would also refuse omitted optional arguments.
    @server.call_tool(validate_input=False)
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        session_environment = environment()
        before = session_environment.kept_episode_id
        result = session_environment.tools.call(name, arguments)
        remember(session_environment, before)
        return types.CallToolResult(
            content=[
                types.TextContent(type="text", text=result.summary()),
                types.TextContent(type="text", text=result.text()),
            ],
            structuredContent=result.structured(),
            isError=result.is_error,
        )

    @server.list_prompts()
    async def list_prompts() -> list[types.Prompt]:
        return [
            types.Prompt(
                name=PROMPT_NAME,
                title="Investigate this episode",
                description="How to play an episode: start it, investigate, submit the report.",
                arguments=[
                    types.PromptArgument(
                        name="task_id",
                        description=f"A named task: {', '.join(NAMED_TASKS)} (default: the first)",
                        required=False,
                    )
                ],
            )
        ]

    @server.get_prompt()
    async def get_prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        if name != PROMPT_NAME:
            raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=f"unknown prompt {name!r}"))
        task_id = (arguments or {}).get("task_id") or next(iter(NAMED_TASKS))
        if task_id not in NAMED_TASKS:
            message = f"unknown task_id {task_id!r}; expected one of {list(NAMED_TASKS)}"
            raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=message))
        return types.GetPromptResult(
            description=f"Investigate {task_id}",
            messages=[
                types.PromptMessage(
                    role="user", content=types.TextContent(type="text", text=investigation_prompt(task_id))
                )
            ],
        )

    @server.list_resources()
    async def list_resources() -> list[types.Resource]:
        tasks = [
            types.Resource(
                uri=TASK_URI.format(task_id=task.task_id),
                name=task.task_id,
                title=f"Task {task.task_id}",
                description=task.description,
                mimeType="text/markdown",
            )
            for task in NAMED_TASKS.values()
        ]
        episode = types.Resource(
            uri=EPISODE_URI,
            name="episode_config",
            title="Current episode",
            description="This session's episode: task, public config, budget used, last score.",
            mimeType="application/json",
        )
        return [*tasks, episode]

    @server.read_resource()
    async def read_resource(uri: Any) -> Iterable[ReadResourceContents]:
        uri = str(uri)
        if uri == EPISODE_URI:
            return [ReadResourceContents(environment().state.model_dump_json(), "application/json")]
        for task in NAMED_TASKS.values():
            if uri == TASK_URI.format(task_id=task.task_id):
                return [ReadResourceContents(task_text(task), "text/markdown")]
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=f"unknown resource {uri!r}"))

    return server


def _session_id(server: Server) -> str | None:
    """The ``Mcp-Session-Id`` of the HTTP request being answered (None over stdio)."""
    request = server.request_context.request
    headers = getattr(request, "headers", None)
    return None if headers is None else headers.get("mcp-session-id")


def kept_environments() -> Callable[[], MetricTrackerRlEnvironment]:
    """New environments that share one new store of kept episodes (``limits``' settings)."""
    return partial(MetricTrackerRlEnvironment, episodes=EpisodeStore.from_env(MetricTrackerRlEnvironment))


async def serve_stdio() -> None:
    """Serve one session over stdin/stdout until the host closes it."""
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class _ShortRequestWarnings(logging.Filter):
    """The SDK logs a request it cannot parse (a 2026 client's ``server/discover`` probe,
    answered with an error, after which the client uses ``initialize``) with every pydantic
    error, dozens of lines on the host's log; keep the first line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Failed to validate request"):
            record.msg, record.args = message.split("\n", 1)[0], ()
        return True


def run_stdio() -> None:
    """``metric-tracker mcp``: logs go to stderr; stdout carries only the protocol."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ShortRequestWarnings())
    anyio.run(serve_stdio)
