"""The Data Docs' browser assets for the repos tests build: the committed npm manifest copied,
the packages `make setup` installed linked (installing them again would take a minute)."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATADOCS = Path("vendor") / "datadocs"
MANIFEST = ("package.json", "package-lock.json", ".npmrc")


def copy_datadocs_vendor(repo: Path) -> None:
    """The manifest, as a clone of the project has it, and the installed packages."""
    (repo / DATADOCS).mkdir(parents=True, exist_ok=True)
    for name in MANIFEST:
        shutil.copy(ROOT / DATADOCS / name, repo / DATADOCS / name)
    link_datadocs_assets(repo)


def link_datadocs_assets(repo: Path) -> None:
    """The installed packages in a clone that has the manifest (git-ignored, as a link too)."""
    (repo / DATADOCS / "node_modules").symlink_to(ROOT / DATADOCS / "node_modules", target_is_directory=True)
