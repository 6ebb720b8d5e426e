"""The benchmark's own arithmetic and plumbing; `make bench` itself is run, not tested, here."""

import filecmp
import sys
from types import SimpleNamespace

import keras
import pytest
from keras import layers

from bench import compute, peers
from bench.compute import forward_flops, matmul_peak, training_flops
from bench.pipeline import environment, timed


def test_bundled_course_recipes_are_exact_copies_of_the_shared_ones():
    if not peers.SHARED.is_dir():
        pytest.skip(f"{peers.SHARED} is absent here: the bundled copy is what runs")
    for script in ("seed_cnn.py", "seed_augment.py"):
        assert filecmp.cmp(peers.SHARED / script, peers.BUNDLED / script, shallow=False), script


def test_result_lines_are_parsed_and_their_absence_is_an_error():
    assert peers.parse_result("EPOCH 0 1.0s\nRESULT epochs=2 fit_s=16.5 test_acc=0.8731\n") == {
        "epochs": 2,
        "fit_s": 16.5,
        "test_acc": 0.8731,
    }
    with pytest.raises(RuntimeError, match="no RESULT line"):
        peers.parse_result("Traceback ...")


def test_flops_are_counted_per_layer():
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same")(inputs)  # 8·8 positions × 3·3·2 inputs × 4 filters
    x = layers.Flatten()(x)
    model = keras.Model(inputs, layers.Dense(5)(x))  # 256 × 5
    assert forward_flops(model) == 2 * (8 * 8 * 3 * 3 * 2 * 4 + 256 * 5) == 11_776
    assert training_flops(model) == 35_328  # forward, then gradients for inputs and for weights


def test_flops_count_the_output_positions_of_a_strided_convolution_inside_a_nested_model():
    inner_input = keras.Input((9, 9, 1))
    inner = keras.Model(inner_input, layers.Conv2D(2, 3, strides=2)(inner_input))  # 4·4 positions × 3·3·1 × 2
    inputs = keras.Input((9, 9, 1))
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(inner(inputs))))  # 32 × 3
    assert forward_flops(model) == 2 * (288 + 96) == 768


def test_a_grouped_convolution_counts_each_filter_over_its_own_group_of_inputs():
    inputs = keras.Input((8, 8, 4))
    # 2 groups: each of the 6 filters sees 2 of the 4 input channels: 8·8 positions × 3·3·2 × 6.
    model = keras.Model(inputs, layers.Conv2D(6, 3, padding="same", groups=2)(inputs))
    assert forward_flops(model) == 2 * 8 * 8 * 3 * 3 * 2 * 6 == 13_824


def test_matmul_peak_is_the_best_size(monkeypatch):
    """The clock is the test's (real matmuls, but their real times vary): n×n by n×n is 2·n³
    FLOPs, and the smaller size is the faster here, so the peak is not simply the last one."""
    # perf_counter is read at the start and the end of each size's timed repeats.
    clock = iter([0.0, 0.001, 5.0, 5.016])
    monkeypatch.setattr(compute, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    peak = matmul_peak(sizes=(64, 128), repeats=2)
    # 64: 2·64³·2 = 1,048,576 FLOPs in 1 ms; 128: 2·128³·2 = 8,388,608 FLOPs in 16 ms.
    assert peak["gflops_by_size"] == pytest.approx({64: 1.048576, 128: 0.524288})
    assert peak["gflops"] == pytest.approx(1.048576)


def test_timed_reports_the_peak_memory_of_the_largest_process(tmp_path):
    allocate = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(0.2)"
    # The allocating process is a grandchild, as a stage's Python is under DVC.
    result = timed(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {allocate!r}], check=True)",
        ],
        tmp_path,
        environment(),
    )
    assert result["peak_memory_mib"] >= 300
    failing = [sys.executable, "-c", "import sys; print('bad input'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="exit 3"):
        timed(failing, tmp_path, environment())
    # A command whose exit status is an outcome (the score flow's Drifted) is timed all the same.
    assert timed(failing, tmp_path, environment(), check=False)["returncode"] == 3


def test_peak_memory_is_the_commands_own_not_the_callers(tmp_path):
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # resident in this process, then fork
    result = timed([sys.executable, "-c", "pass"], tmp_path, environment())
    assert result["peak_memory_mib"] < 200
    del ballast
