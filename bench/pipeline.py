"""The pipeline as users run it: `dvc repro` from a clean clone stage by stage (seconds and peak
memory of each), then `dvc repro` and the Prefect flow on the up-to-date result."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagepipe.orchestration.dag import read_dag
from tests.helpers.dvc import up_to_date as nothing_to_do
from tests.helpers.servers import (  # the loopback servers the tests start
    free_port,
    stop,
    wait_until_up,
)

BIN = Path(sys.executable).parent
# Variables that would point a run at another store or server, or tag it as a flow run.
FOREIGN = ("MLFLOW_TRACKING_URI", "IMAGEPIPE_FLOW_RUN_ID", "IMAGEPIPE_PARAM_OVERRIDES", "PREFECT_API_URL")
DVC = [sys.executable, "-m", "dvc"]
FLOW = [sys.executable, "-c", "from flows.pipeline import pipeline; pipeline()"]


def environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN}
    return env | {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"} | extra


def clean_clone(source: Path, destination: Path) -> dict:
    """A clone of the committed project: no DVC cache or run cache, no outputs, no MLflow store."""
    subprocess.run(["git", "clone", "--quiet", str(source), str(destination)], check=True)
    # The Data Docs' npm packages, as `make setup` installed them for the source (validate reads them).
    assets = Path("vendor") / "datadocs" / "node_modules"
    (destination / assets).symlink_to((source / assets).resolve(), target_is_directory=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=destination, capture_output=True, text=True, check=True)
    changes = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True
    )
    return {"commit": commit.stdout.strip(), "uncommitted_changes_not_measured": bool(changes.stdout.strip())}


# A child's peak-memory figure starts at its parent's resident size when it forks, and the
# benchmark's own process holds TensorFlow. So commands start from this small launcher, which
# reports the largest peak among the processes it waited for (its child and their descendants).
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def timed(command: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> dict:
    """Wall seconds, and the peak resident memory (MiB) of the largest process in the command's tree.
    A command that fails raises, unless check is false (a command whose exit status is an outcome)."""
    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as report:
        start = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, report.name, *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seconds = time.perf_counter() - start
        peak_kib = int(report.read() or 0)  # ru_maxrss is in KiB on Linux
    if check and completed.returncode:
        raise RuntimeError(
            f"`{' '.join(command)}` failed in {cwd} (exit {completed.returncode}):\n{completed.stdout[-3000:]}"
        )
    return {
        "seconds": seconds,
        "peak_memory_mib": peak_kib / 1024,
        "output": completed.stdout,
        "returncode": completed.returncode,
    }


def full_repro(workspace: Path) -> list[dict]:
    """`dvc repro` of every stage in DVC's order, one `--single-item` call each, timed."""
    env = environment()
    stages = []
    for stage in read_dag(workspace):
        result = timed([*DVC, "repro", "--single-item", stage.name], workspace, env)
        stages.append({"stage": stage.name, "seconds": result["seconds"], "peak_memory_mib": result["peak_memory_mib"]})
    return stages


def median_seconds(command: list[str], workspace: Path, env: dict[str, str], runs: int) -> dict:
    seconds = [timed(command, workspace, env)["seconds"] for _ in range(runs)]
    return {"median_seconds": statistics.median(seconds), "runs": seconds}


def up_to_date(workspace: Path, runs: int = 3) -> dict:
    """`dvc repro` and the Prefect flow (each a fresh process) on a pipeline with nothing to do."""
    status = timed([*DVC, "status"], workspace, environment())["output"]
    if not nothing_to_do(status):
        raise RuntimeError(f"the workspace is not up to date, so this would not time a no-op:\n{status}")
    with prefect_server() as api_url:
        flow = median_seconds(FLOW, workspace, environment(PREFECT_API_URL=api_url), runs)
    return {"dvc_repro": median_seconds([*DVC, "repro"], workspace, environment(), runs), "prefect_flow": flow}


@contextmanager
def prefect_server() -> Iterator[str]:
    """A Prefect server on loopback with a throwaway home, as a user's would be already running."""
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as home:
        port, log = free_port(), Path(home) / "server.log"
        env = environment(PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false")
        with log.open("w") as sink:
            server = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            api_url = f"http://127.0.0.1:{port}/api"
            wait_until_up(f"{api_url}/health", server, log)
            yield api_url
        finally:
            stop(server)
