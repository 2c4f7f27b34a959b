"""Charts drawn on the server as inline SVG (no JavaScript): horizontal bar charts with one or
more series, and column charts for distributions. Every chart names itself (<title>, <desc>,
aria-labelledby) and every bar carries its value in a <title>, so screen readers and tooltips
get the numbers; the page also shows each chart's table."""

import itertools
from collections.abc import Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito derived colours, each at least 3:1 against the white background (WCAG 1.4.11).
COLOURS = ("#0072B2", "#B45309", "#6D28D9", "#047857")
TEXT = "#1F2937"
GRID = "#9CA3AF"
Number = int | float | Decimal | None

_ids = itertools.count(1)


def _num(value: Number) -> float:
    return float(value) if value is not None else 0.0


def _fmt(value: Number) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT}" '
        f'text-anchor="{anchor}">{escape(content)}</text>'
    )


def _frame(width: int, height: int, title: str, desc: str, body: list[str]) -> SafeString:
    n = next(_ids)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="chart{n}-title chart{n}-desc">',
        f'<title id="chart{n}-title">{escape(title)}</title>',
        f'<desc id="chart{n}-desc">{escape(desc)}</desc>',
        *body,
        "</svg>",
    ]
    # Every piece of text above went through escape(); numbers are formatted here.
    return mark_safe("".join(parts))  # noqa: S308


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    body = []
    for i, name in enumerate(names):
        colour = COLOURS[i % len(COLOURS)]
        ly = y + i * 16
        body.append(f'<rect x="{x:.1f}" y="{ly - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(x + 16, ly, name))
    return body


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    width: int = 640,
) -> SafeString:
    """Horizontal bars: one row per label, one bar per series in it."""
    label_width, value_width, bar_height, gap = 170, 70, 14, 10
    plot_width = width - label_width - value_width
    group_height = bar_height * len(series) + gap
    legend_height = 16 * len(series) + 8 if len(series) > 1 else 0
    height = max(40, group_height * len(labels) + legend_height + 10)
    top = legend_height + 5
    highest = max((_num(v) for _name, values in series for v in values), default=0.0) or 1.0
    body = _legend([name for name, _values in series], label_width, 14) if legend_height else []
    body.append(
        f'<line x1="{label_width}" y1="{top}" x2="{label_width}" '
        f'y2="{height - 5}" stroke="{GRID}"/>'
    )
    if not labels:
        body.append(_text(width / 2, height / 2 + 4, "–", anchor="middle"))
    for row, label in enumerate(labels):
        y0 = top + row * group_height
        body.append(_text(label_width - 6, y0 + group_height / 2, label, anchor="end"))
        for i, (name, values) in enumerate(series):
            value = values[row]
            length = plot_width * _num(value) / highest
            y = y0 + i * bar_height
            colour = COLOURS[i % len(COLOURS)]
            body.append(
                f'<rect class="chart-bar" x="{label_width}" y="{y:.1f}" width="{length:.1f}" '
                f'height="{bar_height - 2}" fill="{colour}">'
                f"<title>{escape(f'{label} · {name}: {_fmt(value)}')}</title></rect>"
            )
            body.append(_text(label_width + length + 4, y + bar_height - 4, _fmt(value), size=11))
    desc = "; ".join(
        f"{label}: " + ", ".join(f"{name} {_fmt(values[i])}" for name, values in series)
        for i, label in enumerate(labels)
    )
    return _frame(width, height, title, desc, body)


def column_chart(
    *, title: str, labels: Sequence[str], values: Sequence[Number], width: int = 640
) -> SafeString:
    """Vertical columns over ordered categories: a histogram."""
    height, bottom, top, left = 220, 30, 20, 10
    plot_height = height - bottom - top
    slot = (width - 2 * left) / max(len(labels), 1)
    highest = max((_num(v) for v in values), default=0.0) or 1.0
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - left}" '
        f'y2="{height - bottom}" stroke="{GRID}"/>'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_height * _num(value) / highest
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        body.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}">'
            f"<title>{escape(f'{label}: {_fmt(value)}')}</title></rect>"
        )
        centre = x + slot * 0.35
        body.append(_text(centre, y - 4, _fmt(value), anchor="middle", size=11))
        body.append(_text(centre, height - bottom + 16, label, anchor="middle"))
    desc = "; ".join(f"{label}: {_fmt(v)}" for label, v in zip(labels, values, strict=True))
    return _frame(width, height, title, desc, body)


__all__ = ["COLOURS", "bar_chart", "column_chart"]
