"""``metric-tracker eval`` as a user runs it: mistakes are one line without a traceback,
reports land where asked, finished episodes are journalled as they finish, a resumed run
reports the same bytes as an uninterrupted one, and failed episodes are recorded."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fake_openai import FakeOpenAI

from metric_tracker_rl import __version__, evaluation
from metric_tracker_rl.agents import AGENTS

REPO = Path(__file__).resolve().parents[1]
TASKS = ["--task", "easy_single_spike", "--task", "medium_mixed_pair", "--task", "hard_mixed_multi"]
ENDPOINT_VARS = ("API_BASE_URL", "MODEL_NAME", "HF_TOKEN", "OPENAI_API_KEY")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "metric-tracker"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "metric_tracker_rl.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=180, cwd=cwd, env=env, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--agent", "solver", "--json", "."], "--json: '.' is a folder"),
        (["eval", "--agent", "solver", "--configs", "no-such.jsonl"], "--configs: no such file"),
        (["eval", "--agent", "solver", "--url", "http://127.0.0.1:9"], "--url: no server answers"),
        (["eval", "--agent", "nobody"], "unknown agent(s) ['nobody']"),
        (["eval", "--agent", "solver", "--workers", "many"], "'--workers'"),
        (["eval", "--agent", "solver", "--resume"], "--resume needs --json"),
        (["eval"], "Missing option '--agent'"),
        (["export", "out", "--difficulty", "extreme"], "unknown difficulty 'extreme'"),
        (["dataset", "/proc/nope"], "cannot write the dataset to '/proc/nope' (No such file or directory)"),
        (["no-such-command"], "No such command"),
    ],
    ids=[
        "json-folder",
        "missing-configs",
        "no-server",
        "agent",
        "workers",
        "resume",
        "no-agent",
        "export",
        "dataset-folder",
        "cmd",
    ],
)
def test_a_mistake_is_one_line_without_a_traceback(args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("metric-tracker") and message in lines[0], lines[0]
    assert "Traceback" not in done.stderr and "[Errno" not in done.stderr


def test_a_bad_line_in_a_configs_file_is_named(tmp_path: Path) -> None:
    configs = tmp_path / "configs.jsonl"
    for line, problem in (
        ("[1, 2]", "each line must be a JSON object"),
        ('{"difficulty": "extreme"}', "unknown difficulty 'extreme'"),
        ('{"seeed": 3}', "unknown reset arguments ['seeed']"),
        ("{oops", "not JSON"),
    ):
        configs.write_text('{"task_id": "easy_single_spike"}\n' + line + "\n", encoding="utf-8")
        done = cli("eval", "--agent", "solver", "--configs", str(configs))
        assert done.returncode == 2
        assert f"{configs}:2: {problem}" in done.stderr and len(done.stderr.splitlines()) == 1


def test_the_report_is_written_where_asked_with_a_journal_beside_it(tmp_path: Path) -> None:
    report = tmp_path / "not" / "yet" / "there" / "scores.json"
    done = cli("eval", "--agent", "solver", *TASKS, "--json", str(report))
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["mean_score"] == 1.0 and data["failed_episodes"] == 0
    header, *journal = [json.loads(line) for line in Path(f"{report}.partial.jsonl").read_text().splitlines()]
    assert [entry["record"] for entry in journal] == data["episodes"]
    assert header == {"run": {"date": data["run"]["date"]}}
    assert data["run"] == {
        "version": __version__,
        "task_set": {"tasks": TASKS[1::2], "split": None, "configs": None},
        "max_steps": None,
        "url": None,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
    }


def test_a_resumed_run_plays_only_what_is_missing_and_reports_the_same_bytes(tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    both = ("--agent", "solver", "--agent", "explorer", *TASKS)
    assert cli("eval", *both, "--json", str(first)).returncode == 0
    expected = first.read_text(encoding="utf-8")
    journal = Path(f"{first}.partial.jsonl")
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7  # the run's date, then one line an episode
    # Interrupted after two episodes, the third cut mid-line:
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40], encoding="utf-8")
    first.unlink()
    done = cli("eval", *both, "--json", str(first), "--resume")
    assert done.returncode == 0, done.stderr
    assert first.read_text(encoding="utf-8") == expected
    kept = journal.read_text(encoding="utf-8").splitlines()
    assert kept[:3] == lines[:3] and len([k for k in kept if k.endswith("}")]) == 7
    # Without --resume the journal starts again.
    assert (
        cli("eval", "--agent", "solver", "--task", "easy_single_spike", "--json", str(first)).returncode == 0
    )
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 2


def test_resume_skips_the_journalled_episodes(tmp_path: Path) -> None:
    """In process: a journal that already holds an episode is not played again."""
    configs = [{"task_id": "easy_single_spike"}, {"task_id": "medium_mixed_pair"}]
    played: list[dict[str, Any]] = []

    class Counting:
        name = "counting"

        def play(self, env: Any, config: dict[str, Any]) -> Any:
            played.append(config)
            return AGENTS["solver"]().play(env, config)

    AGENTS["counting"] = Counting
    try:
        report_path = tmp_path / "scores.json.partial.jsonl"
        with time_machine.travel(dt.datetime(2026, 3, 31, 23, 59, tzinfo=dt.UTC), tick=False):
            journal = evaluation.Journal(report_path)
        whole = evaluation.run_evaluation("counting", configs, journal=journal)
        journal.close()
        assert len(played) == 2
        with time_machine.travel(dt.datetime(2026, 4, 2, tzinfo=dt.UTC), tick=False):
            resumed_journal = evaluation.Journal(report_path, resume=True)
        resumed = evaluation.run_evaluation("counting", configs, journal=resumed_journal)
        resumed_journal.close()
        assert len(played) == 2 and resumed == whole
        assert journal.date == resumed_journal.date == "2026-03-31"  # a resumed run keeps its date
    finally:
        del AGENTS["counting"]


def test_a_failed_episode_is_recorded_the_run_goes_on_and_resume_plays_it_again(tmp_path: Path) -> None:
    report = tmp_path / "llm.json"
    args = ["eval", "--agent", "llm", "--task", "easy_single_spike", "--task", "medium_mixed_pair"]
    # The first request fails on every attempt (1 + the client's 4 retries): episode 1 fails.
    with FakeOpenAI(faults=["http_500"] * 5) as fake:
        env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
        env.update(API_BASE_URL=fake.base_url, MODEL_NAME="fake-model", HF_TOKEN="test-key")
        done = cli(*args, "--json", str(report), env=env)
        assert done.returncode == 1, done.stderr
        assert "1 of 2 episodes failed" in done.stderr and "Traceback" not in done.stderr
        data = json.loads(report.read_text(encoding="utf-8"))
        assert data["failed_episodes"] == 1
        failed, played = data["episodes"]
        assert failed["score"] is None and "failed after its retries" in failed["error"]
        assert played["score"] == 1.0 and data["mean_score"] == 1.0
        requests_before = len(fake.requests)
        resumed = cli(*args, "--json", str(report), "--resume", env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert 0 < len(fake.requests) - requests_before < requests_before  # only the failed one again
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["failed_episodes"] == 0 and [e["score"] for e in data["episodes"]] == [1.0, 1.0]


def test_a_server_that_goes_away_fails_the_remaining_episodes_and_the_run_ends() -> None:
    """Against a server URL: the server stops at the end of the first episode; the next one
    is recorded as failed with the connection error, and the report still comes."""
    from conftest import _launch, _serve, _stop

    server: dict[str, Any] = {}

    class StopsTheServer:
        name = "stops_the_server"

        def play(self, env: Any, config: dict[str, Any]) -> Any:
            final = AGENTS["solver"]().play(env, config)
            _stop(server)
            return final

    _launch(server)
    AGENTS[StopsTheServer.name] = StopsTheServer
    try:
        url = _serve(server)
        configs = [{"task_id": "easy_single_spike"}, {"task_id": "medium_mixed_pair"}]
        report = evaluation.run_evaluation(StopsTheServer.name, configs, url=url)
    finally:
        del AGENTS[StopsTheServer.name]
        _stop(server)
    first, second = report["episodes"]
    assert first["score"] == 1.0
    assert second["score"] is None and second["error"]
    assert report["failed_episodes"] == 1 and report["mean_score"] == 1.0


# --- an LLM run without its endpoint, the table's counts, Ctrl-C ---------------------------------


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ({}, "API_BASE_URL, MODEL_NAME, HF_TOKEN or OPENAI_API_KEY"),
        ({"API_BASE_URL": "x", "HF_TOKEN": "k"}, "MODEL_NAME"),
    ],
)
def test_an_llm_run_without_its_endpoint_is_a_mistake_found_before_any_episode(
    tmp_path: Path, present: dict[str, str], named: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS} | present
    report = tmp_path / "llm.json"
    done = cli(
        "eval",
        "--agent",
        "solver",
        "--agent",
        "llm",
        "--task",
        "easy_single_spike",
        "--json",
        str(report),
        env=env,
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("metric-tracker eval: error: --agent llm needs ") and f"needs {named} in" in line
    assert not Path(f"{report}.partial.jsonl").exists()  # nothing was played


def _report(agent: str, scores: list[float | None]) -> dict[str, Any]:
    episodes = [
        {"label": "easy_single_spike", "score": score}
        if score is not None
        else {"label": "easy_single_spike", "score": None, "error": "x"}
        for score in scores
    ]
    return evaluation.summarise(agent, episodes)


def test_the_score_table_counts_the_episodes_and_the_failed_ones() -> None:
    table = evaluation.markdown_table([_report("solver", [1.0, None, None]), _report("llm", [None, None])])
    assert table.splitlines() == [
        "| agent | easy_single_spike | mean | episodes | failed |",
        "|---|---|---|---|---|",
        "| solver | 1.000 | 1.000 | 3 | 2 |",
        "| llm | n/a | n/a | 2 | 2 |",
    ]


@pytest.mark.parametrize(
    ("workers", "remote"), [(1, False), (2, False), (2, True)], ids=["one", "processes", "server"]
)
def test_ctrl_c_stops_the_episodes_in_flight_names_resume_and_exits_130(
    tmp_path: Path, workers: int, remote: bool, request: pytest.FixtureRequest
) -> None:
    """Ctrl-C (SIGINT to the process group) while LLM episodes wait on a slow endpoint, played
    in the command's thread, in worker processes or against a server: exit 130 within 5 s
    with one line naming --resume; the episodes in flight are not journalled, and --resume
    then plays every episode."""
    report = tmp_path / "llm.json"
    args = ["eval", "--agent", "llm", *TASKS, "--workers", str(workers), "--json", str(report)]
    if remote:
        args += ["--url", request.getfixturevalue("server_url")]
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
    env.update(MODEL_NAME="fake-model", HF_TOKEN="test-key")
    script = Path(sys.executable).parent / "metric-tracker"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "metric_tracker_rl.cli"]
    with FakeOpenAI(faults=["slow"] * 50) as fake:
        env["API_BASE_URL"] = fake.base_url
        process = subprocess.Popen(
            [*command, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while len(fake.requests) < workers:  # every worker is waiting on the model
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        stdout, stderr = process.communicate(timeout=30)
        stopped = time.monotonic() - interrupted
    assert process.returncode == 130, stderr
    assert stopped < 5.0, f"{stopped:.1f} s after Ctrl-C"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("metric-tracker eval: interrupted;") and "--resume" in last, stderr
    assert "Traceback" not in stderr and stdout == ""
    journal = Path(f"{report}.partial.jsonl")
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    assert [line for line in lines if "run" not in line] == []  # none finished (the first line dates the run)
    assert not report.exists()
    with FakeOpenAI() as fake:
        env["API_BASE_URL"] = fake.base_url
        resumed = cli(*args, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [e["score"] for e in data["episodes"]] == [1.0, 1.0, 1.0] and data["failed_episodes"] == 0
