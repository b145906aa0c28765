"""The shell and Python blocks of README.md and docs/*.md run as written, in a fresh copy of
the repository, and print what the pages show; every relative link of those pages resolves
(scripts/check_readme.py)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_readme", ROOT / "scripts" / "check_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


SAMPLE = """Intro.

```bash
echo one
```

Output:

```text
one
```

<!-- readme: skip needs a program we do not ship -->
```bash
exit 3
```

<!-- readme: tables 1 -->
```python
print("| a |")
print("| 2 |")
```

| a |
| 1 |

```json
{"valid": true
```
"""


def test_the_checker_finds_what_differs(checker: ModuleType, tmp_path: Path) -> None:
    blocks = checker.parse(SAMPLE)
    assert [b.language for b in blocks] == ["bash", "text", "bash", "python", "json"]
    echo, _, skipped, tables, broken = blocks
    env = checker.block_environment(tmp_path)
    assert echo.expected_output == "one\n" and checker.check(echo, tmp_path, env) == []
    echo.expected_output = "two\n"
    assert "printed" in checker.check(echo, tmp_path, env)[0]
    assert skipped.directives == {"skip": "needs a program we do not ship"}
    assert checker.check(skipped, tmp_path, env) == []
    assert tables.expected_tables == ["| a |\n| 1 |"]
    assert "table below it" in checker.check(tables, tmp_path, env)[0]
    assert "not JSON" in checker.check(broken, tmp_path, env)[0]


def test_every_docs_page_is_checked_and_labels_name_their_page(checker: ModuleType) -> None:
    pages = checker.pages()
    assert pages[0] == "README.md"
    assert sorted(pages[1:]) == sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))
    assert len(pages) > 2
    block = checker.parse("Text.\n\n```bash\necho hi\n```\n", "docs/page.md")[0]
    assert block.label == "docs/page.md:3 (bash)"


def test_a_broken_link_or_anchor_is_found(checker: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Top\n\nSee [a](docs/a.md#the-b-part-bpy), [gone](docs/gone.md), [web](https://example.org),\n"
        "[self](#top), [nowhere](#nowhere), ![img](docs/pic.png) and `[code](not/a/link.md)`.\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "a.md").write_text(
        "# A\n\n## The B part (`b.py`)\n\n```bash\n# not a heading\n```\n"
        "Back to [the README](../README.md#top), [up](../../outside.md) and [c](#not-a-heading).\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "pic.png").write_bytes(b"")
    assert checker.anchors((tmp_path / "docs" / "a.md").read_text()) == {"a", "the-b-part-bpy"}
    problems = checker.broken_links(tmp_path)
    assert len(problems) == 4, problems
    assert "'docs/gone.md': no such file" in problems[0]
    assert "'#nowhere': README.md has no heading #nowhere" in problems[1]
    assert "'../../outside.md': no such file" in problems[2]
    assert "'#not-a-heading'" in problems[3]


def test_every_relative_link_of_the_pages_resolves(checker: ModuleType) -> None:
    assert checker.broken_links() == []


def test_sources_cite_the_docs_pages_not_documents_outside_the_repository() -> None:
    """Docstrings and comments point at README.md or docs/ pages that exist."""
    outside = re.compile(r"\bSPE" + r"C\b")  # the word split, so that this file does not match itself
    cited = re.compile(r"\bdocs/([\w-]+\.md)")
    sources = [
        path
        for folder in ("metric_tracker_rl", "tests", "scripts", "bench", "server", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if ".venv" not in path.parts
    ]
    assert len(sources) > 50
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not outside.search(text), path
        for page in cited.findall(text) if path != Path(__file__) else ():  # this file's samples
            assert (ROOT / "docs" / page).is_file(), f"{path} cites docs/{page}"


def test_what_the_examples_write_is_left_out_of_git() -> None:
    written = ["out/hard/daily.parquet", "data/sft/train.parquet", "bench/results/scores.json", "report.json"]
    done = subprocess.run(["git", "check-ignore", *written], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.split() == written


def test_every_readme_block_runs_as_shown() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/check_readme.py"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout + done.stderr[-6000:]
