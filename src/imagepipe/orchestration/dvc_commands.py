"""DVC commands the flows run: one stage at a time, params overrides, experiments, remotes.

Each stage runs as `dvc --wait-for-lock repro --single-item <stage>`, so DVC itself decides
whether to skip it, restore it from the run cache or run it, and writes dvc.lock and the cache
exactly as `dvc repro` does. Several of these may run at once in one workspace: DVC holds its
repo lock only while it checks and records a stage, not while the stage's command runs
(`unlocked_repo` in dvc/stage/run.py), and its per-path read/write locks keep two stages from
writing the same outputs. `--wait-for-lock` makes a stage wait for that short lock instead of
failing.
"""

import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from imagepipe.core.lifecycle import die_with_parent

OUTCOMES = {
    "skipped": re.compile(r"Stage '[^']+' didn't change, skipping"),
    "restored": re.compile(r"Stage '[^']+' is cached - skipping run"),
}
ERROR_LINES = 30


class StageFailed(RuntimeError):
    """A stage's command or DVC failed; the message ends with the output that says why."""


def dvc(root: Path, *args: str) -> str:
    """Run a DVC command in root and return its output; raise with that output when it fails."""
    result = subprocess.run(
        [*_dvc_command(), *args],
        cwd=root,
        env=_environment({}),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StageFailed(f"`dvc {' '.join(args)}` failed:\n{result.stdout}{result.stderr}".rstrip())
    return result.stdout


def repro_stage(
    root: Path,
    name: str,
    env: dict[str, str],
    log: Callable[[str], None],
    pull: bool = False,
) -> str:
    """Reproduce one stage, streaming its output to log. Returns `skipped`, `restored` or `ran`.

    pull: `dvc repro --pull`, which restores the stage from the default remote's run cache when
    it ran elsewhere with the same code, params and data.
    """
    process = _start_repro(root, name, env, pull)
    outcome, tail = _follow_output(process, log)
    if process.wait() != 0:
        raise StageFailed(
            f"stage '{name}' failed (exit code {process.returncode}); its last output:\n" + "\n".join(tail)
        )
    return outcome


def _start_repro(root: Path, name: str, env: dict[str, str], pull: bool) -> subprocess.Popen[str]:
    """`dvc repro --single-item name` in root, its stderr merged into a line-buffered stdout."""
    command = [
        *_dvc_command(),
        "--wait-for-lock",
        "repro",
        "--single-item",
        name,
        *(["--pull"] if pull else []),
    ]
    # die_with_parent: a crashed or killed flow run takes its dvc (and so the stage) with it.
    return subprocess.Popen(
        command,
        cwd=root,
        env=_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        preexec_fn=die_with_parent,
    )


def _follow_output(process: subprocess.Popen[str], log: Callable[[str], None]) -> tuple[str, deque[str]]:
    """Pass each output line to log until the process closes its output; return the outcome its
    lines report (`ran` unless DVC says it skipped or restored the stage) and the last lines."""
    if process.stdout is None:
        raise ValueError("the dvc process was started without stdout=PIPE, so its output cannot be followed")
    tail: deque[str] = deque(maxlen=ERROR_LINES)
    outcome = "ran"
    for line in process.stdout:
        line = line.rstrip()
        tail.append(line)
        log(line)
        outcome = next((key for key, pattern in OUTCOMES.items() if pattern.search(line)), outcome)
    return outcome, tail


def apply_overrides(root: Path, overrides: list[str]) -> None:
    """Change params.yaml as `dvc exp run -S` does, with the same override syntax (key=value)."""
    from dvc.utils.hydra import apply_overrides as apply

    apply(root / "params.yaml", overrides)


def lock_order(root: Path) -> list[str]:
    """The stages recorded in dvc.lock, in the file's order."""
    from dvc.utils.serialize import load_yaml

    path = root / "dvc.lock"
    return list((load_yaml(path) or {}).get("stages", {})) if path.exists() else []


def order_lock(root: Path, before: list[str], plan: list[str]) -> None:
    """Order dvc.lock's stages as `dvc repro` would have written them.

    DVC appends a stage it records for the first time; stages finishing in parallel would
    otherwise land in the order they happened to finish, and the file would differ from
    `dvc repro`'s. Stages already there keep their place, new ones follow in DVC's plan order.
    """
    from dvc.repo import Repo, lock_repo
    from dvc.utils.serialize import modify_yaml

    if not (root / "dvc.lock").exists():
        return
    with (
        Repo(str(root), _wait_for_lock=True) as repo,
        lock_repo(repo),
        modify_yaml(root / "dvc.lock") as data,
    ):
        stages = data.get("stages", {})
        order = [name for name in before + plan if name in stages]
        order += [name for name in stages if name not in order]
        data["stages"] = {name: stages[name] for name in dict.fromkeys(order)}


def push(root: Path) -> None:
    """`dvc push --run-cache` to the default remote, plus what it leaves out.

    DVC 3.67 pushes run-cache entries but not the objects of their `cache: false` outputs
    (history.csv, metrics files), although restoring the entry on another host needs them;
    the entry is then unusable there and the stage reruns. Those objects are in the local
    cache (DVC commits them when it saves a run-cache entry), so they are pushed here too.
    """
    from dvc.repo import Repo

    dvc(root, "push", "--run-cache")
    with Repo(str(root), _wait_for_lock=True) as repo:
        objects = set()
        for out in (out for stage in repo.index.stages for out in stage.outs):
            if out.use_cache or not out.hash_info or not out.cache.exists(out.hash_info.value):
                continue
            out.use_cache = True  # on this in-memory copy only, so that DVC lists its objects
            for found in out.get_used_objs().values():
                objects |= found
        repo.cloud.push(objects)


def _dvc_command() -> list[str]:
    """DVC from this interpreter's environment, whatever PATH the worker was started with."""
    return [sys.executable, "-m", "dvc"]


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
