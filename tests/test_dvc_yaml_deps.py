"""Every stage in dvc.yaml lists, among its deps, exactly the project modules its command
imports (transitively): a change to any of them reruns the stage, and to no other."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Code a module reads as a file rather than imports: tracking copies serving.py into each model.
READS = {"stages.common.tracking": {"stages/common/serving.py"}}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("stages.") and (ROOT / (name.replace(".", "/") + ".py")).exists()}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imported_modules(ROOT / (current.replace(".", "/") + ".py"))
    return seen


def stages() -> dict[str, dict]:
    found = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        found[name] = stage.get("do", stage)
    return found


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_are_the_code_it_imports(name):
    stage = stages()[name]
    module = re.search(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
    modules = closure(module)
    code = {f"{m.replace('.', '/')}.py" for m in modules} | {path for m in modules for path in READS.get(m, ())}
    listed = {dep for dep in stage["deps"] if isinstance(dep, str) and dep.startswith("stages/") and dep.endswith(".py")}
    assert listed == code, f"missing: {sorted(code - listed)}, not imported: {sorted(listed - code)}"
