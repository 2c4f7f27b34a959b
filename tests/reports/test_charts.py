"""The server-drawn SVG charts: well-formed XML, one bar per value, named for screen readers."""

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from closeout.reports.charts import COLOURS, bar_chart, column_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, parsed to check it)


def test_bar_chart_has_a_bar_per_value_with_its_number() -> None:
    root = _parse(
        bar_chart(
            title="Cycle <time> & more",
            labels=["采购订单", "B"],
            series=[("Median", [Decimal("10.5"), 3]), ("P90", [27.6, None])],
        )
    )
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == "Cycle <time> & more"
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
    assert len(bars) == 4
    titles = [b.findtext(f"{SVG}title") for b in bars]
    assert titles == [
        "采购订单 · Median: 10.5",
        "采购订单 · P90: 27.6",
        "B · Median: 3",
        "B · P90: –",
    ]
    widths = [float(b.get("width") or 0) for b in bars]
    assert widths[1] > widths[0] > widths[2] > widths[3] == 0
    assert {b.get("fill") for b in bars} == set(COLOURS[:2])
    desc = root.findtext(f"{SVG}desc") or ""
    assert "采购订单: Median 10.5, P90 27.6" in desc
    labelled = (root.get("aria-labelledby") or "").split()
    ids = {el.get("id") for el in root}
    assert set(labelled) <= ids


def test_column_chart_is_a_histogram() -> None:
    root = _parse(column_chart(title="Days", labels=["<1", "1-7", "7-30"], values=[0, 3, 1]))
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
    heights = [float(b.get("height") or 0) for b in bars]
    assert heights[0] == 0
    assert heights[1] == pytest.approx(3 * heights[2], abs=0.2)
    assert heights[2] > 0
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "1-7" in texts and "3" in texts


def test_an_empty_chart_is_still_valid() -> None:
    root = _parse(bar_chart(title="nothing", labels=[], series=[("x", [])]))
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
