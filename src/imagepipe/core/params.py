"""`params.yaml` as typed, validated objects.

Every key is required: `params.yaml` is the single place where values live, so there are no
hidden defaults here. Loading fails before any work with a message naming the key and what is
allowed.
"""

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
)
from pydantic_core import ErrorDetails

from imagepipe.core.errors import StageError
from imagepipe.core.sections import (
    AcceleratorParams,
    ComposeScenesParams,
    DataParams,
    EvaluateParams,
    FamiliesParams,
    ImageParams,
    InputsParams,
    PrepareTransferParams,
    PreprocessParams,
    RegistryParams,
    ScoreParams,
    Section,
    TrainAutoencoderParams,
    TrainCnnParams,
    TrainDetectorParams,
    TrainGanParams,
    TrainRnnParams,
    TrainTransferParams,
    TrainUnetParams,
    TrainVaeParams,
    ValidateParams,
    VisualizeParams,
)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does, as DVC (ruamel) does.

    PyYAML follows YAML 1.1, where a float needs a dot: `1e-07` is the string '1e-07'. DVC writes
    small floats that way (`dvc exp run -S train_cnn.learning_rate=1e-7`, and every search trial
    that draws one), and reads them back as numbers; so must the stages.
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class ParamsError(StageError):
    """`params.yaml` is missing, malformed, or has a key with a value that is not allowed."""


class Params(Section):
    seed: int = Field(ge=0, description="seed of every subset, split and shuffle")
    accelerator: AcceleratorParams
    inputs: InputsParams
    image: ImageParams
    data: DataParams
    # `validate` would shadow pydantic's BaseModel.validate, hence the alias.
    validation: ValidateParams = Field(alias="validate")
    preprocess: PreprocessParams
    train_cnn: TrainCnnParams
    train_gan: TrainGanParams
    prepare_transfer: PrepareTransferParams
    train_transfer: TrainTransferParams
    families: FamiliesParams
    compose_scenes: ComposeScenesParams
    train_rnn: TrainRnnParams
    train_autoencoder: TrainAutoencoderParams
    train_vae: TrainVaeParams
    train_unet: TrainUnetParams
    train_detector: TrainDetectorParams
    evaluate: EvaluateParams
    registry: RegistryParams
    visualize: VisualizeParams
    score: ScoreParams


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=YamlLoader)
    except FileNotFoundError:
        raise ParamsError(f"{path} not found; run from the project root") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path} must be a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, source=str(path))


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(problem, raw) for problem in error.errors()]
        raise ParamsError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from None


def _describe(problem: ErrorDetails, raw: dict[str, Any]) -> str:
    location = [str(part) for part in problem["loc"]]
    key = ".".join(location)
    if problem["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(location[:-1]))
        return f"{key}: unknown key; allowed keys here: {allowed}"
    if problem["type"] == "missing":
        return f"{key}: missing; every key is required (see the docs' params reference)"
    got = problem.get("input")
    return f"{key}: {problem['msg']} (got {got!r})"


def _allowed_keys(parent: list[str]) -> list[str]:
    model: type[BaseModel] = Params
    for part in parent:
        field = next(f for name, f in model.model_fields.items() if (f.alias or name) == part)
        section = field.annotation
        # pydantic reports unknown keys only inside sections, and every section is a model.
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            raise TypeError(f"params key {part!r} is typed {section!r}, not a section model with keys")
        model = section
    return [field.alias or name for name, field in model.model_fields.items()]
