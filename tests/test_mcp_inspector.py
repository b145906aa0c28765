"""The MCP Inspector's command line against the real server, as a host's developer runs it.

The Inspector (``@modelcontextprotocol/inspector``, pinned in ``tests/mcp_inspector``) is
installed by ``npm ci --ignore-scripts --prefix tests/mcp_inspector`` (CI does; elsewhere
these tests skip without it, and fail under METRIC_TRACKER_REQUIRE_EXTRAS=1). Each
``--cli`` run is one process and one MCP session: it lists the tools with their titles,
annotations and output schemas over streamable HTTP and stdio, and plays an episode to
1.0 with one run per call, the episode's handle passed as an argument.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from extras import REQUIRE_VAR
from solver_calls import solver_calls

from metric_tracker_rl.tools import tool_catalog

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
INSPECTOR = REPO / "tests" / "mcp_inspector" / "node_modules" / ".bin" / "mcp-inspector"
CATALOG = {tool.name: tool for tool in tool_catalog()}
TASK = "hard_mixed_multi"


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run the Inspector's CLI (its own home: it keeps a catalog and a secret store there)."""
    if not INSPECTOR.exists() or shutil.which("node") is None:
        message = "needs Node.js and the MCP Inspector: npm ci --ignore-scripts --prefix tests/mcp_inspector"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("inspector_home")
    env = {**os.environ, "HOME": str(home), "MCP_INSPECTOR_SECRET_STORE": "memory"}

    def run(*arguments: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(INSPECTOR), "--cli", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    return run


def listed_metadata(tools: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(t["name"], t["title"], t["annotations"], t["inputSchema"], t["outputSchema"]) for t in tools]


CATALOG_METADATA = [
    (t.name, t.title, t.annotations, t.mcp_input_schema, t.output_schema) for t in tool_catalog()
]


def test_inspector_lists_titles_annotations_and_output_schemas_over_http(
    inspector: Any, server_url: str
) -> None:
    tools = inspector(f"{server_url}/mcp", "--method", "tools/list")["tools"]
    assert listed_metadata(tools) == CATALOG_METADATA
    assert [t["description"] for t in tools] == [t.description for t in tool_catalog()]


def test_inspector_lists_titles_annotations_and_output_schemas_over_stdio(inspector: Any) -> None:
    command = str(Path(sys.executable).parent / "metric-tracker")
    tools = inspector(command, "mcp", "--method", "tools/list")["tools"]
    assert listed_metadata(tools) == CATALOG_METADATA


def tool_arguments(arguments: dict[str, Any]) -> list[str]:
    """``--tool-arg`` pairs: strings as they are, anything else as JSON (the Inspector reads
    each by the tool's input schema)."""
    return [
        f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in arguments.items() if v is not None
    ]


def test_inspector_plays_an_episode_to_1_one_session_per_call(inspector: Any, server_url: str) -> None:
    """No session outlives a call: the episode_id from start_episode carries the episode."""

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        pairs = tool_arguments(arguments)
        result = inspector(
            f"{server_url}/mcp",
            "--method",
            "tools/call",
            "--tool-name",
            name,
            *(["--tool-arg", *pairs] if pairs else []),
        )
        assert not result.get("isError"), result
        jsonschema.validate(result["structuredContent"], CATALOG[name].output_schema)
        return result["structuredContent"]

    (start, config), *steps = solver_calls(TASK)
    handle = call(start, config)["episode_id"]
    answers = [call(name, {**arguments, "episode_id": handle}) for name, arguments in steps]
    assert {answer["episode_id"] for answer in answers} == {handle}
    final = answers[-1]
    report = steps[-1][1]["classifications"]  # the solver's report, every row of the truth
    assert (final["status"], final["reward"], final["done"], final["correct_row_count"]) == (
        "graded",
        1.0,
        True,
        len(report),
    )
