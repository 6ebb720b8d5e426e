import threading
import time

import pytest

from imagepipe.core.errors import StageError
from imagepipe.orchestration.gpus import GpuSlots, visible_gpus

MIG_UUID = "MIG-4f1c2f0e-6d1b-5a7e-9c3d-2b8e0a1f6c5d"
# `nvidia-smi -L` on a host whose first A100 is split into two MIG instances (driver ≥ 470).
LISTING = f"""GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)
  MIG 3g.20gb     Device  0: (UUID: {MIG_UUID})
  MIG 3g.20gb     Device  1: (UUID: MIG-a8b1e2c3-0d4f-5b6a-8c9d-1e2f3a4b5c6d)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-0b9d4e1a-7c2f-4e8b-a1d3-6f5e4c3b2a19)
"""


@pytest.mark.parametrize(
    ("declared", "gpus"),
    [
        ("1, 3", ["1", "3"]),
        ("-1", []),
        ("", []),
        ("0,-1,1", ["0"]),  # CUDA stops at the first id that is not one
        (MIG_UUID, [MIG_UUID]),
        ("MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/1/0", ["MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/1/0"]),
        ("GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77,2", ["GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77", "2"]),
    ],
)
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, declared, gpus):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", declared)
    assert visible_gpus() == gpus


def fake_nvidia_smi(tmp_path, monkeypatch, script: str) -> None:
    """An nvidia-smi on PATH that runs script: the host's GPUs or its driver cannot be had here."""
    command = tmp_path / "bin" / "nvidia-smi"
    command.parent.mkdir()
    command.write_text(f"#!/bin/sh\n{script}\n")
    command.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{command.parent}:/usr/bin:/bin")


def test_mig_instances_are_handed_out_one_each_and_whole_gpus_by_index(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, f"cat <<'END'\n{LISTING}END")
    assert visible_gpus() == [MIG_UUID, "MIG-a8b1e2c3-0d4f-5b6a-8c9d-1e2f3a4b5c6d", "1"]


def test_a_hung_nvidia_smi_fails_fast_with_what_to_do(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, "trap '' TERM INT; sleep 30")
    started = time.monotonic()
    with pytest.raises(StageError, match=r"nvidia-smi did not answer within 0.5 s.*CUDA_VISIBLE_DEVICES"):
        visible_gpus(timeout=0.5)
    assert time.monotonic() - started < 5


def test_a_failing_nvidia_smi_means_no_gpus(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert visible_gpus() == []


def test_no_nvidia_smi_means_no_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert visible_gpus() == []


def test_each_holder_gets_its_own_gpu_and_the_next_waits():
    slots = GpuSlots(["0"])
    order = []

    def second():
        with slots.hold() as env:
            order.append(("second", env["CUDA_VISIBLE_DEVICES"]))

    with slots.hold() as env:
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append(("first", env["CUDA_VISIBLE_DEVICES"]))
    thread.join(timeout=5)
    assert order == [("first", "0"), ("second", "0")]


def test_without_gpus_nothing_is_pinned_or_waited_for():
    slots = GpuSlots([])
    with slots.hold() as first, slots.hold() as second:
        assert first == {} and second == {}
