"""The deployment files of ``deploy/``, and a real load balancer in front of real replicas.

The Kubernetes manifests are validated offline against Kubernetes' own schemas
(``kubernetes-validate``), the compose file against the Compose specification's schema
(``check-jsonschema``'s copy) and against the files it names. Then three replicas
(``metric-tracker serve``, one records file) and Debian's nginx with ``deploy/nginx.conf`` run
on loopback: ``metric-tracker eval`` plays 256 concurrent episodes through nginx while one
replica is killed, and an MCP session through nginx outlives the replica that served it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import Nginx, Served
from solver_calls import solver_calls
from test_mcp import TASK, call, drive, tool_result

from metric_tracker_rl import evaluation
from metric_tracker_rl.integrations.dataset import train_configs
from metric_tracker_rl.mcp.server import EPISODE_URI
from metric_tracker_rl.records import RECORDS_ENV_VAR

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests claim to support
EPISODES = 256
ACCEPTED = '"WebSocket /ws" [accepted]'
KILL_AFTER_SESSIONS = 40  # the victim replica is killed once it holds this many sessions


# --- the files, offline ---------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, "1.37.0"])
def test_the_kubernetes_manifests_validate_against_the_schemas(version: str) -> None:
    import kubernetes_validate

    documents = manifests()
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises ValidationError
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"]["cpu"]  # what the autoscaler divides by
    target = kinds["HorizontalPodAutoscaler"]["spec"]
    assert target["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    assert target["metrics"][0]["resource"]["name"] == "cpu"


def test_an_invalid_manifest_is_refused() -> None:
    """The check can fail: a replica count that is not a number."""
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(ValidationError, match="replicas"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_compose_file_follows_the_compose_specification_and_names_real_files() -> None:
    """Docker is not here to run it: the schema, the files and the names it refers to are checked."""
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    replica, nginx = compose["services"]["replica"], compose["services"]["nginx"]
    assert (DEPLOY / replica["build"]["context"] / replica["build"]["dockerfile"]).is_file()
    mount = next(v for v in nginx["volumes"] if v.endswith("/etc/nginx/nginx.conf:ro"))
    assert (DEPLOY / mount.split(":")[0]).resolve() == DEPLOY / "nginx.conf"
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert re.findall(r"server (\w+):(\d+)", conf) == [("replica", "8000")] * 2  # the service, its port
    assert nginx["ports"] == ["8000:8000"] and "listen 8000;" in conf
    # The replicas share one records file on one volume, in a folder the image gives its user.
    volume, folder = replica["volumes"][0].split(":")
    assert volume in compose["volumes"]
    assert Path(replica["environment"][RECORDS_ENV_VAR]).parent == Path(folder)
    assert f"mkdir -p {folder} && chown user {folder}" in (REPO / "Dockerfile").read_text(encoding="utf-8")


# --- three replicas behind nginx ------------------------------------------------------------------


class Cluster:
    def __init__(self, folder: Path) -> None:
        records = folder / "records.sqlite"
        self.replicas = [
            Served(folder / f"replica{i}.log", "--no-web", "--records", str(records)) for i in range(3)
        ]
        for replica in self.replicas:
            replica.launch()  # together: their start-ups overlap
        for replica in self.replicas:
            replica.wait()
        self.nginx = Nginx([replica.port for replica in self.replicas], folder)

    def revive(self) -> None:
        """Start again, on their ports, the replicas that were killed."""
        dead = [replica for replica in self.replicas if not replica.alive()]
        for replica in dead:
            replica.launch()
        for replica in dead:
            replica.wait()

    def stop(self) -> None:
        self.nginx.stop()
        for replica in self.replicas:
            replica.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is missing: apt-get install nginx (.ci/run installs it)")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.stop()


def without_moves(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in episode.items() if k != "moved"} for episode in report["episodes"]]


def test_256_concurrent_episodes_through_nginx_lose_nothing_when_a_replica_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    configs = train_configs(4)[:EPISODES]
    config_file = tmp_path / "configs.jsonl"
    config_file.write_text("".join(json.dumps(c) + "\n" for c in configs), encoding="utf-8")
    report_path = tmp_path / "scores.json"
    victim = cluster.replicas[1]
    eval_run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metric_tracker_rl.cli",
            "eval",
            "--agent",
            "solver",
            "--configs",
            str(config_file),
            "--url",
            cluster.nginx.url,
            "--workers",
            str(EPISODES),
            "--json",
            str(report_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The reference, played in process meanwhile: a run without the kill.
    reference = evaluation.run_evaluation("solver", configs, labels=[str(config_file)] * EPISODES, workers=2)
    deadline = time.monotonic() + 300
    while victim.text().count(ACCEPTED) < KILL_AFTER_SESSIONS:
        assert eval_run.poll() is None, eval_run.communicate()
        assert time.monotonic() < deadline, "the victim replica never held its sessions"
        time.sleep(0.02)
    victim.kill()
    stdout, stderr = eval_run.communicate(timeout=300)
    assert eval_run.returncode == 0, stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert len(report["episodes"]) == EPISODES and report["failed_episodes"] == 0
    assert report["moved_episodes"] > 0, "no episode was in play on the replica that died"
    assert f"{report['moved_episodes']} episodes moved to another server" in stderr
    assert without_moves(report) == reference["episodes"]
    for key in ("mean_score", "mean_score_ci", "per_task", "per_task_ci"):
        assert report[key] == reference[key], key
    # Every replica served sessions (least connections), the killed one included.
    assert all(replica.text().count(ACCEPTED) >= KILL_AFTER_SESSIONS for replica in cluster.replicas)


def test_an_mcp_session_through_nginx_outlives_the_replica_that_served_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    """nginx keeps one client address on one replica; killed midway, the session goes on on
    another replica, which rebuilds it and its episode from the shared records."""
    cluster.revive()
    before = {id(replica): len(replica.text()) for replica in cluster.replicas}
    calls = [call(name, **arguments) for name, arguments in solver_calls(TASK)[1:]]
    half = len(calls) // 2
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    plan = [
        call("start_episode", task_id=TASK),
        *calls[:half],
        {"op": "pause", "paused": str(paused), "resume": str(resume)},
        *calls[half:],
        {"op": "read_resource", "uri": EPISODE_URI},
    ]
    result: dict[str, Any] = {}
    worker = _in_thread(
        lambda: result.update(
            drive(
                {"transport": "http", "url": f"{cluster.nginx.url}/mcp", "api": "session", "sessions": [plan]}
            )
        )
    )
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert worker.is_alive() and time.monotonic() < deadline, result
        time.sleep(0.05)
    served = [r for r in cluster.replicas if '"POST /mcp' in r.text()[before[id(r)] :]]
    assert len(served) == 1, "one client address, one replica"
    served[0].kill()
    resume.write_text("go", encoding="utf-8")
    worker.join(timeout=180)
    (session,) = result["sessions"]
    results = session["results"]
    assert all("ok" in r for r in results), [r for r in results if "ok" not in r]
    final = tool_result(results[-2], "submit_report")
    assert (final["status"], final["reward"], final["done"]) == ("graded", 1.0, True)
    state = json.loads(results[-1]["ok"]["contents"][0]["text"])
    assert (state["task_id"], state["done"], state["last_score"]) == (TASK, True, 1.0)
    assert any('"POST /mcp' in r.text()[before[id(r)] :] for r in cluster.replicas if r is not served[0])


def _in_thread(function: Any) -> Any:
    import threading

    thread = threading.Thread(target=function, daemon=True)
    thread.start()
    return thread
