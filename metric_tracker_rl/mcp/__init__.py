"""MCP servers for the tools of ``metric_tracker_rl.tools``.

- ``dialect``: OpenEnv's own MCP dialect (``env.mcp_server``).

Importing this package imports no MCP library; each module imports its own.
"""
