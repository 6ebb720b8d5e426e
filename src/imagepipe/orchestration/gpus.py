"""One training task per GPU: the GPUs of this host, handed out to training stages one each.

The flow process does not import TensorFlow (seconds of start-up on every run), so GPUs are
counted the way CUDA sees them: `CUDA_VISIBLE_DEVICES` when set, else `nvidia-smi -L`. A GPU
split into MIG instances is handed out instance by instance (`MIG-<uuid>`): a CUDA process
uses one MIG instance, and only by its UUID.
"""

import logging
import os
import queue
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from imagepipe.core.errors import StageError

logger = logging.getLogger(__name__)

NVIDIA_SMI_TIMEOUT_SECONDS = 20.0
# A CUDA device id: an index, a GPU UUID or a MIG instance UUID (`MIG-<uuid>`, or the older
# drivers' `MIG-GPU-<uuid>/<gpu instance>/<compute instance>`).
DEVICE_ID = re.compile(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+")
LISTED_GPU = re.compile(r"^GPU (\d+):")
LISTED_MIG = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)")


def visible_gpus(timeout: float = NVIDIA_SMI_TIMEOUT_SECONDS) -> list[str]:
    """The GPU ids a CUDA program started now would see; [] on a host without NVIDIA GPUs.

    Raises StageError when nvidia-smi does not answer within timeout seconds (a wedged
    driver): a flow that waited would hang, and one that went on would train on the CPU.
    """
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return declared_gpus(declared)
    if shutil.which("nvidia-smi") is None:
        return []
    return listed_gpus(_nvidia_smi_list(timeout))


def declared_gpus(declared: str) -> list[str]:
    """CUDA_VISIBLE_DEVICES as CUDA reads it: ids up to the first that is not one (`-1` hides
    every GPU, `0,-1,1` shows only 0)."""
    gpus = []
    for entry in declared.split(","):
        if not DEVICE_ID.fullmatch(entry.strip()):
            break
        gpus.append(entry.strip())
    return gpus


def listed_gpus(listing: str) -> list[str]:
    """The ids to hand out from `nvidia-smi -L`: a GPU's index, or the UUIDs of its MIG
    instances when it is split into some."""
    gpus: list[str] = []
    instances: dict[str, list[str]] = {}
    for line in listing.splitlines():
        if gpu := LISTED_GPU.match(line):
            gpus.append(gpu.group(1))
            instances[gpus[-1]] = []
        elif (mig := LISTED_MIG.match(line)) and gpus:
            instances[gpus[-1]].append(mig.group(1))
    return [device for gpu in gpus for device in instances[gpu] or [gpu]]


def _nvidia_smi_list(timeout: float) -> str:
    process = subprocess.Popen(["nvidia-smi", "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        listing, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Not waited for: a process stuck in the driver may not die even when killed.
        process.kill()
        raise StageError(
            f"nvidia-smi did not answer within {timeout:g} s: the NVIDIA driver on this host may be "
            "hung (check `nvidia-smi` and the kernel log). To run anyway, set CUDA_VISIBLE_DEVICES "
            "for the worker: the GPU ids to use, or -1 for none."
        ) from None
    if process.returncode != 0:
        logger.warning("nvidia-smi -L failed (exit %s): no GPU is handed out", process.returncode)
        return ""
    return listing


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
