"""Running a stage's main() in the test's process, as `python -m stages.<verb>` would, without
paying for another TensorFlow import."""

import sys


def run_main(module, monkeypatch, *arguments: str) -> None:
    monkeypatch.setattr(sys, "argv", [module.__name__, *arguments])
    module.main()
