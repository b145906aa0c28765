"""The command line: ``metric-tracker tasks`` as tables and as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metric_tracker_rl import constants as C
from metric_tracker_rl.cli import app
from metric_tracker_rl.tasks import EVAL_SEED_BASE, EVAL_SPLIT, NAMED_TASKS

runner = CliRunner()
TASK_IDS = ("easy_single_spike", "medium_mixed_pair", "hard_mixed_multi")


def test_named_tasks_are_the_three_of_the_spec() -> None:
    assert set(TASK_IDS) <= set(NAMED_TASKS)


def test_tasks_prints_named_tasks_and_split_tables() -> None:
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    assert "Named tasks" in result.output
    assert "Evaluation split" in result.output
    for task in NAMED_TASKS.values():
        assert task.task_id in result.output
        assert task.difficulty in result.output
    assert str(len(EVAL_SPLIT)) in result.output
    assert str(EVAL_SEED_BASE) in result.output


def test_tasks_json_is_valid_and_complete() -> None:
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    named = {task["task_id"]: task for task in data["named_tasks"]}
    assert set(TASK_IDS) <= set(named)
    for task_id, task in named.items():
        spec = NAMED_TASKS[task_id]
        assert task["difficulty"] == spec.difficulty
        assert task["anomalies"] == len(spec.anomaly_plan)
        assert task["anomaly_rows"] == (None if spec.difficulty in C.HIDDEN_ROW_COUNT else spec.anomaly_rows)
        assert task["description"] == spec.description
    split = data["evaluation_split"]
    assert split["count"] == len(EVAL_SPLIT) == len(split["configs"])
    assert split["configs"] == [dict(config) for config in EVAL_SPLIT]
    assert split["seed_min"] == EVAL_SEED_BASE
    assert split["seed_max"] == max(config["seed"] for config in EVAL_SPLIT)
    assert set(split["difficulties"]) == {"easy", "medium", "hard"}
    assert "mixed" in split["scenario_families"]
    assert data["training_seeds"] == {"below": EVAL_SEED_BASE}


def test_tasks_json_is_deterministic_with_sorted_keys() -> None:
    first = runner.invoke(app, ["tasks", "--json"]).output
    second = runner.invoke(app, ["tasks", "--json"]).output
    assert first == second
    data = json.loads(first)
    assert first.strip() == json.dumps(data, indent=2, sort_keys=True)


def test_named_task_anomaly_rows_match_the_environment() -> None:
    """The catalog's row counts are what a reset of each task really hides."""
    from metric_tracker_rl.episode import build_episode
    from metric_tracker_rl.tasks import config_for

    data = json.loads(runner.invoke(app, ["tasks", "--json"]).output)
    for task in data["named_tasks"]:
        episode = build_episode(config_for(task["task_id"]))
        assert len(episode.incidents) == task["anomalies"]
        assert task["anomaly_rows"] == episode.shown_row_count()


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "tasks" in result.output


def test_unknown_command_fails() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code != 0


def test_importing_the_cli_does_not_load_openenv() -> None:
    code = "import sys, metric_tracker_rl.cli; print(any(m.startswith('openenv') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("args", [["tasks"], ["tasks", "--json"]])
def test_module_entry_point_runs(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "metric_tracker_rl.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for task_id in TASK_IDS:
        assert task_id in out.stdout


# --- methods ---------------------------------------------------------------------------


def test_methods_json_is_the_registry() -> None:
    from metric_tracker_rl.analysis import REGISTRY, available_methods

    result = runner.invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [m["name"] for m in data] == list(REGISTRY)
    assert data == json.loads(json.dumps(available_methods()))


def test_methods_listing_names_every_method() -> None:
    from metric_tracker_rl.analysis import REGISTRY

    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0, result.output
    for name in REGISTRY:
        assert name in result.output


def test_methods_markdown_has_one_row_per_method() -> None:
    from metric_tracker_rl.analysis import REGISTRY

    lines = runner.invoke(app, ["methods", "--markdown"]).output.strip().splitlines()
    assert lines[0] == "| method | kind | cost | arguments | description |"
    assert [line.split("|")[1].strip(" `") for line in lines[2:]] == list(REGISTRY)
    costs = [line.split("|")[3].strip() for line in lines[2:]]
    assert costs == [
        f"{s.cost} + {s.cost_per_row}/row" if s.cost_per_row else str(s.cost) for s in REGISTRY.values()
    ]


# --- the documentation stays true --------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_methods_table_matches_the_registry() -> None:
    table = runner.invoke(app, ["methods", "--markdown"]).output.strip()
    assert table in (DOCS / "task.md").read_text()


def test_docs_tasks_and_thresholds_match_the_code() -> None:
    text = (DOCS / "task.md").read_text()
    for task in NAMED_TASKS.values():
        rows = task.describe()["anomaly_rows"]
        shown = "not given" if rows is None else rows
        cells = (f"`{task.task_id}`", task.difficulty, len(task.anomaly_plan), shown, task.description)
        assert "| " + " | ".join(map(str, cells)) + " |" in text
    assert f"The split has {len(EVAL_SPLIT)} configs" in text
    text = (DOCS / "data.md").read_text()
    for metric, threshold in C.RATE_THRESHOLD_PP.items():
        assert f"`{metric}` {threshold}" in text
    assert f"baseline > {C.COUNT_THRESHOLD_RELATIVE}" in text
    assert f"> {C.HOURLY_MIX_THRESHOLD_PP} share points" in text
    assert f"(1 − {C.FUNNEL_BREAK_RELATIVE_DROP}) × baseline" in text
    margins = ", ".join(f"{C.MARGIN[d]:.2f} ({d})" for d in C.DIFFICULTIES)
    assert f"with margin {margins}" in text


def test_ctrl_c_in_any_command_says_interrupted_and_exits_130(monkeypatch, capsys, tmp_path) -> None:
    from metric_tracker_rl.cli import run
    from metric_tracker_rl.integrations import dataset

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "write_dataset", interrupted)
    assert run(["dataset", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "metric-tracker: interrupted\n"


# --- serve: where it cannot listen ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["out_of_range", "in_use", "unknown_host"])
def test_serve_where_it_cannot_listen_is_one_line_and_exit_code_2(where: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = {
            "out_of_range": (["--port", "99999"], "'--port': Input should be less than or equal to 65535"),
            "in_use": (["--host", "127.0.0.1", "--port", str(port)], f"127.0.0.1:{port}: the port is in use"),
            "unknown_host": (["--host", "nope.invalid"], "cannot listen on 'nope.invalid'"),
        }
        argv, message = args[where]
        done = subprocess.run(
            [sys.executable, "-m", "metric_tracker_rl.cli", "serve", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("metric-tracker serve: error: ") and message in line, line


def test_the_server_script_names_a_port_in_use_in_its_usage_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[1],
        )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        f"cannot listen on 127.0.0.1:{port}: the port is in use (another server?); choose another port"
    )
