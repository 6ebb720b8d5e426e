"""Self-contained GX Data Docs: the assets GX's pages load from public CDNs, served from the
docs folder instead, so the pages open styled and working on a machine without internet.

GX 1.x's page templates name Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega and a few
others by CDN URL, and its logo by an S3 URL (issue 17). `make setup` installs the same versions
as npm packages (vendor/datadocs/package-lock.json); localize() copies the files a page needs
into `static/vendor/<package>/` of the docs, points every page at them, removes the newsletter
footer, and fails if any page would still fetch something from another host when it opens.
"""

import html
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from imagepipe.core.errors import StageError

logger = logging.getLogger(__name__)

INSTALL_HINT = "run `make setup` (or `npm ci --prefix vendor/datadocs`)"
VENDOR_DIR = "static/vendor"
LOGO = "static/images/logo-long.png"  # GX copies it into every docs site's static folder


@dataclass(frozen=True)
class Asset:
    url: str  # as GX's templates name it
    package: str  # its npm package, a folder of node_modules
    file: str  # the file the URL serves, inside the package
    extras: tuple[str, ...] = ()  # folders of the package the file refers to

    @property
    def local(self) -> str:
        return f"{VENDOR_DIR}/{self.package}/{self.file}"


UNPKG_TABLE = "https://unpkg.com/bootstrap-table@{}/dist/"
CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
FILTER_CONTROL = "extensions/filter-control/bootstrap-table-filter-control"
BOOTSTRAP_CSS = "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"
VEGA_SCRIPTS = tuple(f"https://cdn.jsdelivr.net/npm/{name}" for name in ("vega@5", "vega-lite@5", "vega-embed@6"))
ASSETS = (
    Asset(BOOTSTRAP_CSS, "bootstrap", "dist/css/bootstrap.min.css"),
    Asset(
        "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
        "bootstrap",
        "dist/js/bootstrap.min.js",
    ),
    Asset("https://code.jquery.com/jquery-3.7.1.min.js", "jquery", "dist/jquery.min.js"),
    Asset(f"{CDNJS}popper.js/1.12.9/umd/popper.min.js", "popper.js", "dist/umd/popper.min.js"),
    *(
        Asset(f"{UNPKG_TABLE.format('1.19.1')}{name}", "bootstrap-table", f"dist/{name}")
        for name in ("bootstrap-table.min.css", "bootstrap-table.min.js", f"{FILTER_CONTROL}.min.js")
    ),
    # GX names 1.19.0 for this stylesheet alone; 1.19.1's is the same file but for its version comment.
    *(
        Asset(
            f"{UNPKG_TABLE.format('1.19.0')}{FILTER_CONTROL}{suffix}",
            "bootstrap-table",
            f"dist/{FILTER_CONTROL}{suffix}",
        )
        for suffix in (".css", ".min.css")
    ),
    *(
        Asset(
            f"{CDNJS}bootstrap-datepicker/1.9.0/{kind}/bootstrap-datepicker.min.{kind}",
            "bootstrap-datepicker",
            f"dist/{kind}/bootstrap-datepicker.min.{kind}",
        )
        for kind in ("css", "js")
    ),
    # all.min.css loads its fonts from ../webfonts/.
    Asset(
        f"{CDNJS}font-awesome/6.6.0/css/all.min.css", "@fortawesome/fontawesome-free", "css/all.min.css", ("webfonts",)
    ),
    Asset(
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
        "@forevolve/bootstrap-dark",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    # What jsDelivr serves for a bare package name: the file its package.json names under "jsdelivr".
    *(
        Asset(url, name, f"build/{name}.min.js")
        for url, name in zip(VEGA_SCRIPTS, ("vega", "vega-lite", "vega-embed"), strict=True)
    ),
)
# GX's logo, with a timestamp query on every build; the dark theme's variant is not in GX's
# static folder, so both become the local logo.
S3_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3[\w.-]*\.amazonaws\.com/[\w-]*logo[\w-]*\.png(\?[^\"')\s]*)?"
)
NEWSLETTER = re.compile(r"<footer>(?:(?!</footer>).)*?greatexpectations\.io/newsletter.*?</footer>\s*", re.S)
# GX's own links into its static folder, which miss by a folder on validation pages (the favicon).
GX_STATIC = re.compile(r"""(["'(])(?:\./|(?:\.\./)+)static/""")
TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.I)
# What a browser fetches as a page opens: scripts, stylesheets, images, frames, CSS urls and imports.
REMOTE_LOAD = re.compile(
    r"""<(?:script|img|iframe|source|embed|video|audio|input)\b[^>]*?\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)|@import\s+["']((?:https?:)?//[^"']+)""",
    re.I,
)


class DataDocsError(StageError):
    """The Data Docs could not be made self-contained."""


def require_assets(node_modules: Path) -> None:
    """Fail early (before any validating) when the assets are not installed."""
    missing = sorted(
        {
            f"{asset.package}/{path}"
            for asset in ASSETS
            for path in (asset.file, *asset.extras)
            if not (node_modules / asset.package / path).exists()
        }
    )
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataDocsError(
            f"the Data Docs' browser assets are not installed in {node_modules} "
            f"(missing {', '.join(missing[:3])}{more}): {INSTALL_HINT}"
        )


def localize(docs: Path, node_modules: Path) -> list[Path]:
    """Copy the assets into docs and point every page (and GX's stylesheets) at the copies.
    Returns the files rewritten; raises DataDocsError if any would still load a remote URL."""
    require_assets(node_modules)
    copy_assets(docs, node_modules)
    vendor = docs / VENDOR_DIR
    files = [
        path for path in sorted(docs.rglob("*")) if path.suffix in {".html", ".css"} and not path.is_relative_to(vendor)
    ]
    remote = []
    for path in files:
        text = localize_text(path.read_text(), relative_root(docs, path))
        path.write_text(text)
        remote += [f"{path.relative_to(docs)}: {url}" for url in remote_loads(text)]
    if remote:
        raise DataDocsError(
            f"{len(remote)} Data Docs load(s) still point to the internet, new in this GX version? "
            f"Add them to ASSETS in {__name__} and vendor/datadocs/package.json:\n  " + "\n  ".join(remote[:10])
        )
    logger.info("Data Docs in %s load their assets from %s (%d pages and stylesheets)", docs, vendor, len(files))
    return files


def copy_assets(docs: Path, node_modules: Path) -> None:
    for asset in ASSETS:
        source, target = node_modules / asset.package, docs / VENDOR_DIR / asset.package
        (target / asset.file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / asset.file, target / asset.file)
        for folder in asset.extras:
            shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)


