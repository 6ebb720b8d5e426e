"""The searches of `search.yaml`: the stage a trial reproduces, what it optimises, over which params.

A search's space names params.yaml keys in `dvc exp run -S` form (`train_cnn.learning_rate`);
each trial is the stage reproduced with one point of the space, so only keys the stage (or a
stage upstream of it) reads can change what a trial does. `check_keys` refuses the others.
"""

from pathlib import Path
from typing import Literal, cast

import optuna
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imagepipe.core.errors import StageError

Value = bool | int | float | str


class Dimension(BaseModel):
    """One params.yaml key's range: float or int in [low, high] (log scale optional), or choices."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Value] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Dimension":
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes `choices` (a non-empty list) and no low/high")
            return self
        if self.low is None or self.high is None or self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes `low` and `high`, not `choices`")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("a log-scale dimension needs low > 0 and no step")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an int dimension takes whole-number low and high")
        return self

    def contains(self, value: object) -> bool:
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (self.low or 0.0) <= value <= (self.high or 0.0) and (self.type == "float" or float(value).is_integer())

    def suggest(self, trial: optuna.Trial, key: str) -> Value:
        if self.type == "categorical":
            return cast(Value, trial.suggest_categorical(key, self.choices or []))
        low, high = self.low or 0.0, self.high or 0.0
        if self.type == "int":
            return trial.suggest_int(key, int(low), int(high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(key, low, high, step=self.step, log=self.log)


class Sampler(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["tpe", "random"] = "tpe"
    seed: int | None = None
    startup_trials: int = Field(default=4, ge=0)  # random trials before TPE models the space


class Pruner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["median", "none"] = "median"
    startup_trials: int = Field(default=2, ge=0)  # trials that finish unpruned before any is pruned
    warmup_epochs: int = Field(default=1, ge=0)  # epochs a trial always runs before it can be pruned

    def make(self) -> optuna.pruners.BasePruner:
        if self.kind == "none":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs)


class Search(BaseModel):
    """One search: `stage` reproduced per trial; the objective is the best per-epoch `monitor`
    value in `history` (the CSV the stage writes, one row per epoch), which is also what the
    pruner compares epoch by epoch."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    history: str
    monitor: str
    direction: Literal["maximize", "minimize"]
    trials: int = Field(ge=1)
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    space: dict[str, Dimension] = Field(min_length=1)
    # Points tried first, after params.yaml's own values (e.g. what a colleague found), as {key: value}.
    first: list[dict[str, Value]] = []
    # A trial whose process has not written its heartbeat for this long is failed (a lost worker).
    stale_after_seconds: int = Field(default=120, ge=4)

    def overrides(self, trial: optuna.Trial) -> list[str]:
        """A point of the space drawn for trial, as `dvc exp run -S` overrides."""
        return [f"{key}={_yaml_value(dimension.suggest(trial, key))}" for key, dimension in self.space.items()]

    def make_sampler(self, trial_number: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler for one trial. Every trial runs in a process of its own that builds its
        own sampler: with one seed for all, each would draw the same point, so trial n draws
        with seed + n (the same point for trial n whichever worker runs it)."""
        seed = None if self.sampler.seed is None else self.sampler.seed + trial_number
        if self.sampler.kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar: trials running at once on other hosts count as bad guesses, so that
        # parallel workers do not all draw the same promising point.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.sampler.startup_trials, constant_liar=True)


def starting_points(search: Search, params: dict) -> list[dict[str, Value]]:
    """The first trials: params.yaml's current values (so the search shows whether it beat them),
    then the search's `first` points. Keys whose current value lies outside the space are drawn."""
    current = {key: _lookup(params, key) for key in search.space}
    baseline = {key: cast(Value, value) for key, value in current.items() if search.space[key].contains(value)}
    for point in search.first:
        unknown = sorted(set(point) - set(search.space))
        outside = sorted(
            key for key, value in point.items() if key in search.space and not search.space[key].contains(value)
        )
        if unknown or outside:
            raise StageError(
                f"a `first` point of the search names keys not in its space {unknown} or values outside it {outside}"
            )
    return [point for point in [baseline, *search.first] if point]


def load_searches(path: Path) -> dict[str, Search]:
    """Every search in the file, checked; an error names the search and the key."""
    if not path.is_file():
        raise StageError(f"{path} not found: the searches are declared there (docs/search.md)")
    document = yaml.safe_load(path.read_text()) or {}
    searches = document.get("searches")
    if not isinstance(searches, dict) or not searches:
        raise StageError(f"{path} has no `searches:` mapping of search names to searches")
    loaded = {}
    for name, body in searches.items():
        try:
            loaded[name] = Search.model_validate(body)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise StageError(f"{path}: search '{name}' is invalid: {problems}") from None
    return loaded


def load_search(path: Path, name: str) -> Search:
    searches = load_searches(path)
    if name not in searches:
        raise StageError(f"{path} has no search '{name}'; it declares {sorted(searches)}")
    return searches[name]


def check_keys(search: Search, params: dict, read_by_stages: list[str]) -> None:
    """Every key of the space is in params.yaml and read by the stage or one upstream of it
    (read_by_stages: the `params` entries of those stages in dvc.yaml, e.g. `train_cnn`, `seed`)."""
    for key in search.space:
        _lookup(params, key)
        if not any(key == read or key.startswith(f"{read}.") for read in read_by_stages):
            raise StageError(
                f"search space key '{key}' is not read by '{search.stage}' or a stage upstream of it, so it "
                f"cannot change a trial; those stages read {sorted(set(read_by_stages))}"
            )


def _yaml_value(value: Value) -> str:
    """The value as `-S` parses it: YAML, so that `true`, `0.001` and strings keep their types."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _lookup(params: dict, key: str) -> object:
    node: object = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise StageError(f"search space key '{key}' is not in params.yaml")
        node = node[part]
    return node
