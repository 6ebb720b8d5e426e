import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from imagepipe.core.sections import AcceleratorParams
from imagepipe.models.cnn import batchnorm_cnn
from imagepipe.training.accelerator import Gpu, choose, configure_accelerator

ALLOWED = AcceleratorParams(mixed_precision=True, memory_growth=True)
AMPERE, PASCAL = Gpu("/physical_device:GPU:0", (8, 0)), Gpu("/physical_device:GPU:1", (6, 1))


def test_no_gpu_means_cpu_float32_and_the_default_strategy():
    assert choose([], ALLOWED) == choose([], AcceleratorParams(mixed_precision=False, memory_growth=False))
    chosen = choose([], ALLOWED)
    assert (chosen.device, chosen.mixed_precision, chosen.strategy, chosen.gpus) == ("cpu", False, "default", ())


@pytest.mark.parametrize(
    "gpus, params, expected",
    [
        ([AMPERE], ALLOWED, True),
        ([PASCAL], ALLOWED, False),  # no tensor cores: float16 would be slower, not faster
        ([AMPERE, PASCAL], ALLOWED, False),
        ([AMPERE], AcceleratorParams(mixed_precision=False, memory_growth=True), False),
        ([Gpu("/physical_device:GPU:0", None)], ALLOWED, False),
    ],
)
def test_mixed_precision_only_where_every_gpu_has_tensor_cores_and_params_allow(gpus, params, expected):
    assert choose(gpus, params).mixed_precision is expected


def test_a_model_that_cannot_take_mixed_precision_or_several_gpus_is_not_given_them():
    chosen = choose([AMPERE, Gpu("/physical_device:GPU:1", (8, 0))], ALLOWED, distribute=False, mixed_precision=False)
    assert (chosen.device, chosen.strategy, chosen.mixed_precision) == ("gpu", "default", False)
    assert choose([AMPERE, Gpu("/physical_device:GPU:1", (8, 0))], ALLOWED).strategy == "mirrored"
    assert choose([AMPERE], ALLOWED).strategy == "default"


def test_the_choice_is_described_as_mlflow_tags():
    assert choose([AMPERE], ALLOWED).tags() == {
        "accelerator.device": "gpu",
        "accelerator.gpus": "1",
        "accelerator.mixed_precision": "true",
        "accelerator.strategy": "default",
        "accelerator.memory_growth": "true",
    }


def test_configure_chooses_what_this_host_has():
    """On a CPU host: the CPU in float32. On a GPU host: every GPU TensorFlow lists, mixed
    precision where all have tensor cores, one replica per GPU. The GPUs are the host's own;
    nothing here stands in for them."""
    gpus = tf.config.list_physical_devices("GPU")
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus]
    tensor_cores = bool(gpus) and all(capability and capability >= (7, 0) for capability in capabilities)
    try:
        chosen, strategy = configure_accelerator(ALLOWED)
        policy = keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy("float32")  # the tests after this one build in float32
    assert chosen.device == ("gpu" if gpus else "cpu") and chosen.gpus == tuple(gpu.name for gpu in gpus)
    assert chosen.mixed_precision is tensor_cores and policy == ("mixed_float16" if tensor_cores else "float32")
    assert strategy.num_replicas_in_sync == max(len(gpus), 1)


def test_under_mixed_precision_the_classifier_still_outputs_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = batchnorm_cnn((28, 28, 1), 10, 0.1)
        assert model.get_layer("features").compute_dtype == "float16"
        predictions = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert predictions.dtype == np.float32 and np.allclose(predictions.sum(axis=1), 1, atol=1e-3)


def test_mirrored_strategy_trains_across_two_devices():
    """Two logical CPUs stand in for two GPUs (no GPU here); they must be set before TensorFlow
    starts, so this runs in a fresh process."""
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from imagepipe.training.accelerator import build_strategy
        from imagepipe.models.cnn import batchnorm_cnn
        strategy = build_strategy([device.name for device in tf.config.list_logical_devices("CPU")])
        with strategy.scope():
            model = batchnorm_cnn((28, 28, 1), 10, 0.1)
            model.compile(optimizer="adam", loss="categorical_crossentropy")
        x, y = np.random.rand(64, 28, 28, 1).astype("float32"), np.eye(10, dtype="float32")[np.arange(64) % 10]
        history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        print(type(strategy).__name__, strategy.num_replicas_in_sync, np.isfinite(history.history["loss"][0]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["MirroredStrategy", "2", "True"]
