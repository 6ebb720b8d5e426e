"""Every stage in dvc.yaml lists, among its deps, exactly the project code its command imports
(transitively): a change to any of it reruns the stage, and a change to nothing else does.

A dep may name a folder of the library (src/imagepipe/data) when the stage imports every module
in it, so the lists stay short and still exact. Package __init__ files are left out on both
sides: they hold only a docstring (checked below), so a change to them changes no stage's output.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src"
# Code a module reads as a file rather than imports: publish copies serving.py into each model.
READS = {"imagepipe.tracking.publish": {"src/imagepipe/tracking/serving.py"}}


def module_file(name: str) -> Path | None:
    """The project file of a module name (a stage or a library module), or None."""
    base = LIBRARY if name.startswith("imagepipe.") else ROOT
    path = base / (name.replace(".", "/") + ".py")
    return path if path.exists() and path.name != "__init__.py" else None


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith(("imagepipe.", "stages.")) and module_file(name)}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imported_modules(module_file(current))
    return seen


def code_files(module: str) -> set[str]:
    modules = closure(module)
    files = {str(module_file(name).relative_to(ROOT)) for name in modules}
    return files | {path for name in modules for path in READS.get(name, ())}


def expand(dep: str) -> set[str]:
    """A dep's Python files: the file itself, or every module of a library folder."""
    path = ROOT / dep
    if path.is_dir():
        return {str(file.relative_to(ROOT)) for file in path.rglob("*.py") if file.name != "__init__.py"}
    return {dep}


def shortest_deps(files: set[str]) -> list[str]:
    """The deps to list for these files: whole library folders where all their modules are used."""
    folders = {str(Path(file).parent) for file in files if file.startswith("src/")}
    whole = {folder for folder in folders if expand(folder) <= files}
    return sorted(whole | {file for file in files if str(Path(file).parent) not in whole})


def stages() -> dict[str, dict]:
    """Each stage's definition; a foreach over a params list (the model families) once per item,
    with the item put in, and `siblings`: the items of that list."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    found = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        source = stage.get("foreach")
        if not (isinstance(source, str) and source.startswith("${")):
            found[name] = stage.get("do", stage)
            continue
        items = params
        for key in source.strip("${}").split("."):
            items = items[key]
        for item in items:
            found[f"{name}@{item}"] = yaml.safe_load(yaml.safe_dump(stage["do"]).replace("${item}", item))
            found[f"{name}@{item}"]["siblings"] = list(items)
    return found


def stage_code(stage: dict) -> set[str]:
    module = re.search(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
    code = code_files(module)
    # The generic family stages import their family's module by name (imagepipe.families.catalog).
    family = re.search(r"--family (\w+)", stage["cmd"])
    return code | (code_files(f"imagepipe.families.{family.group(1)}.family") if family else set())


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_are_the_code_it_imports(name):
    """A family's stages share one definition (a foreach over params.yaml's `families` lists,
    so that a family can be switched off), whose deps cannot vary by family beyond the family's
    own package: they list what any family of the list imports besides its package."""
    stage = stages()[name]
    code = stage_code(stage)
    if "siblings" in stage:
        for sibling in stage["siblings"]:
            shared = stage_code(stages()[f"{name.split('@')[0]}@{sibling}"])
            code |= {file for file in shared if not file.startswith(f"src/imagepipe/families/{sibling}/")}
    listed = [dep for dep in stage["deps"] if isinstance(dep, str) and dep.startswith(("stages/", "src/"))]
    covered = set().union(*(expand(dep) for dep in listed))
    assert covered == code, (
        f"missing: {sorted(code - covered)}, not imported: {sorted(covered - code)}; list these: {shortest_deps(code)}"
    )


def test_package_init_files_hold_only_a_docstring():
    for init in LIBRARY.rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), init


def test_no_stage_imports_another_stage_and_the_library_imports_no_stage():
    for path in [
        *(ROOT / "stages").glob("*.py"),
        *LIBRARY.rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        *(ROOT / "flows").glob("*.py"),
    ]:
        stage_imports = {name for name in imported_modules(path) if name.startswith("stages.")}
        assert not stage_imports, f"{path.relative_to(ROOT)} imports {sorted(stage_imports)}"
