"""Run the shell and Python blocks of README.md and of every docs/*.md page as written, in a
fresh copy of the repository, check what they print against what the pages show, and check
that every relative link of those pages points to a file (and heading) that exists.

    uv run python scripts/check_readme.py            # every link and block; exit 1 on a difference
    uv run python scripts/check_readme.py --list     # the blocks and what is done with each
    uv run python scripts/check_readme.py --links    # the links only (quick)
    uv run python scripts/check_readme.py docs/task.md   # one page's blocks (and every link)

Rules, read from the pages themselves:

- A ```bash block runs as one bash script (``set -e``), a ```python block as a Python
  program, from the root of a copy of the repository's tracked files (so nothing that a
  clone lacks, such as ``bench/results/``, can help), with the project's environment. The
  pages' blocks run in one copy, README.md first, then docs/ in name order.
- The output a block prints must equal the ```text block that follows it, when one does
  (only prose, such as "Output:", between them).
- ``<!-- readme: tables N -->`` before a block: the next N Markdown tables of its page
  must each appear, line for line, in what the block prints.
- ``<!-- readme: server -->`` before a block: a server (``metric-tracker serve``) runs at
  http://localhost:8000 while the block runs, as its text says.
- ``<!-- readme: skip REASON -->`` before a block: not run (it serves forever, needs a
  program this project does not ship, ...). A ```json block must parse as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
RUNNABLE = ("bash", "python")
DIRECTIVE = re.compile(r"<!--\s*readme:\s*(\w+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
SERVER_PORT = 8000
SERVER_URL = f"http://localhost:{SERVER_PORT}"
PORT_WAIT_S = 900  # another check beside this one holds the port for a block at a time
BLOCK_TIMEOUT_S = 600


@dataclass
class Block:
    page: str  # the page's path from the repository root
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    directives: dict[str, str] = field(default_factory=dict)
    expected_output: str | None = None  # the ```text block shown after it
    expected_tables: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line} ({self.language})"


def pages(root: Path = ROOT) -> list[str]:
    """The checked pages: README.md, then docs/*.md in name order."""
    return ["README.md", *(f"{DOCS}/{path.name}" for path in sorted((root / DOCS).glob("*.md")))]


def parse(text: str, page: str = "README.md") -> list[Block]:
    """The fenced blocks of a page with their directives and the outputs the page shows for them."""
    fences = list(FENCE.finditer(text))
    blocks = []
    for k, fence in enumerate(fences):
        start = fence.start()
        before = text[fences[k - 1].end() if k else 0 : start]
        last_lines = before.rstrip("\n").splitlines()[-1:] or [""]
        directives = dict(DIRECTIVE.findall(last_lines[0]))
        block = Block(page, text.count("\n", 0, start) + 1, fence.group(1), fence.group(2), directives)
        after = fences[k + 1] if k + 1 < len(fences) else None
        if after is not None and after.group(1) == "text" and _only_prose(text[fence.end() : after.start()]):
            block.expected_output = after.group(2)
        if "tables" in directives:
            block.expected_tables = _tables(text[fence.end() :])[: int(directives["tables"])]
        blocks.append(block)
    return blocks


def _only_prose(between: str) -> bool:
    lines = [line for line in between.splitlines() if line.strip()]
    return len(lines) <= 1 and all(line.rstrip().endswith(":") for line in lines)


def _tables(text: str) -> list[str]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def anchors(text: str) -> set[str]:
    """The anchors a page's headings get (GitHub's rule: lower case, punctuation dropped,
    spaces to hyphens; a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(_without_fences(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _without_fences(text: str) -> str:
    return FENCE.sub(lambda fence: "\n" * fence.group(0).count("\n"), text)


def _without_code(text: str) -> str:
    """The page without its fenced blocks and inline code (whose brackets are not links)."""
    return re.sub(r"`[^`\n]*`", "", _without_fences(text))


def broken_links(root: Path = ROOT) -> list[str]:
    """Every relative link of the checked pages whose file or heading does not exist."""

    @cache  # per call: a page is read and parsed once, however many links point into it
    def headings(page: Path) -> set[str]:
        return anchors(page.read_text("utf-8"))

    problems = []
    for page in pages(root):
        text = (root / page).read_text(encoding="utf-8")
        for target in LINK.findall(_without_code(text)):
            if EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            linked = (root / page).parent / path if path else root / page
            if not linked.resolve().is_relative_to(root.resolve()) or not linked.exists():
                problems.append(f"{page}: link {target!r}: no such file {path!r}")
            elif anchor and linked.suffix == ".md" and anchor not in headings(linked.resolve()):
                problems.append(f"{page}: link {target!r}: {path or page} has no heading #{anchor}")
    return problems


def fresh_copy(destination: Path) -> Path:
    """The repository's tracked files (as they are in the work tree), as a clone would have them."""
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def block_environment(copy: Path) -> dict[str, str]:
    """The project's environment for the copy: ``uv run`` uses it as it is, and Python finds
    the copy's sources first."""
    env = dict(os.environ)
    env.update(
        UV_PROJECT_ENVIRONMENT=str(Path(sys.prefix)),
        UV_NO_SYNC="1",
        PYTHONPATH=str(copy),
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
    )
    env.pop("METRIC_TRACKER_DEBUG", None)
    return env


@contextlib.contextmanager
def server(copy: Path, env: dict[str, str]) -> Iterator[None]:
    """``metric-tracker serve`` at localhost:8000 while a block runs. Another process holding
    the port (another check running beside this one) is waited for, and the blocks run only
    once this server listens there itself."""
    import httpx

    _wait_for_free_port(SERVER_PORT, timeout=PORT_WAIT_S)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "metric_tracker_rl.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(SERVER_PORT),
            ],
            cwd=copy,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )

        def logged() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited: {logged()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    listening = "Uvicorn running on" in logged()  # this server, not another one
                    if listening and httpx.get(f"{SERVER_URL}/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"the server did not become healthy: {logged()[-2000:]}")
            yield
        finally:
            _stop(process)


def _wait_for_free_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} stayed in use by another process; the 'server' blocks need it")
        time.sleep(1.0)


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_block(block: Block, copy: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if block.language == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", block.code]
    process = subprocess.Popen(
        command,
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT_S)
    finally:
        _stop(process)  # and whatever it left running in the background
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def check(block: Block, copy: Path, env: dict[str, str]) -> list[str]:
    """The problems with one block (an empty list when it runs as shown)."""
    if block.language == "json":
        try:
            json.loads(block.code)
        except json.JSONDecodeError as err:
            return [f"{block.label}: not JSON ({err})"]
        return []
    if block.language not in RUNNABLE or "skip" in block.directives:
        return []
    with server(copy, env) if "server" in block.directives else contextlib.nullcontext():
        done = run_block(block, copy, env)
    problems = []
    if done.returncode != 0:
        problems.append(f"{block.label}: exit code {done.returncode}\n{done.stderr[-3000:]}")
    if block.expected_output is not None and done.stdout != block.expected_output:
        problems.append(f"{block.label}: printed\n{done.stdout}\ninstead of\n{block.expected_output}")
    for table in block.expected_tables:
        if table not in done.stdout:
            problems.append(
                f"{block.label}: the table below it is not what it prints:\n{table}\n---\n{done.stdout}"
            )
    return problems


def describe(block: Block) -> str:
    if block.language == "json":
        return "parsed as JSON"
    if block.language not in RUNNABLE:
        return "shown only"
    if "skip" in block.directives:
        return f"skipped: {block.directives['skip']}"
    parts = ["run"]
    if "server" in block.directives:
        parts.append("with a server at localhost:8000")
    if block.expected_output is not None:
        parts.append("output compared with the text block after it")
    if block.expected_tables:
        parts.append(f"its output holds the {len(block.expected_tables)} table(s) below it")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="list the blocks and what is done with each")
    parser.add_argument("--links", action="store_true", help="check the links only")
    parser.add_argument("pages", nargs="*", help="run only these pages' blocks (default: every page)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.pages) - set(pages()))
    if unknown:
        parser.error(f"not a checked page: {unknown}; the pages are {pages()}")
    chosen = args.pages or pages()
    blocks = [block for page in chosen for block in parse((ROOT / page).read_text(encoding="utf-8"), page)]
    if args.list:
        for block in blocks:
            print(f"{block.label}: {describe(block)}")
        return 0
    problems = broken_links()
    print(f"links of {len(pages())} pages: {'ok' if not problems else 'FAILED'}", flush=True)
    if args.links:
        return _reported(problems)
    with tempfile.TemporaryDirectory(prefix="readme-") as folder:
        copy = fresh_copy(Path(folder))
        env = block_environment(copy)
        for block in blocks:
            started = time.monotonic()
            found = check(block, copy, env)
            print(
                f"{block.label}: {describe(block)}: {'ok' if not found else 'FAILED'} "
                f"({time.monotonic() - started:.1f} s)",
                flush=True,
            )
            problems.extend(found)
    return _reported(problems)


def _reported(problems: list[str]) -> int:
    """Print the problems (to stderr); the exit status."""
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
