"""MCP servers for the tools of ``metric_tracker_rl.tools``.

- ``server``: the standard protocol (the ``mcp`` SDK's server), one episode per MCP
  session; served over stdio by ``metric-tracker mcp``.
- ``http``: that server over streamable HTTP at ``/mcp``, beside OpenEnv's dialect; its
  sessions (``sessions``) live in the server's records, so any worker answers them.
- ``dialect``: OpenEnv's own MCP dialect (``env.mcp_server``).

Importing this package imports no MCP library; each module imports its own.
"""
