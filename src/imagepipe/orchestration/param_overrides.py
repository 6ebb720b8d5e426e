"""Params overrides for a flow run, in `dvc exp run -S` syntax, checked before anything runs."""

from pathlib import Path

from dvc.exceptions import DvcException

from imagepipe.core.params import ParamsError, load_params
from imagepipe.orchestration.dvc_commands import apply_overrides


def apply(root: Path, overrides: list[str]) -> None:
    """Apply overrides to params.yaml as `dvc exp run -S` does; on a bad one, restore the file and raise."""
    path = root / "params.yaml"
    original = path.read_text()
    try:
        apply_overrides(root, overrides)
        load_params(path)
    except (DvcException, ParamsError) as error:
        path.write_text(original)
        raise ValueError(f"params overrides {overrides} rejected, params.yaml left as it was: {error}") from error
