"""OpenEnv entry point: ``uvicorn server.app:app`` or the ``server`` console script."""

from __future__ import annotations

import argparse

from metric_tracker_rl.serving import DEFAULT_HOST, DEFAULT_PORT, build_app, run

app = build_app()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the metric_tracker_rl OpenEnv environment.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
