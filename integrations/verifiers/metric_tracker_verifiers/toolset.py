"""The tools of one rollout: the server's catalog, played in one episode on the server.

verifiers launches one ``EpisodeToolset`` process per rollout (an MCP server that the
harness's program connects to). At start it opens an episode session on the server the
rollout was given, starts the task's episode there and registers every tool of the server's
catalog but ``start_episode`` (the task, not the model, chooses the episode), with the
server's names, descriptions and input schemas. A call is forwarded to the session as it
is; the model gets the observation back as JSON, and the rollout's state gets the budget,
the reward and the grader's breakdown. The session ends with the process.

Run as ``python -m metric_tracker_verifiers.toolset`` (verifiers does it).
"""

from __future__ import annotations

import inspect
import json
import keyword
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import verifiers.v1 as vf
from pydantic import WithJsonSchema

from metric_tracker_verifiers.episode import EpisodeData, EpisodeState
from metric_tracker_verifiers.remote import START_EPISODE, EpisodeSession, ServerError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def shown(observation: dict[str, Any]) -> str:
    """An observation as the model reads it: compact JSON without its empty fields."""
    kept = {key: value for key, value in observation.items() if value not in (None, "", [], {})}
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


class EpisodeToolset(vf.Toolset[vf.ToolsetConfig, EpisodeState]):
    TOOL_PREFIX = None  # the model sees the server's tool names as they are

    def __init__(self, config: vf.ToolsetConfig) -> None:
        super().__init__(config)
        self.data: EpisodeData | None = None
        self.session: EpisodeSession | None = None
        self.catalog: list[dict[str, Any]] = []

    async def setup_task(self, task: EpisodeData) -> None:
        self.data = task
        # Run with the rollout's state, as a tool call is: the server URL comes in, the
        # episode's budget (or the reason it could not start) goes out.
        await self._with_state(self._start_episode)()

    async def _start_episode(self) -> None:
        assert self.data is not None
        url = self.state.server_url or self.data.base_urls[0]
        try:
            self.session = await EpisodeSession(url).open()
            tools = await self.session.list_tools()
            first = await self.session.call(START_EPISODE, self.data.reset)
        except ServerError as err:
            # No tools then: the task's stop hook ends the rollout, its reward reports the error.
            self.state.error = str(err)
            return
        if first.get("status") != "ready":
            self.state.error = f"{START_EPISODE} {self.data.reset}: {first.get('message')}"
            return
        self.catalog = [tool for tool in tools if tool["name"] != START_EPISODE]
        self.state.server_url = url
        self.state.budget = first.get("budget") or {}

    def register(self, mcp: MCPServer) -> None:
        # As vf.Toolset.register does for its @vf.tool methods: each call runs with the state.
        for tool in self.catalog:
            mcp.add_tool(
                self._with_state(catalog_tool(tool, self.play)),
                name=tool["name"],
                description=tool.get("description") or None,
            )

    async def play(self, name: str, arguments: dict[str, Any]) -> str:
        """One tool call in the episode; the observation as the model reads it."""
        assert self.session is not None
        try:
            observation = await self.session.call(name, arguments)
        except ServerError as err:
            self.state.error = str(err)
            return json.dumps({"status": "error", "message": str(err)})
        self.state.record(observation)
        return shown(observation)


# The episode handle episode tools take: a rollout plays its own session's episode, so the
# model is not offered it.
HANDLE = "episode_id"


def catalog_tool(tool: dict[str, Any], play: Callable[[str, dict[str, Any]], Awaitable[str]]) -> Any:
    """A function whose signature is the tool's input schema, property by property (but the
    episode handle), so the MCP server lists the catalog's schema; it forwards the arguments
    it is given."""
    name = tool["name"]
    schema = tool.get("inputSchema") or {}
    required = set(schema.get("required", []))
    parameters = []
    for argument, argument_schema in (schema.get("properties") or {}).items():
        if argument == HANDLE:
            continue
        if not argument.isidentifier() or keyword.iskeyword(argument):
            raise ServerError(f"tool {name!r}: argument {argument!r} cannot be a parameter name")
        parameters.append(
            inspect.Parameter(
                argument,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[Any, WithJsonSchema(argument_schema)],
                **({} if argument in required else {"default": None}),
            )
        )

    async def call(**arguments: Any) -> str:
        return await play(name, arguments)

    call.__name__ = name
    call.__doc__ = tool.get("description")
    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return call


if __name__ == "__main__":
    EpisodeToolset.run()
