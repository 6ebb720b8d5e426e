"""The sections of `params.yaml`, one pydantic model each: types, ranges, allowed values and
a description of every key (the docs' params reference is generated from them)."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _refuse_bool(value: Any) -> Any:
    """Strict mode does not reach Literal: Literal[1, 3] alone takes true, which equals 1."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class ImageParams(Section):
    height: PositiveInt = Field(description="image height every dataset is converted to")
    width: PositiveInt = Field(description="image width every dataset is converted to")
    channels: Annotated[Literal[1, 3], BeforeValidator(_refuse_bool)] = Field(description="1 (grayscale) or 3 (RGB)")


class DataParams(Section):
    dataset: Literal["fashion_mnist", "mnist", "digits", "image_folder"] = Field(
        description="the dataset download reads"
    )
    source: str | None = Field(description="URL, directory or file:// URL replacing the defaults")
    max_train_images: PositiveInt | None = Field(description="cap on train images (stratified subset); null: all")
    max_test_images: PositiveInt | None = Field(description="cap on test images (stratified subset); null: all")
    test_fraction: float = Field(gt=0, lt=1, description="held out when a dataset has no test split")
    skip_unreadable: bool = Field(description="image_folder: skip (and report) unreadable files instead of failing")


class ValidateParams(Section):
    min_images_per_class: PositiveInt = Field(description="minimum images of every class in every split")
    min_class_share_ratio: float = Field(
        ge=0, le=1, description="lowest allowed class share, as a multiple of 1/num_classes"
    )
    max_class_share_ratio: float = Field(
        ge=1, description="highest allowed class share, as a multiple of 1/num_classes"
    )
    max_kl_divergence: float = Field(
        gt=0, description="largest KL divergence of the test labels' distribution from train's"
    )


class PreprocessParams(Section):
    validation_split: float = Field(gt=0, lt=1, description="share of train held out (stratified) for validation")


class AugmentationParams(Section):
    enabled: bool = Field(description="augment training batches")
    rotation_degrees: float = Field(ge=0, le=180, description="random rotation range, ± degrees (the course: 10)")
    zoom: float = Field(ge=0, lt=1, description="random zoom range, ± fraction (the course: 0.1)")
    width_shift: float = Field(
        ge=0, lt=1, description="random horizontal shift range, ± fraction of the width (the course: 0.1)"
    )
    height_shift: float = Field(
        ge=0, lt=1, description="random vertical shift range, ± fraction of the height (the course: 0.1)"
    )
    horizontal_flip: bool = Field(description="random left-right flips")


class TrainCnnParams(Section):
    architecture: Literal["course", "batchnorm"] = Field(description="course (the course's CNN as taught) or batchnorm")
    epochs: PositiveInt = Field(description="training epochs")
    batch_size: PositiveInt = Field(description="images per step (the global batch across GPUs)")
    learning_rate: float = Field(gt=0, description="AdamW learning rate (the schedule's peak)")
    schedule: Literal["constant", "cosine"] = Field(
        description="cosine: linear warm-up, then cosine decay to 0 at the last step; constant: flat"
    )
    warmup_epochs: NonNegativeInt = Field(description="epochs of linear warm-up from a tenth of learning_rate")
    weight_decay: float = Field(ge=0, description="AdamW's decoupled weight decay (0: Adam)")
    label_smoothing: float = Field(ge=0, lt=1, description="label smoothing of the cross-entropy")
    dropout_rate: float = Field(ge=0, lt=1, description="dropout before and after the Dense 128 (batchnorm only)")
    augmentation: AugmentationParams

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> "TrainCnnParams":
        """warmup_epochs is less than epochs"""
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be less than epochs ({self.epochs})")
        return self


class TrainGanParams(Section):
    latent_dim: PositiveInt = Field(description="size of the generator's noise vector")
    epochs: PositiveInt = Field(description="GAN training epochs")
    batch_size: PositiveInt = Field(description="images per step")
    max_images: PositiveInt | None = Field(description="cap on training images (seeded random subset); null: all")
    learning_rate: float = Field(gt=0, description="Adam learning rate of the generator")
    discriminator_learning_rate: float = Field(gt=0, description="Adam learning rate of the discriminator")
    beta_1: float = Field(ge=0, lt=1, description="Adam beta_1 of both networks")
    label_smoothing: float = Field(
        ge=0, lt=0.5, description="one-sided: the discriminator's target for real images is 1 minus this"
    )
    minibatch_stddev: bool = Field(
        description="give the discriminator the batch's feature spread, so it can spot a generator repeating itself"
    )
    fid_samples: PositiveInt = Field(
        description="generated and real images per FID; at most the validation and test splits' sizes"
    )


