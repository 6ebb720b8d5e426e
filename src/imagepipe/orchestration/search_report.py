"""What a search leaves in MLflow and Prefect: the parent run with its trials under it, the best
trial marked, and a table of every trial with how to apply the best one."""

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
import optuna
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT
from prefect.artifacts import create_markdown_artifact

from imagepipe.orchestration.report import mlflow_ui
from imagepipe.search.spec import Search
from imagepipe.tracking.store import configure_tracking


@contextmanager
def parent_run(study: str, name: str, spec: Search, baseline: str, trials: int) -> Iterator[str]:
    """The search's MLflow run (its id yielded): the trials' runs name it as their parent."""
    configure_tracking()
    # The commit the trials start from; MLflow would take its own from the flow run's entry point.
    tags = {"search": name, "optuna_study": study, MLFLOW_GIT_COMMIT: baseline, "stage": spec.stage}
    with mlflow.start_run(run_name=f"search {study}", tags=tags) as run:
        mlflow.log_params({"search.stage": spec.stage, "search.monitor": spec.monitor, "search.trials": trials})
        mlflow.log_dict(spec.model_dump(), "search.json")
        yield run.info.run_id


def link_run(run_id: str | None, revision: str) -> None:
    """The trial's MLflow run names the commit of its DVC experiment (the experiment names the run)."""
    if run_id:
        mlflow.MlflowClient().set_tag(run_id, "dvc_experiment_rev", revision)


def trials_table(study: optuna.Study, spec: Search, ui: str) -> str:
    """Markdown: one row per trial in number order, the best in bold."""
    best = _best(study)
    keys = list(spec.space)
    rows = [
        f"| trial | state | {spec.monitor} | {' | '.join(keys)} | DVC experiment | MLflow run |",
        "|---" * (5 + len(keys)) + "|",
    ]
    for trial in study.get_trials(deepcopy=False):
        value = "" if trial.value is None else f"{trial.value:.4f}"
        if trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
            last = max(trial.intermediate_values)
            value = f"({trial.intermediate_values[last]:.4f} at epoch {last + 1})"
        run = trial.user_attrs.get("mlflow_run_id")
        cells = [
            str(trial.number),
            trial.state.name.lower(),
            value,
            *(str(trial.params.get(key, "")) for key in keys),
            f"`{trial.user_attrs.get('dvc_experiment', '')}`",
            f"[{run[:8]}]({ui}/#/runs/{run})" if run else "",
        ]
        if best is not None and trial.number == best.number:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def publish(study: optuna.Study, spec: Search, parent: str, name: str) -> dict:
    """The table as a Prefect artifact and on the parent run; the best trial's run tagged and
    linked from the parent; returns the summary the flow run ends with."""
    best, ui = _best(study), mlflow_ui()
    states = Counter(trial.state.name.lower() for trial in study.get_trials(deepcopy=False))
    summary: dict[str, Any] = {"study": study.study_name, "trials": dict(states), "best": None}
    if best is not None:
        experiment = best.user_attrs.get("dvc_experiment")
        summary["best"] = {
            "trial": best.number,
            spec.monitor: best.value,
            "params": best.params,
            "dvc_experiment": experiment,
            "mlflow_run_id": best.user_attrs.get("mlflow_run_id"),
            "apply": f"dvc exp pull origin {experiment} && dvc exp apply {experiment}",
        }
        mlflow.log_metric(f"best_{spec.monitor}", float(best.value or 0.0))
        mlflow.set_tags({"best_trial": str(best.number), "best_dvc_experiment": experiment or ""})
        if best.user_attrs.get("mlflow_run_id"):
            mlflow.set_tag("best_run_id", best.user_attrs["mlflow_run_id"])
            mlflow.MlflowClient().set_tag(best.user_attrs["mlflow_run_id"], "search_best", "true")
    text = _markdown(study, spec, summary, ui)
    mlflow.log_text(text, "search.md")
    mlflow.log_dict(summary, "summary.json")
    create_markdown_artifact(key=f"search-{_artifact_key(name)}", markdown=text, description=study.study_name)
    return summary


def _markdown(study: optuna.Study, spec: Search, summary: dict, ui: str) -> str:
    counts = ", ".join(f"{count} {state}" for state, count in sorted(summary["trials"].items()))
    lines = [f"# Search `{study.study_name}` ({spec.direction} `{spec.monitor}` of `{spec.stage}`)", "", counts, ""]
    if summary["best"]:
        best = summary["best"]
        lines += [
            f"Best: trial {best['trial']}, {spec.monitor} = {best[spec.monitor]:.4f}, {json.dumps(best['params'])}.",
            f"Apply it to a clone: `{best['apply']}` (drop the pull where it ran).",
            "",
        ]
    else:
        lines += ["No trial completed: see the failed trials' flow runs.", ""]
    return "\n".join([*lines, trials_table(study, spec, ui)])


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    completed = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    return study.best_trial if completed else None


def _artifact_key(name: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes."""
    return "".join(character if character.isalnum() else "-" for character in name.lower())
