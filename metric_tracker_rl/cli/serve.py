"""``metric-tracker serve`` (HTTP, WebSocket, MCP and the web debugger) and ``metric-tracker mcp``
(MCP over stdio)."""

from __future__ import annotations

import typer

from metric_tracker_rl.cli.common import CliError, command_group

app = command_group()


@app.command("serve")
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to bind."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    max_sessions: int = typer.Option(
        None,
        "--max-sessions",
        min=1,
        help="Concurrent sessions per worker, WebSocket and MCP each (default 1024).",
    ),
    mcp_idle_timeout: float = typer.Option(
        None,
        "--mcp-idle-timeout",
        min=0.001,
        help="Seconds before an idle MCP session closes (default 1800).",
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Step budget of every episode (default: set by each episode)."
    ),
    web: bool | None = typer.Option(
        None,
        "--web/--no-web",
        help="Mount the web debugger at /web (default: on with one worker, unless ENABLE_WEB_INTERFACE "
        "says otherwise).",
        show_default=False,
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Worker processes on the one port, each with --max-sessions sessions (no web debugger then).",
    ),
    records: str = typer.Option(
        None,
        "--records",
        help="SQLite file of the kept episodes and MCP sessions, shared by every worker or replica that "
        "opens it (default: in memory; with several workers, a file made for the run).",
    ),
) -> None:
    """Run the OpenEnv server (HTTP, WebSocket, MCP) and the web debugger at /web."""
    import os

    from metric_tracker_rl.serving import WEB_ENV_VAR, run, web_enabled

    # OpenEnv mounts /web only when ENABLE_WEB_INTERFACE is set; an explicit flag wins.
    if web is None:
        os.environ.setdefault(WEB_ENV_VAR, "1" if workers == 1 else "0")
    else:
        os.environ[WEB_ENV_VAR] = "1" if web else "0"
    if workers > 1 and web_enabled():
        raise CliError(
            "--workers: the web debugger keeps its state in one process; serve it with one worker "
            "(or --no-web with several)"
        )
    run(
        host=host,
        port=port,
        max_sessions=max_sessions,
        max_steps=max_steps,
        mcp_idle_timeout=mcp_idle_timeout,
        workers=workers,
        records_path=records,
    )


@app.command("mcp")
def mcp() -> None:
    """Serve the benchmark to an MCP host over stdio: one episode session for the process's life."""
    from metric_tracker_rl import kernel_paths
    from metric_tracker_rl.mcp.server import run_stdio

    kernel_paths.prepare_in_background()  # a host's first call never waits for a compile
    run_stdio()
