"""The benchmark's own arithmetic and plumbing; `make bench` itself is run, not tested, here."""

import filecmp
import sys

import keras
import pytest
from keras import layers

from bench import peers
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
    assert forward_flops(model) == 2 * (8 * 8 * 3 * 3 * 2 * 4 + 256 * 5)
    assert training_flops(model) == 3 * forward_flops(model)


def test_matmul_peak_is_the_best_size():
    peak = matmul_peak(sizes=(64, 128), repeats=2)
    assert peak["gflops"] == max(peak["gflops_by_size"].values()) > 0


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
