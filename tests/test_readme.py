"""The README's shell and Python blocks run as written, in a fresh copy of the repository,
and print what the README shows (scripts/check_readme.py)."""

from __future__ import annotations

import importlib.util
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


def test_every_readme_block_runs_as_shown() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/check_readme.py"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr[-6000:]
