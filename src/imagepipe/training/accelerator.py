"""Training on what the host has: its GPUs with the settings that suit them, else the CPU.

On GPUs: memory growth (so that several training processes can share a GPU without the first
taking all its memory), mixed precision where every GPU has tensor cores (compute capability
7.0 or newer) and `accelerator.mixed_precision` allows it, and a MirroredStrategy over the GPUs
when there are several (the batch size in params.yaml is the global batch, split across them).
On the CPU: float32 and the default strategy. The choice is logged and tagged on the MLflow run.
"""

import logging
from dataclasses import dataclass

import keras
import tensorflow as tf

from imagepipe.core.sections import AcceleratorParams

logger = logging.getLogger(__name__)
TENSOR_CORES = (
    7,
    0,
)  # the first compute capability where float16 matmuls are fast (Volta)


@dataclass(frozen=True)
class Gpu:
    name: str  # TensorFlow's device name, e.g. /physical_device:GPU:0
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class Accelerator:
    device: str  # "gpu" or "cpu"
    gpus: tuple[str, ...]
    mixed_precision: bool
    strategy: str  # "mirrored" or "default"
    memory_growth: bool

    def tags(self) -> dict[str, str]:
        """What was chosen, as MLflow tags (tags, not params: a resumed run may land on another host)."""
        return {
            "accelerator.device": self.device,
            "accelerator.gpus": str(len(self.gpus)),
            "accelerator.mixed_precision": str(self.mixed_precision).lower(),
            "accelerator.strategy": self.strategy,
            "accelerator.memory_growth": str(self.memory_growth).lower(),
        }


def choose(
    gpus: list[Gpu],
    params: AcceleratorParams,
    distribute: bool = True,
    mixed_precision: bool = True,
) -> Accelerator:
    """The settings for these GPUs; `distribute` and `mixed_precision` say what the model supports."""
    if not gpus:
        return Accelerator("cpu", (), False, "default", False)
    tensor_cores = all(gpu.compute_capability is not None and gpu.compute_capability >= TENSOR_CORES for gpu in gpus)
    return Accelerator(
        device="gpu",
        gpus=tuple(gpu.name for gpu in gpus),
        mixed_precision=mixed_precision and params.mixed_precision and tensor_cores,
        strategy="mirrored" if distribute and len(gpus) > 1 else "default",
        memory_growth=params.memory_growth,
    )


def configure_accelerator(
    params: AcceleratorParams, distribute: bool = True, mixed_precision: bool = True
) -> tuple[Accelerator, tf.distribute.Strategy]:
    """Detect the GPUs, apply the chosen settings and return them with the strategy to build under.

    Must run before anything touches a GPU: memory growth cannot be set afterwards.
    """
    physical = tf.config.list_physical_devices("GPU")
    if params.memory_growth:
        for gpu in physical:
            tf.config.experimental.set_memory_growth(gpu, True)
    gpus = [
        Gpu(
            gpu.name,
            tf.config.experimental.get_device_details(gpu).get("compute_capability"),
        )
        for gpu in physical
    ]
    chosen = choose(gpus, params, distribute, mixed_precision)
    keras.mixed_precision.set_global_policy("mixed_float16" if chosen.mixed_precision else "float32")
    devices = [device.name for device in tf.config.list_logical_devices("GPU")]
    strategy = build_strategy(devices) if chosen.strategy == "mirrored" else tf.distribute.get_strategy()
    if chosen.device == "cpu":
        logger.info("no GPU visible: training on the CPU in float32")
    else:
        logger.info(
            "training on %d GPU(s), mixed precision %s, %s strategy",
            len(gpus),
            chosen.mixed_precision,
            chosen.strategy,
        )
    return chosen, strategy


def build_strategy(devices: list[str]) -> tf.distribute.Strategy:
    """MirroredStrategy over several devices; the default strategy for one."""
    return tf.distribute.MirroredStrategy(devices) if len(devices) > 1 else tf.distribute.get_strategy()
