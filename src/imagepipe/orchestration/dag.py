"""The pipeline's DAG, read from `dvc.yaml` through DVC itself: never restated here."""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo
from dvc.repo.reproduce import get_active_graph, plan_repro
from dvc.stage import PipelineStage


@dataclass(frozen=True)
class Stage:
    name: str  # DVC's address for the stage, e.g. `evaluate@cnn`
    upstream: tuple[str, ...]  # stages whose outputs this one reads
    changed: bool  # what `dvc status` says now, before anything upstream runs
    outs: tuple[str, ...]  # its outputs, metrics and plots, as dvc.yaml names them

    @property
    def is_training(self) -> bool:
        """Training stages are named `train_*`: they are the ones that want a GPU each."""
        return self.name.startswith("train_")


def read_dag(root: Path, targets: list[str] | None = None) -> list[Stage]:
    """The stages `dvc repro [targets]` would consider, in the order it would run them."""
    # Stage addresses are relative to the working directory, as on DVC's command line; the
    # flow runs `dvc repro <address>` in root. `_wait_for_lock` is `dvc --wait-for-lock`.
    with contextlib.chdir(root), Repo(".", _wait_for_lock=True) as repo:
        graph = get_active_graph(repo.index.graph)
        pipeline = {stage.addressing: stage for stage in graph if isinstance(stage, PipelineStage)}
        unknown = sorted(set(targets or []) - set(pipeline))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; the stages in dvc.yaml are {sorted(pipeline)}")
        planned = plan_repro(
            graph,
            [pipeline[name] for name in targets] if targets else list(pipeline.values()),
        )
        status = repo.status()
        return [
            Stage(
                stage.addressing,
                tuple(up.addressing for up in graph.successors(stage)),
                stage.addressing in status,
                tuple(str(out.def_path) for out in stage.outs),
            )
            for stage in planned
            if isinstance(stage, PipelineStage)
        ]


def needs_repro(stage: Stage, will_run: set[str]) -> bool:
    """Whether `dvc repro` could run this stage: it changed, or something upstream of it will run."""
    return stage.changed or any(name in will_run for name in stage.upstream)


def params_read(root: Path, target: str) -> list[str]:
    """The params.yaml keys (dvc.yaml `params` entries) that target and the stages upstream of it read."""
    with contextlib.chdir(root), Repo(".", _wait_for_lock=True) as repo:
        graph = get_active_graph(repo.index.graph)
        pipeline = {stage.addressing: stage for stage in graph if isinstance(stage, PipelineStage)}
        if target not in pipeline:
            raise ValueError(f"unknown stage '{target}'; the stages in dvc.yaml are {sorted(pipeline)}")
        return [
            key
            for stage in plan_repro(graph, [pipeline[target]])
            for dep in stage.deps
            if isinstance(dep, ParamsDependency)
            for key in dep.params
        ]
