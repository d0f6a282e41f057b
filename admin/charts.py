"""Small server-side SVG charts: no JavaScript, nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="loket-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]],
                 width: int = 720, height: int = 220) -> Markup:
    """Vertical bars per label, one stacked segment per series, with a legend."""
    left, bottom, top, legend_h = 36, 34, 10, 18
    plot_h = height - bottom - top - legend_h
    n = max(len(labels), 1)
    slot = (width - left - 6) / n
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max(totals + [1])
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" '
            'stroke="#999" stroke-width="1"/>',
            f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{peak}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>']
    for i, label in enumerate(labels):
        x = left + i * slot + 1
        y = top + plot_h
        for colour, (name, values) in zip(PALETTE * 4, series.items(), strict=False):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)} {escape(name)}: {value}</title></rect>')
        if n <= 10 or i % max(n // 6, 1) == 0:
            body.append(f'<text x="{x + slot / 2:.1f}" y="{top + plot_h + 13}" font-size="9" '
                        f'text-anchor="middle">{escape(label)}</text>')
    lx = left
    for colour, name in zip(PALETTE * 4, series, strict=False):
        body.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{lx + 14}" y="{height - 3}" font-size="10">{escape(name)}</text>')
        lx += 20 + 7 * len(name)
    if not series:
        body.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" font-size="12" '
                    'text-anchor="middle">no tickets</text>')
    return _svg(width, height, body, title)


def horizontal_bars(title: str, rows: Sequence[tuple[str, Sequence[int]]],
                    series_names: Sequence[str] = ("",), width: int = 480) -> Markup:
    """One row per label, one bar per series (e.g. this week vs last week)."""
    bar_h, gap, left = 12, 8, 150
    per_row = bar_h * len(series_names) + gap
    height = max(len(rows), 1) * per_row + 24
    peak = max([v for _, values in rows for v in values] + [1])
    body = []
    for r, (label, values) in enumerate(rows):
        y0 = r * per_row + 4
        body.append(f'<text x="{left - 6}" y="{y0 + bar_h}" font-size="11" '
                    f'text-anchor="end">{escape(label[:24])}</text>')
        for s, value in enumerate(values):
            w = (width - left - 40) * value / peak
            y = y0 + s * bar_h
            body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                        f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} '
                        f'{escape(series_names[s])}: {value}</title></rect>'
                        f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" '
                        f'font-size="10">{value}</text>')
    if not rows:
        body.append('<text x="10" y="16" font-size="12">no tickets</text>')
    if len(series_names) > 1:
        lx = left
        for s, name in enumerate(series_names):
            body.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" '
                        f'fill="{PALETTE[s]}"/><text x="{lx + 14}" y="{height - 3}" '
                        f'font-size="10">{escape(name)}</text>')
            lx += 24 + 7 * len(name)
    return _svg(width, height, body, title)
