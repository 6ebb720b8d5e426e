"""`params.yaml` as typed, validated objects.

Every key is required: `params.yaml` is the single place where values live, so there are no
hidden defaults here. Loading fails before any work with a message naming the key and what is
allowed.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from imagepipe.core.errors import StageError


class ParamsError(StageError):
    """`params.yaml` is missing, malformed, or has a key with a value that is not allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _refuse_bool(value: Any) -> Any:
    """Strict mode does not reach Literal: Literal[1, 3] alone takes true, which equals 1."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class ImageParams(_Section):
    height: PositiveInt
    width: PositiveInt
    channels: Annotated[Literal[1, 3], BeforeValidator(_refuse_bool)]


class DataParams(_Section):
    dataset: Literal["fashion_mnist", "mnist", "digits", "image_folder"]
    source: str | None = Field(description="URL, directory or file:// URL replacing the defaults")
    max_train_images: PositiveInt | None
    max_test_images: PositiveInt | None
    test_fraction: float = Field(gt=0, lt=1, description="held out when a dataset has no test split")
    skip_unreadable: bool


class ValidateParams(_Section):
    min_images_per_class: PositiveInt
    min_class_share_ratio: float = Field(ge=0, le=1)
    max_class_share_ratio: float = Field(ge=1)
    max_kl_divergence: float = Field(gt=0)


class PreprocessParams(_Section):
    validation_split: float = Field(gt=0, lt=1)
    dtype: Literal["float16", "float32"]


class AugmentationParams(_Section):
    enabled: bool
    rotation_degrees: float = Field(ge=0, le=180)
    zoom: float = Field(ge=0, lt=1)
    width_shift: float = Field(ge=0, lt=1)
    height_shift: float = Field(ge=0, lt=1)
    horizontal_flip: bool


class TrainCnnParams(_Section):
    architecture: Literal["course", "batchnorm"]
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: float = Field(gt=0)
    schedule: Literal["constant", "cosine"]
    warmup_epochs: NonNegativeInt
    weight_decay: float = Field(ge=0)
    label_smoothing: float = Field(ge=0, lt=1)
    dropout_rate: float = Field(ge=0, lt=1)
    augmentation: AugmentationParams

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> "TrainCnnParams":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be less than epochs ({self.epochs})")
        return self


class TrainGanParams(_Section):
    latent_dim: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    max_images: PositiveInt | None
    learning_rate: float = Field(gt=0)
    beta_1: float = Field(ge=0, lt=1)
    fid_samples: PositiveInt


class PrepareTransferParams(_Section):
    dataset: Literal["fashion_mnist", "mnist", "digits", "image_folder"]
    source: str | None
    test_fraction: float = Field(gt=0, lt=1)
    labels_per_class: PositiveInt


class TrainTransferParams(_Section):
    backbone: Literal["pipeline_cnn", "inception_v3", "mobilenet_v2", "efficientnet_b0", "resnet50"]
    weights: str = Field(description="imagenet, none, or a path to a weights file (keras.applications backbones)")
    input_size: PositiveInt
    epochs: PositiveInt
    fine_tune_epochs: int = Field(ge=0)
    fine_tune_layers: int = Field(ge=0)
    batch_size: PositiveInt
    learning_rate: float = Field(gt=0)
    fine_tune_learning_rate: float = Field(gt=0)
    dropout_rate: float = Field(ge=0, lt=1)
    dense_units: PositiveInt


class EvaluateParams(_Section):
    batch_size: PositiveInt


class VisualizeParams(_Section):
    rows: PositiveInt
    columns: PositiveInt


class AcceleratorParams(_Section):
    mixed_precision: bool = Field(description="mixed_float16 on GPUs with compute capability >= 7.0; never on the CPU")
    memory_growth: bool


class Params(_Section):
    seed: int = Field(ge=0)
    accelerator: AcceleratorParams
    image: ImageParams
    data: DataParams
    # `validate` would shadow pydantic's BaseModel.validate, hence the alias.
    validation: ValidateParams = Field(alias="validate")
    preprocess: PreprocessParams
    train_cnn: TrainCnnParams
    train_gan: TrainGanParams
    prepare_transfer: PrepareTransferParams
    train_transfer: TrainTransferParams
    evaluate: EvaluateParams
    visualize: VisualizeParams


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
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


def _describe(problem: dict[str, Any], raw: dict[str, Any]) -> str:
    location = [str(part) for part in problem["loc"]]
    key = ".".join(location)
    if problem["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(location[:-1]))
        return f"{key}: unknown key; allowed keys here: {allowed}"
    if problem["type"] == "missing":
        return f"{key}: missing; every key is required (see the README's params table)"
    got = problem.get("input")
    return f"{key}: {problem['msg']} (got {got!r})"


def _allowed_keys(parent: list[str]) -> list[str]:
    model: type[BaseModel] = Params
    for part in parent:
        field = next(f for name, f in model.model_fields.items() if (f.alias or name) == part)
        model = field.annotation
    return [field.alias or name for name, field in model.model_fields.items()]
