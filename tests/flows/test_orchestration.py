"""The flow on a toy DVC project whose stages sleep: scheduling, skipping, GPUs, dvc.lock.

Real components throughout: a git + DVC repo, `prefect deploy` of the project's prefect.yaml,
a Prefect server and a process worker. Only the stages are toys, so that timing is cheap.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers.prefect import BIN, worker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

WORK = """
import json, os, sys, time
from pathlib import Path

name, out = sys.argv[1], Path(sys.argv[2])
start = time.time()
if name.startswith("train_"):
    # Wait (at most 60 s) for the siblings the test expects beside this one, so that a loaded
    # machine starting them a few seconds apart still shows them at once.
    Path("started").mkdir(exist_ok=True)
    Path("started", name).touch()
    deadline = start + 60
    while len(list(Path("started").iterdir())) < int(os.environ.get("TOY_AT_ONCE", "1")) and time.time() < deadline:
        time.sleep(0.05)
time.sleep(2)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{name}: {Path('params.yaml').read_text()}")
timing = Path("timings") / f"{name}.json"
timing.parent.mkdir(exist_ok=True)
timing.write_text(json.dumps({"start": start, "end": time.time(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}))
"""

DVC_YAML = {
    "stages": {
        "prepare": {
            "cmd": "python work.py prepare data/prepared.txt",
            "deps": ["work.py"],
            "params": ["size"],
            "outs": ["data/prepared.txt"],
        },
        **{
            f"train_{name}": {
                "cmd": f"python work.py train_{name} models/{name}.txt",
                "deps": ["work.py", "data/prepared.txt"],
                "outs": [f"models/{name}.txt"],
            }
            for name in ("a", "b", "c")
        },
        "report": {
            "cmd": "python work.py report metrics/report.txt",
            "deps": ["work.py", "models/a.txt", "models/b.txt", "models/c.txt"],
            "outs": [{"metrics/report.txt": {"cache": False}}],
        },
    }
}


def make_toy_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    shutil.copytree(ROOT / "flows", path / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "prefect.yaml", path / "prefect.yaml")
    (path / "work.py").write_text(WORK)
    (path / "params.yaml").write_text("size: 3\n")
    (path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (path / ".gitignore").write_text("timings/\nstarted/\n")
    for command in (
        ["git", "init", "-q"],
        [BIN / "dvc", "init", "-q"],
        [BIN / "dvc", "config", "core.analytics", "false"],
    ):
        subprocess.run(command, cwd=path, check=True, capture_output=True)
    return path


def timings(repo: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in (repo / "timings").glob("*.json")}


def most_at_once(spans: list[dict]) -> int:
    """The largest number of spans running at the same instant (the most is always at a start)."""
    return max(sum(other["start"] <= span["start"] < other["end"] for other in spans) for span in spans)


@pytest.mark.parametrize("gpus, expected_at_once", [(None, 3), ("0", 1), ("0,1", 2)])
def test_training_stages_run_at_once_one_per_gpu(prefect_server, tmp_path, gpus, expected_at_once):
    repo = make_toy_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    extra = {"TOY_AT_ONCE": str(expected_at_once)} | ({} if gpus is None else {"CUDA_VISIBLE_DEVICES": gpus})
    with worker(prefect_server, "gpu", repo, extra):
        flow_run = prefect_server.run("pipeline/full-run")
    assert flow_run.state.is_completed(), prefect_server.logs(flow_run)
    spans = timings(repo)
    training = [spans[f"train_{name}"] for name in "abc"]
    assert most_at_once(training) == expected_at_once
    if gpus:
        assert {span["gpu"] for span in training} == set(gpus.split(","))
    assert all(spans["prepare"]["end"] <= span["start"] for span in training)
    assert all(span["end"] <= spans["report"]["start"] for span in training)


def test_flow_leaves_what_dvc_repro_leaves_then_skips_everything(prefect_server, tmp_path):
    flowed, plain = make_toy_repo(tmp_path / "flowed"), make_toy_repo(tmp_path / "plain")
    subprocess.run([BIN / "dvc", "repro"], cwd=plain, check=True, capture_output=True)
    prefect_server.deploy(flowed)
    with worker(prefect_server, "gpu", flowed):
        first = prefect_server.run("pipeline/full-run")
        second = prefect_server.run("pipeline/full-run")
    assert first.state.is_completed() and second.state.is_completed(), prefect_server.logs(first)
    assert (flowed / "dvc.lock").read_text() == (plain / "dvc.lock").read_text()
    for output in ("data/prepared.txt", "models/a.txt", "models/b.txt", "models/c.txt", "metrics/report.txt"):
        assert (flowed / output).read_bytes() == (plain / output).read_bytes()
    assert "up to date" in dvc(flowed, "status")
    assert dvc(flowed, "data", "status", "--json") == dvc(plain, "data", "status", "--json")
    assert {run.state_name for run in prefect_server.task_runs(first).values()} == {"Completed"}
    assert {name: run.state_name for name, run in prefect_server.task_runs(second).items()} == dict.fromkeys(
        DVC_YAML["stages"], "Skipped"
    )
    assert "Data and pipelines are up to date" in dvc(flowed, "repro")


def dvc(repo: Path, *args: str) -> str:
    return subprocess.run([BIN / "dvc", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_training_concurrency_limit_holds_across_the_flow(prefect_server, tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    prefect_server.cli(repo, "global-concurrency-limit", "create", "training", "--limit", "1")
    try:
        with worker(prefect_server, "gpu", repo):
            flow_run = prefect_server.run("pipeline/full-run")
    finally:
        prefect_server.cli(repo, "--no-prompt", "global-concurrency-limit", "delete", "training")
    assert flow_run.state.is_completed(), prefect_server.logs(flow_run)
    assert most_at_once([timings(repo)[f"train_{name}"] for name in "abc"]) == 1


def test_two_runs_on_one_workspace_take_turns(prefect_server, tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    prefect_server.deploy(repo)
    with worker(prefect_server, "gpu", repo):
        started = [prefect_server.start(name) for name in ("pipeline/full-run", "pipeline/nightly-retrain")]
        finished = [prefect_server.wait(flow_run) for flow_run in started]
    assert all(flow_run.state.is_completed() for flow_run in finished), [prefect_server.logs(run) for run in finished]
    states = sorted(
        sorted({run.state_name for run in prefect_server.task_runs(flow_run).values()}) for flow_run in finished
    )
    assert states == [["Completed"], ["Skipped"]], (
        "one run reproduces the stages, the other waits and finds them up to date"
    )
    assert any("another flow run is using" in prefect_server.logs(flow_run) for flow_run in finished)
    assert "up to date" in dvc(repo, "status")