def relative_root(docs: Path, path: Path) -> str:
    """The docs folder as a relative URL from path's folder: "./", "../../../../"."""
    return Path(os.path.relpath(docs, path.parent)).as_posix() + "/"


def localize_text(text: str, root: str) -> str:
    """A page or stylesheet with each CDN asset replaced by root + its local copy, the local
    logo for GX's S3 one, links into the static folder from root, and no newsletter footer."""
    for asset in ASSETS:
        text = text.replace(f'"{asset.url}"', f'"{root}{asset.local}"')
    text = NEWSLETTER.sub("", S3_LOGO.sub(root + LOGO, text))
    text = GX_STATIC.sub(lambda link: f"{link.group(1)}{root}static/", text)
    return TAG.sub(lambda tag: without_integrity(tag.group(0), root), text)


def without_integrity(tag: str, root: str) -> str:
    """A tag that loads a local copy loses its CORS and subresource-integrity attributes: a page
    opened from file:// has no origin to make CORS requests from, so Chromium would refuse the
    script. The copies are pinned by package-lock.json's integrity hashes instead."""
    if f"{root}{VENDOR_DIR}/" not in tag:
        return tag
    return re.sub(r"""\s+(?:integrity|crossorigin)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", "", tag)


def remote_loads(text: str) -> list[str]:
    """The URLs on other hosts that a browser would fetch as the page (or stylesheet) opens."""
    return [next(url for url in match.groups() if url) for match in REMOTE_LOAD.finditer(text)]


def link_from_index(docs: Path, links: dict[str, str]) -> None:
    """Add links (page path: title) to the side bar of GX's index page."""
    index = docs / "index.html"
    items = "".join(f'<li><a href="{html.escape(path)}">{html.escape(title)}</a></li>' for path, title in links.items())
    block = f'<div class="mb-4 ge-extra-pages"><ul class="list-unstyled">{items}</ul></div>\n'
    text = index.read_text()
    anchor = '<div class="sticky">'
    if anchor not in text:
        raise DataDocsError(
            f"{index} has no side bar ({anchor}) to link {', '.join(links)} from: new in this GX version?"
        )
    index.write_text(text.replace(anchor, block + anchor, 1))
