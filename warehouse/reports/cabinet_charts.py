"""The cabinet report's charts: Altair (Vega-Lite) specifications rendered to inline SVG at build time.

Each chart is drawn by ``vl-convert-python`` (Vega's own renderer, embedded) into an SVG string that is
pasted into the page: the page needs no JavaScript and fetches nothing. Every SVG gets ``role="img"``, a
``<title>`` and a ``<desc>`` (the text alternative, which lists every value drawn), and the page puts a
data table under it. One colour for data (Okabe-Ito blue), one for the city reference (Okabe-Ito
vermillion, dashed, so it is told apart without colour), grey hatching-like bands for suppressed cells;
text stays near-black for contrast (WCAG 2.1 AA).

A suppressed value is never drawn as zero: in a trend it is a gap in the line with a marked band and the
word "suppressed"; in a bar chart it is a full-width pale band labelled with its reason.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert as vlc

BLUE = "#0072B2"  # Okabe-Ito blue: 5.0:1 on white
VERMILLION = "#B34700"  # Okabe-Ito vermillion darkened to 5.1:1 on white (the city reference line)
INK = "#1a1a1a"
MUTED = "#595959"  # 7.0:1 on white
BAND = "#e6e6e6"
FONT = "'Liberation Sans', Arial, Helvetica, sans-serif"  # metric-compatible: text measured at build time fits when shown

_ids = itertools.count(1)


def reset_ids() -> None:
    """Number the charts of a page from 1 again (ids unique per page, files identical on every build)."""
    global _ids
    _ids = itertools.count(1)


@dataclass(frozen=True)
class Point:
    """One value of a chart: its label, its rate (None when suppressed) and, if suppressed, the reason."""

    label: str
    rate: float | None
    reason: str | None = None  # plain words, e.g. "small count"


def pct(rate: float | None, digits: int = 1) -> str:
    return "suppressed" if rate is None else f"{rate * 100:.{digits}f}%"


def points_gap(rate: float | None, reference: float | None) -> str:
    """Difference of two published rates, in percentage points (never from counts)."""
    if rate is None or reference is None:
        return ""
    d = (rate - reference) * 100
    sign = "+" if d > 0.05 else ("\u2212" if d < -0.05 else "\u00b1")
    return f"{sign}{abs(d):.1f} pts"


LABELS = "__labels__"  # placeholder for a chart's category order, filled per chart
TOP = 0.987654321  # placeholder for a chart's axis maximum, filled per chart


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return chart.configure(font=FONT, background="white").configure_view(stroke=None).configure_axis(
        labelColor=INK, titleColor=INK, domainColor=MUTED, tickColor=MUTED, gridColor="#d9d9d9",
        labelFontSize=12, titleFontSize=12, titleFontWeight="normal", labelOverlap=False,
    )


def _data(name: str) -> alt.Data:
    return alt.Data(name=name)


@functools.cache
def _template(kind: str) -> str:
    """The Vega-Lite JSON of one kind of chart, built and validated by Altair once; each chart fills in its
    data (named datasets), category order and axis maximum (Altair's per-chart validation would cost more
    than drawing)."""
    chart = {"trend": _trend_spec, "spark": _spark_spec, "bars": _bars_spec}[kind]()
    return json.dumps(_config(chart).to_dict(validate=True))


def _fill(node: Any, labels: list[str], top: float) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, labels, top) for k, v in node.items()}
    if isinstance(node, list):
        return list(labels) if node == [LABELS] else [_fill(v, labels, top) for v in node]
    if isinstance(node, float) and node == TOP:
        return top
    return node


def render(kind: str, datasets: dict[str, list[dict[str, Any]]], labels: list[str], top: float, title: str, description: str) -> str:
    spec = _fill(json.loads(_template(kind)), labels, top)
    spec["datasets"] = datasets
    return _accessible(vlc.vegalite_to_svg(spec), title, description)


def _accessible(svg: str, title: str, description: str) -> str:
    """role img, <title> and <desc> (the text alternative) on the SVG root."""
    n = next(_ids)
    tid, did = f"chart{n}-title", f"chart{n}-desc"
    head_end = svg.index(">") + 1
    head = re.sub(r'\sclass="marks"', ' class="chart"', svg[:head_end], count=1)
    head = re.sub(r'\sxmlns(:xlink)?="[^"]*"', "", head)  # inline SVG in HTML needs no namespace declarations
    head = head[:-1] + f' role="img" aria-labelledby="{tid} {did}" focusable="false">'
    inner = f'<title id="{tid}">{html.escape(title)}</title><desc id="{did}">{html.escape(description)}</desc>'
    return head + inner + svg[head_end:]


def _trend_spec() -> alt.LayerChart | alt.FacetChart:
    x = alt.X("label:O", title=None, scale=alt.Scale(domain=[LABELS]), axis=alt.Axis(labelAngle=0))
    y = alt.Y("rate:Q", title="Rate", scale=alt.Scale(domain=[0, TOP]), axis=alt.Axis(format=".0%", tickCount=5))
    pts, gaps = alt.Chart(_data("points")), alt.Chart(_data("gaps"))
    return alt.layer(
        gaps.mark_bar(color=BAND).encode(x=x, y=alt.datum(0), y2=alt.datum(TOP)),
        gaps.mark_text(angle=270, color=MUTED, fontSize=12, fontStyle="italic").encode(x=x, y=alt.datum(TOP / 2), text="text:N"),
        pts.mark_line(color=BLUE, strokeWidth=2.5).encode(x=x, y=y, detail="segment:N"),
        pts.mark_point(color=BLUE, filled=True, size=60, opacity=1).encode(x=x, y=y),
        pts.mark_text(dy=-12, color=INK, fontSize=12).encode(x=x, y=y, text="text:N"),
    ).properties(width=400, height=200)


def _spark_spec() -> alt.LayerChart | alt.FacetChart:
    x = alt.X("label:O", axis=None, scale=alt.Scale(domain=[LABELS]))
    y = alt.Y("rate:Q", axis=None, scale=alt.Scale(zero=False, padding=4))
    pts = alt.Chart(_data("points"))
    return alt.layer(
        alt.Chart(_data("gaps")).mark_tick(color=MUTED, thickness=2, size=10).encode(x=x),
        pts.mark_line(color=BLUE, strokeWidth=2).encode(x=x, y=y, detail="segment:N"),
        pts.mark_point(color=BLUE, filled=True, size=22, opacity=1).encode(x=x, y=y),
    ).properties(width=130, height=34)


def _bars_spec() -> alt.LayerChart | alt.FacetChart:
    y = alt.Y("label:N", title=None, scale=alt.Scale(domain=[LABELS]), axis=alt.Axis(labelLimit=125, labelFontSize=12))
    x = alt.X("rate:Q", title=None, scale=alt.Scale(domain=[0, TOP]), axis=alt.Axis(format=".0%", tickCount=4))
    bars, sup = alt.Chart(_data("points")), alt.Chart(_data("gaps"))
    return alt.layer(
        sup.mark_bar(color=BAND, height={"band": 0.7}).encode(y=y, x=alt.datum(0), x2=alt.datum(TOP)),
        sup.mark_text(align="left", dx=4, color=MUTED, fontSize=12, fontStyle="italic").encode(y=y, x=alt.datum(0), text="text:N"),
        bars.mark_bar(color=BLUE, height={"band": 0.7}).encode(y=y, x=x),
        bars.mark_text(align="left", dx=8, color=INK, fontSize=12).encode(y=y, x=alt.datum(TOP), text="text:N"),
        alt.Chart(_data("city")).mark_rule(color=VERMILLION, strokeDash=[5, 3], strokeWidth=2).encode(x="rate:Q"),
    ).properties(width=180, height=alt.Step(24), padding={"left": 5, "top": 5, "bottom": 5, "right": 112})


def _segments(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Published points with a segment number that changes at every suppressed point (a gap in the line)."""
    rows, seg = [], 0
    for p in points:
        if p.rate is None:
            seg += 1
            continue
        rows.append({"label": p.label, "rate": p.rate, "segment": seg, "text": pct(p.rate)})
    return rows


