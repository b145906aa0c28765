"""OpenEnv entry point: ``uvicorn server.app:app`` or the ``server`` console script."""

from __future__ import annotations

import argparse

from metric_tracker_rl.serving import DEFAULT_HOST, DEFAULT_PORT, ServeError, build_app, run

app = build_app()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the metric_tracker_rl OpenEnv environment.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    try:
        run(host=args.host, port=args.port)
    except ServeError as err:  # a port in use or out of range: one line, exit code 2
        parser.error(str(err))


if __name__ == "__main__":
    main()
