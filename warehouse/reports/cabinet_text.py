"""Plain words for the cabinet report: periods, groups, suppression reasons, definitions, linkage quality."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from schemas.indicators import IndicatorDefinition

REASONS = {
    "small_denominator": "small group",
    "small_count": "small count",
    "complementary": "complementary",
}
"""Short names of the suppression reasons (shown in charts)."""

DIMENSIONS = {
    "race_ethnicity": "race and ethnicity",
    "sex": "sex",
    "english_learner": "English learner",
    "disability": "disability",
    "econ_disadvantaged": "economic disadvantage",
    "homeless": "homelessness",
    "program": "human-services program",
}
YES_NO = {"Y": "Yes", "N": "No"}
UNKNOWN = "UNKNOWN"


def reason_text(reason: Any, k: int | None) -> str:
    """The reason a cell is withheld, in plain words."""
    kk = f"{k}" if k is not None else "k"
    return {
        "small_denominator": f"small group (fewer than {kk} students)",
        "small_count": f"small count (fewer than {kk} students met, or did not meet, the measure)",
        "complementary": "complementary (withheld so that another withheld cell cannot be worked out)",
    }.get(str(reason), str(reason))


def period_label(kind: str, period: int) -> str:
    """2026 -> "2025-26" (a school year, July 1 to June 30) or "Class of 2026" (a graduation cohort)."""
    if kind == "cohort_year":
        return f"Class of {period}"
    return f"{period - 1}\u2013{str(period)[-2:]}"


def dimension_title(dim: str) -> str:
    return DIMENSIONS.get(dim, dim.replace("_", " "))


def group_label(dim: str, group: str, labels: Mapping[str, Mapping[str, str]]) -> str:
    """A group code in words: the extract contract's meaning, Yes/No, or the code made readable."""
    if group == UNKNOWN:
        return "Not recorded"
    meaning = labels.get(dim, {}).get(group)
    if meaning:
        return meaning
    if group in YES_NO:
        return YES_NO[group]
    if dim == "program" and group == "NONE":
        return "No program"
    return group.replace("_", " ").capitalize() if group.isupper() and len(group) > 4 else group


def _period_rule(d: IndicatorDefinition) -> str:
    if d.period == "cohort_year":
        return ("Graduation cohort: the class of a year is the students who entered grade 9 four school years "
                "before it ended; each is counted once, at their latest school.")
    return ("School year: July 1 to June 30; \u201c2025\u201326\u201d is the year ending June 30, 2026. "
            "A student's group and school come from their latest enrolment that year.")


def definition_html(d: IndicatorDefinition, recorded: Any, k: int | None, k_from_release: bool) -> str:
    """One definition in plain words: what is counted, the period, the version, the disclosure rule."""
    version = recorded.get("version") if isinstance(recorded, Mapping) else None
    v = f"version {d.version}" + ("" if version in (None, d.version) else f" (this release used version {version})")
    if k is not None:
        whose = "as recorded with the release" if k_from_release else "from the data-sharing agreements in force"
        rule = (f"k = {k} ({whose}): a cell is withheld when fewer than {k} students are counted, or when fewer than "
                f"{k} (but at least one) meet or do not meet the measure; further cells are withheld so that no withheld "
                "value can be worked out from the published ones.")
    else:
        rule = "the disclosure threshold k of the agreements of the agencies whose data it uses."
    limits = "".join(f"<li>{escape(x)}</li>" for x in d.limitations)
    return (
        f"<h3>{escape(d.title)}</h3><dl class=\"defs\">"
        f"<dt>What it measures</dt><dd>{escape(d.description)}</dd>"
        f"<dt>Who is counted</dt><dd>{escape(d.denominator)}</dd>"
        f"<dt>Who meets it</dt><dd>{escape(d.numerator)}</dd>"
        f"<dt>Period</dt><dd>{escape(_period_rule(d))}</dd>"
        f"<dt>Groups</dt><dd>{escape(', '.join(dimension_title(x) if x != 'all' else 'all students' for x in d.dimensions))}</dd>"
        f"<dt>Disclosure rule</dt><dd>{escape(rule)}</dd>"
        f"<dt>Definition</dt><dd>{escape(d.id)}, {escape(v)}. Source: {escape(d.source)}</dd>"
        + (f"<dt>Limitations</dt><dd><ul>{limits}</ul></dd>" if limits else "")
        + "</dl>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "not published"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value * 100:.1f}%" if 0 <= value <= 1 else f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k in sorted(value, key=str):
            out += _flatten(value[k], f"{prefix} \u203a {k}" if prefix else str(k))
        return out
    if isinstance(value, list):
        return [(prefix, ", ".join(_fmt(v) for v in value))]
    return [(prefix.replace("_", " "), _fmt(value))]


def _pair(pair: str) -> str:
    for sep in ("->", "~"):
        if sep in pair:
            a, b = pair.split(sep, 1)
            return f"{a} \u2192 {b}" if sep == "->" else f"{a} \u2194 {b}"
    return pair


def linkage_html(quality: Mapping[str, Any]) -> str:
    """The linkage quality published with the release: estimated precision/recall, link rates by agency pair,
    then every other published figure (as published; a figure withheld by the publisher shows so)."""
    if not quality or set(quality) == {"linkage"}:
        return f"<p>Linkage was not run for this release ({escape(_fmt(quality.get('linkage', 'no figures')))}).</p>"
    parts: list[str] = []
    est = [(k, v) for k, v in _flatten(quality) if "precision" in k.lower() or "recall" in k.lower()]
    if est:
        parts.append('<h3>Estimated accuracy</h3><dl class="defs">'
                     + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in est) + "</dl>")
    rates = quality.get("link_rates")
    if not isinstance(rates, Mapping):
        rates = {k: v for k, v in quality.items() if isinstance(v, Mapping) and ("link_rate" in v or "rate" in v)}
    if rates:
        rows = "".join(
            f"<tr><th scope=\"row\">{escape(_pair(str(p)))}</th><td class=\"n\">{escape(_fmt(v.get('persons', v.get('records'))))}</td>"
            f"<td class=\"n\">{escape(_fmt(v.get('linked')))}</td><td class=\"n\">{escape(_fmt(v.get('rate', v.get('link_rate'))))}</td></tr>"
            for p, v in sorted(rates.items()) if isinstance(v, Mapping)
        )
        parts.append('<h3>Link rates by agency pair</h3><div class="scroll"><table><caption>Share of the people with a record '
                     'at the first agency who were linked to a record at the second</caption><thead><tr><th scope="col">Agencies'
                     '</th><th scope="col">People</th><th scope="col">Linked</th><th scope="col">Link rate</th></tr></thead>'
                     f"<tbody>{rows}</tbody></table></div>")
    rest = {k: v for k, v in quality.items() if k != "link_rates" and not (isinstance(v, Mapping) and k in rates)}
    items = [(k, v) for k, v in _flatten(rest) if not ("precision" in k.lower() or "recall" in k.lower())]
    if items:
        parts.append("<details><summary>Every other published linkage figure</summary><dl class=\"defs\">"
                     + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items[:200]) + "</dl></details>")
    return "".join(parts) or "<p>No linkage figure was published with this release.</p>"


__all__ = ["DIMENSIONS", "REASONS", "definition_html", "dimension_title", "group_label", "linkage_html", "period_label", "reason_text"]
