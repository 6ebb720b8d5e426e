"""The label distribution validate is named for: each class's share of each split, beside the
band of shares the class-share expectation allows (expectations.class_suite), as a table (the
stage writes it as a DVC plot) and as a chart page of the Data Docs.

The page names its scripts by the CDN URLs GX's own pages use, so that datadocs.localize()
serves it from the docs folder like the rest.
"""

import html
import json

import numpy as np
import pandas as pd

from imagepipe.core.sections import ValidateParams
from imagepipe.validation.datadocs import BOOTSTRAP_CSS, VEGA_SCRIPTS
from imagepipe.validation.expectations import class_table

COLUMNS = ["split", "class", "count", "share", "lower", "upper", "within_band"]
PAGE = "label_distribution.html"


def label_distribution(labels: dict[str, np.ndarray], class_names: list[str], checks: ValidateParams) -> pd.DataFrame:
    """One row per split and class: its images, their share of the split's, and the band of
    shares [lower, upper] the class-share expectation allows (min_class_share_ratio and
    max_class_share_ratio times the uniform share 1/num_classes). labels: each split's.

    Shares are of all the split's labels, as the expectation counts them: a label that names no
    class (which the label expectation reports) makes the split's shares sum to less than 1."""
    num_classes = len(class_names)
    low, high = checks.min_class_share_ratio, checks.max_class_share_ratio
    tables = []
    for split, values in labels.items():
        classes = class_table(values, class_names)
        tables.append(
            pd.DataFrame(
                {
                    "split": split,
                    "class": classes["id"],
                    "count": classes["count"],
                    "share": classes["count"] / max(len(values), 1),
                    "lower": low / num_classes,
                    "upper": high / num_classes,
                    # The expectation's own test, on the table it validates.
                    "within_band": classes["share_ratio"].between(low, high),
                }
            )
        )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)


def chart_spec(table: pd.DataFrame) -> dict:
    """A Vega-Lite (v5) chart of a label_distribution table: a bar per class and split, the
    allowed band shaded behind, bars outside it outlined in red."""
    splits = list(dict.fromkeys(table["split"]))
    band = {"lower": float(table["lower"].min()), "upper": float(table["upper"].max())}
    share = {
        "field": "share",
        "type": "quantitative",
        "title": "share of the split's images",
        "axis": {"format": ".0%"},
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 480,
        "layer": [
            {
                "data": {"values": [band]},
                "mark": {"type": "rect", "color": "#28a745", "opacity": 0.2, "tooltip": True},
                "encoding": {"x": {"field": "lower", "type": "quantitative"}, "x2": {"field": "upper"}},
            },
            {
                "data": {"values": table.to_dict("records")},
                "mark": {"type": "bar", "strokeWidth": 2},
                "encoding": {
                    "x": {**share, "stack": None},
                    "y": {"field": "class", "type": "nominal", "sort": None, "title": None},
                    "yOffset": {"field": "split", "sort": splits},
                    # Else the legend's symbols take the red outline (their datum has no within_band).
                    "color": {"field": "split", "type": "nominal", "sort": splits, "legend": {"symbolStrokeWidth": 0}},
                    "stroke": {"condition": {"test": "!datum.within_band", "value": "#dc3545"}, "value": None},
                    "tooltip": [{"field": name} for name in ("split", "class", "count")]
                    + [{"field": "share", "format": ".2%"}],
                },
            },
        ],
    }


def chart_page(table: pd.DataFrame, checks: ValidateParams) -> str:
    """The Data Docs page (label_distribution.html, beside index.html) of the chart and a table
    of the same shares, which reads without JavaScript."""
    num_classes = table["class"].nunique()
    lower, upper = table["lower"].min(), table["upper"].max()
    # Escaped for a <script> element: a class name may hold "</script>".
    spec = json.dumps(chart_spec(table)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    scripts = "".join(f'<script src="{url}"></script>' for url in VEGA_SCRIPTS)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="UTF-8">\n<title>Label distribution</title>\n'
        f'<link rel="stylesheet" href="{BOOTSTRAP_CSS}"/>\n{scripts}\n</head>\n'
        '<body>\n<div class="container pt-4 pb-4">\n<p><a href="index.html">Data Docs home</a></p>\n'
        "<h1>Label distribution</h1>\n"
        f"<p>Each class's share of each split's images. The shaded band is what the class-share "
        f"expectation allows: {checks.min_class_share_ratio:g} to {checks.max_class_share_ratio:g} times the "
        f"uniform share 1/{num_classes}, so {lower:.2%} to {upper:.2%}. A bar outlined in red is outside it.</p>\n"
        f'<div id="chart"></div>\n{share_table(table)}\n'
        f"<script>vegaEmbed('#chart', {spec}, {{actions: false, renderer: 'svg'}}).catch(console.error);</script>\n"
        "</div>\n</body>\n</html>\n"
    )


def share_table(table: pd.DataFrame) -> str:
    """An HTML table: a row per class, a column per split, out-of-band shares marked."""
    splits = list(dict.fromkeys(table["split"]))
    head = "".join(f"<th>{html.escape(split)}</th>" for split in splits)
    rows = []
    for name, shares in table.groupby("class", sort=False):
        cells = "".join(
            f'<td class="{"" if row["within_band"] else "table-danger"}">{row["share"]:.2%} ({row["count"]})</td>'
            for _, row in shares.set_index("split").reindex(splits).iterrows()
        )
        rows.append(f"<tr><th>{html.escape(str(name))}</th>{cells}</tr>")
    return (
        f'<table class="table table-sm"><thead><tr><th>class</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
