"""HTML for the cabinet report: the page shell, its style sheet, tables and the one small inline script.

Every page is self-contained: styles inline, charts inline SVG, no font, image or script from anywhere.
A Content-Security-Policy allows nothing to be fetched (``default-src 'none'``) and only the sorting
script (by its SHA-256) to run; the tables read the same without it. Colours meet WCAG 2.1 AA contrast
(text 4.5:1 or more); the layout is one column under 700 px (phones).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

CSS = """
:root{--ink:#1a1a1a;--muted:#595959;--line:#c8c8c8;--band:#f2f2f2;--blue:#005a8c;--supp:#6b3d00}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:#fff}
header,main,footer{max-width:1100px;margin:0 auto;padding:0 16px}
header{border-bottom:3px solid var(--blue);padding-top:12px;padding-bottom:8px}
header p{margin:.2em 0;color:var(--muted)}
nav a{margin-right:1em}
a{color:var(--blue)}
a:focus,button:focus{outline:3px solid #b34700;outline-offset:2px}
h1{font-size:1.6rem;margin:.3em 0}
h2{font-size:1.3rem;margin-top:1.6em;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin-top:1.4em}
.facts{display:flex;flex-wrap:wrap;gap:8px 24px;padding:0;margin:12px 0;list-style:none}
.facts li{min-width:10em}
.facts b{display:block;font-size:1.4rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:8px 32px}
figure{margin:12px 0 20px}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{max-width:100%;height:auto;display:block}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:8px 0;font-size:.95rem;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding:4px 0;caption-side:top;max-width:calc(100vw - 40px)}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;white-space:nowrap}
.nw{white-space:nowrap}
.stack{border-bottom:1px solid var(--line);padding-bottom:12px}
.stack figure{margin-bottom:4px}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
.pair{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:8px 32px;align-items:start;border-bottom:1px solid var(--line);margin-bottom:8px}
th[scope=col]{background:var(--band)}
tr.suppressed td{background:repeating-linear-gradient(135deg,#fff,#fff 6px,#f1ece4 6px,#f1ece4 12px)}
.supp{color:var(--supp);font-style:italic}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;color:var(--blue);cursor:pointer;text-decoration:underline}
.note{color:var(--muted);font-size:.95rem}
dl.defs{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}
dl.defs dt{font-weight:600}
dl.defs dd{margin:0}
details{margin:8px 0}
footer{margin-top:32px;border-top:1px solid var(--line);padding-bottom:24px;color:var(--muted);font-size:.9rem}
@media (max-width:700px){
 .grid,.pair{grid-template-columns:1fr}
 dl.defs{grid-template-columns:1fr}
 dl.defs dd{margin-bottom:8px}
 h1{font-size:1.35rem}
 table{font-size:.85rem}
 th,td{padding:4px 6px}
}
@media print{nav,th button{display:none}}
"""

SORT_SCRIPT = (
    "document.querySelectorAll('table.sortable').forEach(function(t){"
    "t.querySelectorAll('th[data-sort]').forEach(function(h,i){"
    "var b=document.createElement('button');b.type='button';b.textContent=h.textContent;h.textContent='';h.appendChild(b);"
    "b.addEventListener('click',function(){"
    "var asc=h.getAttribute('aria-sort')!=='ascending';"
    "t.querySelectorAll('th[data-sort]').forEach(function(o){o.removeAttribute('aria-sort');});"
    "h.setAttribute('aria-sort',asc?'ascending':'descending');"
    "var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),num=h.getAttribute('data-sort')==='num';"
    "rows.sort(function(a,c){var x=a.cells[i].getAttribute('data-v'),y=c.cells[i].getAttribute('data-v');"
    "if(num){x=x===''?null:+x;y=y===''?null:+y;if(x===null)return 1;if(y===null)return -1;return asc?x-y:y-x;}"
    "return asc?x.localeCompare(y):y.localeCompare(x);});"
    "rows.forEach(function(r){body.appendChild(r);});});});});"
)
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class Cell:
    """A table cell: its text (escaped on output), an optional sort value and CSS class."""

    text: str
    sort: str | float | None = None
    cls: str = ""
    raw_html: bool = False
    title: str = ""

    def render(self, tag: str = "td", attrs: str = "") -> str:
        c = f' class="{self.cls}"' if self.cls else ""
        c += f' title="{escape(self.title)}"' if self.title else ""
        v = "" if self.sort is None else f' data-v="{escape(str(self.sort))}"'
        body = self.text if self.raw_html else escape(self.text)
        return f"<{tag}{c}{v}{attrs}>{body}</{tag}>"


def table(
    caption: str,
    headers: Sequence[tuple[str, str | None]],
    rows: Iterable[tuple[Sequence[Cell], dict[str, str]]],
    *,
    sortable: bool = False,
    row_header: bool = True,
) -> str:
    """A data table. ``headers``: (label, sort kind ``num``/``text``/None); ``rows``: (cells, tr attributes).
    The first cell of a row is its header (``th scope=row``) when ``row_header``."""
    head = "".join(
        f'<th scope="col"{f" data-sort={chr(34)}{kind}{chr(34)}" if sortable and kind else ""}>{escape(label)}</th>'
        for label, kind in headers
    )
    body = []
    for cells, attrs in rows:
        a = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
        parts = [c.render("th", ' scope="row"') if (i == 0 and row_header) else c.render() for i, c in enumerate(cells)]
        body.append(f"<tr{a}>{''.join(parts)}</tr>")
    cls = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table{cls}><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def page(title: str, header_html: str, body_html: str, footer_html: str, *, script: bool = False) -> str:
    """A complete HTML document (UTF-8, responsive, CSP that fetches nothing)."""
    js = f"<script>{SORT_SCRIPT}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body><a class="skip" href="#main">Skip to content</a><header>{header_html}</header>'
        f'<main id="main">{body_html}</main><footer>{footer_html}</footer>{js}</body></html>\n'
    )


__all__ = ["CSP", "CSS", "Cell", "SORT_SCRIPT", "page", "table"]
