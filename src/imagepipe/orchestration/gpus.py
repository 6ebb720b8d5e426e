"""One training task per GPU: the GPUs of this host, handed out to training stages one each.

The flow process does not import TensorFlow (seconds of start-up on every run), so GPUs are
counted the way CUDA sees them: `CUDA_VISIBLE_DEVICES` when set, else `nvidia-smi`.
"""

import os
import queue
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


def visible_gpus() -> list[str]:
    """The GPU ids a CUDA program started now would see; [] on a host without NVIDIA GPUs."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [gpu.strip() for gpu in declared.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    )
    return result.stdout.split() if result.returncode == 0 else []


class GpuSlots:
    """A pool of GPUs; a training stage holds one for its whole run.

    With no GPUs there is nothing to share and every training stage runs at once on the CPU
    (the work pool's and Prefect's concurrency limits still apply).
    """

    def __init__(self, gpus: list[str]):
        self.gpus = gpus
        self._free: queue.Queue[str] = queue.Queue()
        for gpu in gpus:
            self._free.put(gpu)

    @contextmanager
    def hold(self) -> Iterator[dict[str, str]]:
        """Wait for a free GPU and yield the environment that pins a process to it."""
        if not self.gpus:
            yield {}
            return
        gpu = self._free.get()
        try:
            yield {"CUDA_VISIBLE_DEVICES": gpu}
        finally:
            self._free.put(gpu)
