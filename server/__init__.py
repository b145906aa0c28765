"""OpenEnv entry point for metric_tracker_rl (``server.app:app``)."""
