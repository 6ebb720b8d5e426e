import threading
import time

from imagepipe.orchestration.gpus import GpuSlots, visible_gpus


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1, 3")
    assert visible_gpus() == ["1", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
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
