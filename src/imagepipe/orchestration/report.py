"""What a flow run leaves in the Prefect UI: metrics per model with MLflow links, GT vs PR grids and pictures.

Everything is read from the files the stages wrote: DVC's metrics (the metrics files
dvc.yaml declares), `models/<model>/mlflow.json` (run id and registered version) and
`plots/<model>/gt_vs_pr.png` and the model families' `plots/<family>/pictures/`, each only when a
stage of the flow run produces it.
"""

import base64
import contextlib
import json
import os
from pathlib import Path

from dvc.repo import Repo
from prefect.artifacts import create_markdown_artifact

from imagepipe.core.redact import redact

LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves the default sqlite store


def mlflow_ui() -> str:
    """The MLflow UI address for links: the tracking server when there is one, else `mlflow ui`'s.
    Artifacts are shown to everyone with the Prefect UI: credentials in the URI are redacted."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    return redact(uri.rstrip("/")) if uri.startswith(("http://", "https://")) else LOCAL_MLFLOW_UI


def metrics_table(metrics: dict[str, dict], models: dict[str, dict], ui: str) -> str:
    """A markdown table: one row per metrics file, its MLflow run and model, its scalar metrics.

    The links come before the metrics, which can be a long line, so that they stay in view."""
    rows = [
        "| metrics file | MLflow run | registered model | metrics |",
        "|---|---|---|---|",
    ]
    for path, values in sorted(metrics.items()):
        scalars = ", ".join(
            f"{key} = {_number(value)}" for key, value in sorted(values.items()) if isinstance(value, (int, float))
        )
        model = models.get(Path(path).stem) or models.get(Path(path).parent.name) or {}
        run = f"[{model['run_id'][:8]}]({ui}/#/runs/{model['run_id']})" if model else ""
        name, version = model.get("registered_model"), model.get("version")
        registered = f"[{name} v{version}]({ui}/#/models/{name}/versions/{version})" if name and version else ""
        rows.append(f"| `{path}` | {run} | {registered} | {scalars} |")
    return "\n".join(rows)


def publish(root: Path, flow_run_name: str, overrides: list[str], outputs: set[str]) -> None:
    """Create this flow run's artifacts from the outputs of its stages: the metrics summary and
    one GT vs PR grid per model (a `validate-data` run has no grids to show)."""
    with contextlib.chdir(root), Repo(".") as repo:
        shown = repo.metrics.show()
    found = shown.get("", {}).get("data", {}).items()
    metrics = {path: entry.get("data", {}) for path, entry in found if path in outputs}
    models = {path.parent.name: json.loads(path.read_text()) for path in sorted(root.glob("models/*/mlflow.json"))}
    create_markdown_artifact(
        header(flow_run_name, overrides) + metrics_table(metrics, models, mlflow_ui()),
        key="pipeline-metrics",
        description="Metrics per model",
    )
    for grid in sorted(root / path for path in outputs if Path(path).name == "gt_vs_pr.png"):
        model = grid.parent.name
        image = base64.b64encode(grid.read_bytes()).decode()
        markdown = (
            f"# Ground truth vs prediction: {model}\n\n![GT vs PR grid for {model}](data:image/png;base64,{image})"
        )
        create_markdown_artifact(markdown, key=f"gt-vs-pr-{model}", description=f"GT vs PR grid, {model}")
    for folder in sorted(root / path for path in outputs if Path(path).name == "pictures"):
        model = folder.parent.name
        create_markdown_artifact(pictures(folder, model), key=f"pictures-{model}", description=f"Pictures, {model}")


def pictures(folder: Path, model: str) -> str:
    """A model family's pictures (plots/<family>/pictures/*.png) inlined in one markdown page."""
    sections = [
        f"## {png.stem}\n\n![{png.stem} of {model}](data:image/png;base64,{_base64(png)})"
        for png in sorted(folder.glob("*.png"))
    ]
    return f"# Pictures: {model}\n\n" + "\n\n".join(sections)


def header(flow_run_name: str, overrides: list[str]) -> str:
    """The summary's title and its params overrides, redacted (a data.source may hold credentials)."""
    shown = ", ".join(f"`{redact(override)}`" for override in overrides) or "none"
    return f"# Pipeline run `{flow_run_name}`\n\nParams overrides: {shown}\n\n"


def _base64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
