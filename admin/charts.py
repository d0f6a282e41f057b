"""Small server-side SVG charts: no JavaScript, nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")


# Rough advance widths of a sans-serif face, in ems: enough to keep labels inside the chart
# (leaning wide, so an estimate errs towards room to spare, never towards a cut-off label).
_NARROW = set("iljtfI.,:;'|!()[] ")
_WIDE = set("mwMWOQGDHNU@%")


def text_width(text: str, size: float) -> float:
    """About how wide ``text`` is drawn at font-size ``size``, in SVG units."""
    ems = sum(0.34 if c in _NARROW else 0.92 if c in _WIDE else
              0.72 if c.isupper() or c.isdigit() else 0.6 for c in text)
    return ems * size


def fit_label(text: str, size: float, room: float) -> str:
    """``text``, shortened with an ellipsis until it fits in ``room``."""
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _label(x: float, y: float, text: str, size: float, room: float,
           anchor: str = "start") -> str:
    """A text label that fits in ``room``; a shortened one keeps its full text as a tooltip."""
    shown = fit_label(text, size, room)
    tip = f"<title>{escape(text)}</title>" if shown != text else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
            f"{tip}{escape(shown)}</text>")


def _legend(names: Sequence[str], x0: float, y0: float, width: int) -> tuple[list[str], float]:
    """Legend swatches, wrapped onto more rows rather than run past the right edge;
    returns the SVG and the height it takes."""
    body, x, y = [], x0, y0
    for i, name in enumerate(names):
        item = 14 + text_width(name, 10) + 10
        if x > x0 and x + item > width:
            x, y = x0, y + 16
        body.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                    + _label(x + 14, y + 9, name, 10, width - x - 14))
        x += item
    return body, (y - y0 + 16) if names else 0


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="loket-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]],
                 width: int = 720, height: int = 220) -> Markup:
    """Vertical bars per label, one stacked segment per series, with a legend."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max(totals + [1])
    bottom, top = 34, 10
    left = max(36, 8 + text_width(str(peak), 10))
    _, legend_h = _legend(list(series), left, 0, width)  # measured first: it may wrap
    height += max(legend_h - 18, 0)
    plot_h = height - bottom - top - max(legend_h, 18)
    n = max(len(labels), 1)
    slot = (width - left - 6) / n
    body = [f'<line x1="{left:.1f}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" '
            'stroke="#767676" stroke-width="1"/>',
            f'<text x="{left - 4:.1f}" y="{top + 8}" font-size="10" text-anchor="end">{peak}</text>',
            f'<text x="{left - 4:.1f}" y="{top + plot_h}" font-size="10" '
            'text-anchor="end">0</text>']
    every = 1 if n <= 10 else max(n // 6, 1)
    # Each name escaped once, not once per bar (30 days x 7 channels: 400 bars a chart).
    named = [(colour, escape(name), values)
             for colour, (name, values) in zip(PALETTE * 4, series.items(), strict=False)]
    width_text = f"{max(slot - 2, 1):.1f}"
    for i, label in enumerate(labels):
        x = left + i * slot + 1
        y = top + plot_h
        shown = escape(label)
        for colour, name, values in named:
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width_text}" height="{h:.1f}" '
                f'fill="{colour}"><title>{shown} {name}: {value}</title></rect>')
        if i % every == 0:
            centre = x + slot / 2
            # Room on both sides of the centre: the neighbours' labels and the chart's edges.
            room = min(slot * every - 4, 2 * min(centre, width - centre))
            body.append(_label(centre, top + plot_h + 13, label, 9, room, "middle"))
    body += _legend(list(series), left, top + plot_h + 22, width)[0]
    if not series:
        body.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" font-size="12" '
                    'text-anchor="middle">no tickets</text>')
    return _svg(width, height, body, title)


def horizontal_bars(title: str, rows: Sequence[tuple[str, Sequence[int]]],
                    series_names: Sequence[str] = ("",), width: int = 480) -> Markup:
    """One row per label, one bar per series (e.g. this week vs last week).

    Each label stands on its own line above its bars, so a long one ("Member › Payments
    and subscriptions › Refunds") has the chart's whole width before it is shortened.
    """
    bar_h, gap, label_h, left = 12, 8, 15, 4
    per_row = label_h + bar_h * len(series_names) + gap
    peak = max([v for _, values in rows for v in values] + [1])
    room = width - left - 8 - text_width(str(peak), 10)  # the longest bar, then its value
    body = []
    for r, (label, values) in enumerate(rows):
        y0 = r * per_row + 4
        body.append(_label(left, y0 + 11, label, 11, width - left - 4))
        for s, value in enumerate(values):
            w = room * value / peak
            y = y0 + label_h + s * bar_h
            body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                        f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} '
                        f'{escape(series_names[s])}: {value}</title></rect>'
                        f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" '
                        f'font-size="10">{value}</text>')
    height = max(len(rows), 1) * per_row + 8
    if not rows:
        body.append('<text x="10" y="16" font-size="12">no tickets</text>')
    if len(series_names) > 1:
        legend, legend_h = _legend(series_names, left, height, width)
        body += legend
        height += legend_h
    return _svg(width, height, body, title)