class PrepareTransferParams(Section):
    dataset: Literal["fashion_mnist", "mnist", "digits", "image_folder"] = Field(
        description="the target task's dataset, as data.dataset"
    )
    source: str | None = Field(description="the target task's source, as data.source")
    test_fraction: float = Field(gt=0, lt=1, description="test share for datasets without a test split")
    labels_per_class: PositiveInt = Field(description="train images per class, and as many for validation")


class TrainTransferParams(Section):
    backbone: Literal["pipeline_cnn", "inception_v3", "mobilenet_v2", "efficientnet_b0", "resnet50"] = Field(
        description="pipeline_cnn (this pipeline's CNN) or a keras.applications network"
    )
    weights: str = Field(description="imagenet, none, or a path to a weights file (keras.applications backbones)")
    input_size: PositiveInt = Field(
        description="keras.applications input size (inception_v3: at least 75); ignored for pipeline_cnn"
    )
    cut_layer: str | None = Field(
        description="the backbone's layer whose output the new head reads (pipeline_cnn: flatten, its "
        "convolutional features; inception_v3: e.g. mixed7); null: the backbone's own output"
    )
    seeds: int = Field(
        ge=2,
        description="training seeds (seed, seed + 1, ...) of both the transfer model and the from-scratch "
        "yardstick on the same target split; their test accuracies are reported as mean and sd over them",
    )
    epochs: PositiveInt = Field(description="head-only epochs on the frozen base")
    fine_tune_epochs: int = Field(ge=0, description="fine-tuning epochs after them (0: none)")
    fine_tune_layers: int = Field(ge=0, description="top layers of the (cut) base unfrozen for fine-tuning")
    batch_size: PositiveInt = Field(description="images per step")
    learning_rate: float = Field(gt=0, description="Adam learning rate of the head-only phase")
    fine_tune_learning_rate: float = Field(gt=0, description="Adam learning rate of the fine-tuning phase")
    dropout_rate: float = Field(ge=0, lt=1, description="dropout of the new head")
    dense_units: PositiveInt = Field(description="units of the new head's Dense ReLU layer")


class EvaluateParams(Section):
    batch_size: PositiveInt = Field(description="images per prediction batch")


class RegistryParams(Section):
    task: str | None = Field(
        description="the task train_cnn and train_gan register under (<task>-cnn, <task>-gan); "
        "null: data.dataset, or the source's folder or archive name for image_folder"
    )
    transfer_task: str | None = Field(
        description="the task train_transfer registers under (<task>-transfer); null: from prepare_transfer as above"
    )
    confidence: float = Field(gt=0, lt=1, description="confidence level of the gate's bootstrap intervals")
    resamples: PositiveInt = Field(description="bootstrap resamples of the accuracy intervals")
    fid_resamples: PositiveInt = Field(description="bootstrap resamples of the FID interval (each one FID computation)")
    min_accuracy_gain: float = Field(
        ge=0,
        lt=1,
        description="a classifier becomes champion only if the low end of its accuracy gain's interval exceeds this",
    )
    min_fid_gain: float = Field(
        ge=0, description="a generator becomes champion only if the low end of its FID drop's interval exceeds this"
    )
    min_family_gain: float = Field(
        ge=0,
        description="a model of the other families (families) becomes champion only if the low end of its "
        "metric's gain interval exceeds this (mean IoU, mAP@0.5, AUROC or accuracy)",
    )


class VisualizeParams(Section):
    rows: PositiveInt = Field(description="rows of the GT vs PR grid")
    columns: PositiveInt = Field(description="columns of the GT vs PR grid")


class ScoreParams(Section):
    """Batch scoring of new images by a task's champion (flows/score.py) and its drift tests."""

    batch_size: PositiveInt = Field(description="images read and predicted at a time (memory holds one batch)")
    resize: bool = Field(
        description="fit images of another size or channel count to the model's input, as download does for an "
        "image folder; false: such images fail validation"
    )
    max_class_total_variation: float = Field(
        ge=0,
        le=1,
        description="predicted classes drifted when their shares are further than this from the training labels' "
        "(total variation distance) and the chi-square test's p-value is below class_p_value",
    )
    class_p_value: float = Field(gt=0, lt=1, description="significance level of the predicted classes' chi-square test")
    feature_sample: PositiveInt = Field(
        description="new images (a seeded sample when there are more) whose features enter the MMD test"
    )
    feature_permutations: PositiveInt = Field(description="permutations of the MMD test (its p-value's resolution)")
    feature_p_value: float = Field(gt=0, lt=1, description="significance level of the features' MMD test")
    min_feature_mmd2: float = Field(
        ge=0, description="features drifted when MMD² exceeds this and the MMD test's p-value is below feature_p_value"
    )

    @model_validator(mode="after")
    def _permutations_resolve_p_value(self) -> "ScoreParams":
        """feature_permutations can give a p-value below feature_p_value"""
        if 1 / (self.feature_permutations + 1) >= self.feature_p_value:
            raise ValueError(
                f"feature_permutations ({self.feature_permutations}) cannot give a p-value below feature_p_value "
                f"({self.feature_p_value}): use at least {int(1 / self.feature_p_value)}"
            )
        return self


