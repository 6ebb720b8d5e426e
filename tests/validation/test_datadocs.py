"""localize() on Data Docs that GX really builds, with the assets `make setup` installs."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from imagepipe.core.params import load_params
from imagepipe.validation.datadocs import (
    ASSETS,
    DataDocsError,
    link_from_index,
    localize,
    remote_loads,
    require_assets,
)
from imagepipe.validation.expectations import image_table
from imagepipe.validation.runner import validate_dataset
from tests.helpers.data import ROOT, balanced_labels

NODE_MODULES = ROOT / "vendor" / "datadocs" / "node_modules"
# The attributes by which a page loads something as it opens, and the links a reader follows.
LOADS = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"#]+)\"""")


@pytest.fixture(scope="module")
def gx_docs(tmp_path_factory) -> Path:
    """GX Data Docs as GX builds them (assets on CDNs), for 10 classes in train and test."""
    params = load_params(ROOT / "params.yaml")
    rng = np.random.default_rng(0)
    labels = {"train": balanced_labels(10, 12), "test": balanced_labels(10, 12, seed=1)}
    tables = {name: image_table(rng.integers(0, 256, (len(v), 28, 28, 1)), v) for name, v in labels.items()}
    docs = tmp_path_factory.mktemp("gx") / "docs"
    validate_dataset(tables, [f"class {i}" for i in range(10)], params.validation, params.image, docs_dir=docs)
    return docs


@pytest.fixture
def docs(gx_docs, tmp_path) -> Path:
    return Path(shutil.copytree(gx_docs, tmp_path / "docs"))


def pages(docs: Path) -> list[Path]:
    return sorted(docs.rglob("*.html"))


def test_gx_pages_load_from_cdns_before(gx_docs):
    """The premise: what GX writes loads its assets (and logo) from other hosts."""
    remote = {url for page in pages(gx_docs) for url in remote_loads(page.read_text())}
    assert {asset.url for asset in ASSETS} - remote == set()
    assert any("amazonaws.com/logo-long.png?d=" in url for url in remote)


def test_every_page_loads_only_local_files_that_exist(docs):
    rewritten = localize(docs, NODE_MODULES)
    assert {path.suffix for path in rewritten} == {".html", ".css"} and len(pages(docs)) == 11
    for page in pages(docs):
        text = page.read_text()
        assert remote_loads(text) == [], page
        for link in LOADS.findall(text):
            assert (page.parent / link).resolve().is_file(), f"{page.relative_to(docs)}: {link}"
        assert "integrity=" not in text and "crossorigin=" not in text
        assert "newsletter" not in text and "amazonaws" not in text
    fonts = docs / "static/vendor/@fortawesome/fontawesome-free"
    assert (fonts / "css/all.min.css").is_file() and (fonts / "webfonts/fa-solid-900.woff2").is_file()


def test_validation_pages_reach_the_assets_from_four_folders_down(docs):
    localize(docs, NODE_MODULES)
    (page,) = (docs / "validations" / "test_vs_train").rglob("*.html")
    assert len(page.relative_to(docs).parents) == 5  # validations/<suite>/<run>/<time>/
    assert '<script src="../../../../static/vendor/vega/build/vega.min.js"></script>' in page.read_text()
    # GX's own favicon link misses by one folder on these pages; it is re-rooted too.
    assert 'href="../../../../static/images/favicon.ico"' in page.read_text()


def test_missing_assets_say_how_to_install_them(tmp_path):
    with pytest.raises(DataDocsError, match=r"not installed in .*missing @forevolve.*run `make setup`"):
        require_assets(tmp_path / "node_modules")


def test_an_unknown_remote_asset_fails_naming_page_and_url(docs):
    page = docs / "expectations" / "test_images.html"
    page.write_text(
        page.read_text().replace("</head>", '<script src="https://cdn.example.org/new.js"></script></head>')
    )
    with pytest.raises(DataDocsError, match=r"expectations/test_images.html: https://cdn.example.org/new.js"):
        localize(docs, NODE_MODULES)


def test_links_are_added_to_the_index_side_bar(docs):
    link_from_index(docs, {"label_distribution.html": "Label distribution"})
    text = (docs / "index.html").read_text()
    assert text.index('<a href="label_distribution.html">Label distribution</a>') < text.index('<div class="sticky">')
