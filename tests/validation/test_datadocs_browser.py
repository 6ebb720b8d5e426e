"""The validate stage's Data Docs, opened in a headless Chromium with the network cut off: every
page loads nothing but files of the docs folder, and still shows what the assets are for
(Bootstrap's styles, the index's table that bootstrap-table fills, Font Awesome's icons, the
Vega charts). Debian's chromium (`make browser`), driven by Playwright."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from imagepipe.data.sources.raw import ArraySplit
from imagepipe.data.storage import save_raw
from imagepipe.validation.summary import ValidationFailed
from stages import validate
from tests.helpers.data import ROOT, balanced_labels
from tests.helpers.stages import run_main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary; `make browser` installs Debian's"),
    pytest.mark.slow,  # 10 to 20 s on two cores: 14 page loads, each parsing 2 MB of scripts and styles
]
NAMES = ["T-shirt/top", "Ankle boot", "banana_ü", "cherry (red)", "猫"]
BOOTSTRAP_FONT = "-apple-system"  # the head of Bootstrap 4's font stack; unstyled pages show a serif


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """The stage's Data Docs of a dataset where "猫" is half of train, 2.5 times the uniform share:
    the stage fails on it, as a run whose docs a user opens to see why would."""
    root = tmp_path_factory.mktemp("validate")
    rng = np.random.default_rng(0)
    train = np.r_[balanced_labels(len(NAMES), 20), np.full(60, 4)]
    splits = {
        name: ArraySplit(rng.integers(0, 256, (len(labels), 28, 28, 1), dtype=np.uint8), labels)
        for name, labels in (("train", train), ("test", balanced_labels(len(NAMES), 20, seed=1)))
    }
    save_raw(root / "raw", splits, (28, 28, 1), NAMES, {})
    arguments = ["--params", str(ROOT / "params.yaml"), "--raw", str(root / "raw"), "--out", str(root / "out")]
    arguments += [
        "--assets",
        str(ROOT / "vendor/datadocs/node_modules"),
        "--plot",
        str(root / "plots" / "label_distribution.csv"),
    ]
    with pytest.MonkeyPatch.context() as monkeypatch, pytest.raises(ValidationFailed, match="猫="):
        run_main(validate, monkeypatch, *arguments)
    return root / "out" / "docs"


@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


def open_offline(browser: Browser, path: Path, color_scheme: str = "light") -> tuple[Page, dict[str, list[str]]]:
    """The page at path, opened with every request but file:// ones aborted; what it asked for
    off the machine, the local files it missed, and its script errors."""
    seen: dict[str, list[str]] = {"remote": [], "missing": [], "errors": []}
    page = browser.new_page(color_scheme=color_scheme)

    def route(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            seen["remote"].append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda request: seen["missing"].append(request.url))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def test_no_page_requests_anything_off_the_machine(browser, docs):
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) == 13  # GX's 11, the label distribution, the plain results index
    for path in pages:
        page, seen = open_offline(browser, path)
        assert seen == {"remote": [], "missing": [], "errors": []}, path.relative_to(docs)
        if path.name != "results.html":  # the plain index has no styles by design
            assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith(BOOTSTRAP_FONT), path
        page.close()
    # The dark theme swaps GX's logo for an image of its own.
    page, seen = open_offline(browser, docs / "index.html", color_scheme="dark")
    assert seen == {"remote": [], "missing": [], "errors": []}
    page.close()


def test_index_table_is_filled_and_styled(browser, docs):
    page, _ = open_offline(browser, docs / "index.html")
    rows = page.locator("table.ge-index-page-validation-results-table.table tbody tr")
    assert rows.count() == 5  # one per batch: train/test images and classes, test_vs_train
    assert page.locator(".navbar").evaluate("element => getComputedStyle(element).display") == "flex"
    failed = rows.filter(has=page.locator("i.fa-times")).locator("td:nth-child(4)").all_inner_texts()
    assert sorted(failed) == ["test_vs_train", "train_classes"]  # its share, and so train's distance from test's
    page.evaluate("document.fonts.ready.then(() => true)")
    assert page.evaluate("[...document.fonts].some(f => f.family.includes('Font Awesome') && f.status === 'loaded')")
    assert page.get_by_role("link", name="Label distribution").count() == 1
    page.close()


def test_label_distribution_chart_draws_every_bar_and_the_band(browser, docs):
    page, _ = open_offline(browser, docs / "label_distribution.html")
    page.wait_for_selector("#chart svg .mark-rect")
    bands, bars = (page.locator(f"#chart svg .mark-rect >> nth={i}").locator("path") for i in (0, 1))
    assert bands.count() == 1 and bars.count() == len(NAMES) * 2
    outlined = bars.evaluate_all("paths => paths.filter(p => p.getAttribute('stroke') === '#dc3545').length")
    assert outlined == 1  # 猫 in train
    assert page.locator("#chart svg").inner_html().count("猫") >= 1
    page.close()


def test_gx_chart_renders_with_the_local_vega(browser, docs):
    (path,) = (docs / "validations" / "test_vs_train").rglob("*.html")
    page, _ = open_offline(browser, path)
    page.wait_for_selector(".vega-embed canvas, .vega-embed svg")
    assert page.locator(".vega-embed canvas, .vega-embed svg").count() >= 1
    page.close()