class InputsParams(Section):
    cache_mb: NonNegativeInt = Field(
        description="a split of at most this many MiB of pixels is read into memory once; larger ones stream"
    )
    shuffle_buffer_mb: PositiveInt = Field(description="memory of the shuffle buffer of a streamed train split")


class AcceleratorParams(Section):
    mixed_precision: bool = Field(description="mixed_float16 on GPUs with compute capability >= 7.0; never on the CPU")
    memory_growth: bool = Field(
        description="GPU memory allocated as needed, so that training processes can share a GPU"
    )


class FamiliesParams(Section):
    """The course's other model families (docs: Model families): a family listed here has its
    train and evaluate stages in the pipeline; one left out has none."""

    images: list[Literal["rnn", "autoencoder", "vae"]] = Field(
        description="families trained on data/processed, as the CNN: rnn, autoencoder, vae"
    )
    scenes: list[Literal["unet", "detector"]] = Field(
        description="families trained on data/scenes, the composed scenes: unet, detector"
    )


class ComposeScenesParams(Section):
    """Scenes of several items from data/processed on a textured canvas, with a class mask and boxes."""

    canvas_size: PositiveInt = Field(description="side of the square canvas, in pixels")
    min_items: PositiveInt = Field(description="fewest items in a scene")
    max_items: PositiveInt = Field(description="most items in a scene")
    min_item_size: PositiveInt = Field(description="smallest side an item is resized to, in pixels")
    max_item_size: PositiveInt = Field(description="largest side an item is resized to, in pixels")
    max_overlap: float = Field(
        ge=0, lt=1, description="largest share of an item's box that the boxes placed before it may cover"
    )
    background_contrast: float = Field(ge=0, le=1, description="amplitude of the textured background (0: flat black)")
    train_scenes: PositiveInt = Field(description="scenes made from the train split's items")
    val_scenes: PositiveInt = Field(description="scenes made from the validation split's items")
    test_scenes: PositiveInt = Field(description="scenes made from the test split's items")

    @model_validator(mode="after")
    def _ranges_in_order(self) -> "ComposeScenesParams":
        """min_items <= max_items, min_item_size <= max_item_size <= canvas_size"""
        if self.min_items > self.max_items:
            raise ValueError(f"min_items ({self.min_items}) must be at most max_items ({self.max_items})")
        if not self.min_item_size <= self.max_item_size <= self.canvas_size:
            raise ValueError(
                f"need min_item_size ({self.min_item_size}) <= max_item_size ({self.max_item_size}) "
                f"<= canvas_size ({self.canvas_size})"
            )
        return self


class FamilyTrainingParams(Section):
    """What every family's training shares."""

    epochs: PositiveInt = Field(description="training epochs")
    batch_size: PositiveInt = Field(description="examples per step")
    learning_rate: float = Field(gt=0, description="Adam learning rate")


class TrainRnnParams(FamilyTrainingParams):
    cell: Literal["lstm", "gru"] = Field(description="the recurrent cell reading the image row by row")
    units: PositiveInt = Field(description="units of each recurrent layer")
    bidirectional: bool = Field(description="read the rows top-down and bottom-up")
    dropout_rate: float = Field(ge=0, lt=1, description="dropout before the softmax")


class TrainAutoencoderParams(FamilyTrainingParams):
    latent_dim: PositiveInt = Field(description="size of the bottleneck")
    noise_stddev: float = Field(ge=0, description="stddev of the Gaussian noise added to inputs (denoising); 0: none")
    anomaly_class: str | None = Field(
        description="class left out of training and scored as the anomaly; null: the last class"
    )


class TrainVaeParams(FamilyTrainingParams):
    latent_dim: PositiveInt = Field(ge=2, description="size of the latent space (the traversal walks its first two)")
    beta: float = Field(gt=0, description="weight of the KL term (1: the VAE's ELBO)")
    anomaly_class: str | None = Field(
        description="class left out of training and scored as the anomaly; null: the last class"
    )


class TrainUnetParams(FamilyTrainingParams):
    filters: PositiveInt = Field(
        description="filters at full resolution; the stride-2 stem has twice as many, doubled at each level down"
    )
    depth: PositiveInt = Field(
        description="levels of down-sampling after the stride-2 stem (the canvas must divide by 2**(depth + 1))"
    )


class TrainDetectorParams(FamilyTrainingParams):
    stride: PositiveInt = Field(description="pixels per grid cell of the head (the canvas must divide by it)")
    filters: PositiveInt = Field(description="filters of the first backbone level")
    score_threshold: float = Field(ge=0, lt=1, description="detections scored below this are dropped")
    nms_iou: float = Field(gt=0, le=1, description="non-maximum suppression: overlapping detections above this IoU")
