"""The course's recipes (`../shared/peers/`), run as they are, beside the project's stages.

The shared folder is used when it is there; otherwise `bench/peers/`, an exact copy (a test
checks the copy still matches). Each recipe prints one `RESULT key=value ...` line.
"""

import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "peers"
BUNDLED = Path(__file__).resolve().parent / "peers"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def peer_dir() -> Path:
    return SHARED if SHARED.is_dir() else BUNDLED


def parse_result(output: str) -> dict[str, float]:
    """The last `RESULT k=v ...` line of a recipe's output, values as numbers."""
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"no RESULT line in the recipe's output:\n{output[-2000:]}")
    return {key: float(value) for key, value in (field.split("=", 1) for field in lines[-1].split()[1:])}


def run_peer(script: str, *args: str) -> dict[str, float]:
    path = peer_dir() / script
    completed = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"{path} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return parse_result(completed.stdout) | {"source": str(path)}


def course_cnn(epochs: int, data_dir: Path = FASHION_MNIST) -> dict:
    """seed_cnn.py: seconds per epoch, images/s and test accuracy after `epochs`."""
    return run_peer("seed_cnn.py", str(epochs), str(data_dir))


def course_augmentation(data_dir: Path = FASHION_MNIST) -> dict:
    """seed_augment.py: ImageDataGenerator vs Keras layers in tf.data, images/s."""
    return run_peer("seed_augment.py", str(data_dir))
