"""Arithmetic: the machine's measured float32 matmul peak, and what a Keras model costs per image."""

import time

import keras
import tensorflow as tf
from keras import layers


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 10) -> dict:
    """The best float32 GFLOP/s of tf.matmul on square matrices, over all sizes (after a warm-up)."""
    best = {}
    for size in sizes:
        a, b = tf.random.normal([size, size], seed=1), tf.random.normal([size, size], seed=2)
        tf.matmul(a, b).numpy()
        start = time.perf_counter()
        for _ in range(repeats):
            result = tf.matmul(a, b)
        result.numpy()
        best[size] = 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9
    return {"gflops_by_size": best, "gflops": max(best.values())}


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds ×2 of the model's Conv2D and Dense layers for one image (the layers that
    dominate; batch norm, activations and pooling are left out, so the figure is a floor)."""
    total = 0
    for layer in _leaves(model):
        if isinstance(layer, layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
            _, height, width, _ = layer.output.shape
            # A grouped convolution's kernel already holds channels_in // groups input channels.
            total += 2 * height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def training_flops(model: keras.Model) -> int:
    """Per training image: the forward pass, then gradients for inputs and for weights (≈ 2× more)."""
    return 3 * forward_flops(model)


def _leaves(model: keras.Model):
    for layer in model.layers:
        yield from _leaves(layer) if isinstance(layer, keras.Model) else (layer,)
