# Hugging Face Space (Docker SDK) image for the metric_tracker_rl OpenEnv server.
#   docker build -t metric-tracker-rl .
#   docker run --rm -p 8000:8000 metric-tracker-rl
# The Space's README front matter needs `sdk: docker` and `app_port: 8000`.
FROM python:3.11-slim

# uv from PyPI, the same version that wrote uv.lock.
RUN pip install --no-cache-dir uv==0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Dependencies first, exactly as locked (this layer is reused while only the source changes).
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project

# Then the project itself (metric_tracker_rl and server), still from the lockfile.
COPY . .
RUN uv sync --locked --no-dev

# The generator's compiled kernels (Numba), every one an episode calls, built into the image's
# cache beside the source, so that no container compiles them.
RUN .venv/bin/python -c "from metric_tracker_rl.kernel_paths import exercise_compiled; exercise_compiled()"

# Unprivileged user (Spaces run as uid 1000), who owns that cache: Numba reads a cache only
# from a folder it could write. Nothing else is written at runtime outside /tmp, so the image
# also runs read-only under another uid (as `openenv validate` starts it; Numba then compiles
# once per container into /tmp/.cache). /var/lib/metric-tracker is where replicas that share
# their records mount one volume (METRIC_TRACKER_RECORDS, deploy/compose.yaml); a new volume
# takes the folder's owner.
RUN useradd --create-home --uid 1000 user && chown -R user /app/metric_tracker_rl/__pycache__ \
    && mkdir -p /var/lib/metric-tracker && chown user /var/lib/metric-tracker
USER user
ENV PATH="/app/.venv/bin:${PATH}" \
    XDG_CACHE_HOME=/tmp/.cache \
    ENABLE_WEB_INTERFACE=1

EXPOSE 8000

# The slim image has no curl: ask /health with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# The `server` console script of pyproject.toml (server.app:main).
CMD ["server", "--host", "0.0.0.0", "--port", "8000"]