def _gaps(points: Sequence[Point]) -> list[dict[str, Any]]:
    return [{"label": p.label, "text": "suppressed"} for p in points if p.rate is None]


def _describe(points: Sequence[Point]) -> str:
    return "; ".join(f"{p.label}: {pct(p.rate)}" + (f" ({p.reason})" if p.rate is None and p.reason else "") for p in points)


def _domain_max(rates: Sequence[float | None]) -> float:
    top = max((r for r in rates if r is not None), default=0.0)
    return 1.0 if top > 0.75 else min(1.0, max(0.1, round(top * 1.25 + 0.05, 1)))


def trend_chart(points: Sequence[Point], title: str) -> str:
    """City-wide rate over every published period: a line with labelled points, gaps where suppressed."""
    seg = _segments(points)
    top = _domain_max([r["rate"] for r in seg])
    return render("trend", {"points": seg, "gaps": _gaps(points)}, [p.label for p in points], top, title,
                  "Rate by period. " + _describe(points) + ".")


def sparkline(points: Sequence[Point], title: str) -> str:
    """A small trend without axes for the overview; the text alternative lists every value."""
    return render("spark", {"points": _segments(points), "gaps": _gaps(points)}, [p.label for p in points], 1.0, title,
                  "Trend: " + _describe(points) + ".")


def bars_chart(points: Sequence[Point], city: float | None, title: str) -> str:
    """Each group's rate as a bar, the city rate as a dashed line, each bar labelled with its gap to it;
    a suppressed group is a pale full-width band saying so (never a zero-length bar)."""
    published = [p for p in points if p.rate is not None]
    top = _domain_max([p.rate for p in published] + ([city] if city is not None else []))
    bars = [{"label": p.label, "rate": p.rate,
             "text": f"{pct(p.rate)} ({points_gap(p.rate, city)})" if city is not None else pct(p.rate)} for p in published]
    sup = [{"label": p.label, "text": f"suppressed: {p.reason}" if p.reason else "suppressed"} for p in points if p.rate is None]
    ref = [] if city is None else [{"rate": city}]
    city_text = f"City-wide rate {pct(city)}, the dashed line. " if city is not None else ""
    desc = city_text + "; ".join(
        f"{p.label}: {pct(p.rate)}" + (f", {points_gap(p.rate, city)} from the city" if p.rate is not None and city is not None else "")
        + (f" ({p.reason})" if p.rate is None and p.reason else "") for p in points
    )
    return render("bars", {"points": bars, "gaps": sup, "city": ref}, [p.label for p in points], top, title, desc + ".")


__all__ = ["BLUE", "VERMILLION", "Point", "bars_chart", "pct", "points_gap", "render", "reset_ids", "sparkline", "trend_chart"]
