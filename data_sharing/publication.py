"""Linkage quality as it may be published (issue 20 item 11): the SPEC's small-cell rule on its counts.

The release row (``releases.linkage_quality``, public tier) and the linkage asset's Dagster metadata
(shown by the read-only UI) carry linkage quality; neither may show a count of one or two persons. Counts
between 1 and k-1 (``k``: the MOUs' ``min_cell_size``) are published as ``"<k"``; zero is not small.
"""

from __future__ import annotations

from typing import Any

SUPPRESSION_NOTE = "counts between 1 and k-1 are shown as '<k'; link rates resting on such a count are null"


def suppressed_count(value: int, k: int) -> int | str:
    """A count as published: itself when 0 or at least ``k`` (SPEC's small-cell rule), else ``"<k"``."""
    return f"<{k}" if 0 < value < k else value


def _link_cell(cell: dict[str, Any], k: int) -> dict[str, Any]:
    """persons/linked/rate of one agency pair: the SPEC's primary rule with persons as the denominator."""
    n, linked = cell.get("persons"), cell.get("linked")
    out = dict(cell)
    if not isinstance(n, int) or not isinstance(linked, int):
        return {key: _publishable(v, k) for key, v in cell.items()}
    small_n = 0 < n < k
    small_part = 0 < linked < k or 0 < n - linked < k
    out["persons"] = suppressed_count(n, k)
    if small_n or small_part:
        # a small linked count shows as "<k"; a small unlinked count withholds linked (it would give it back)
        out["linked"] = suppressed_count(linked, k) if small_n or 0 < linked < k else None
        out["rate"] = None
        out["suppressed"] = "small_denominator" if small_n else "small_count"
    return out


def _publishable(value: Any, k: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return suppressed_count(value, k)
    if isinstance(value, dict):
        if "persons" in value and "linked" in value:
            return _link_cell(value, k)
        return {key: _publishable(v, k) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_publishable(v, k) for v in value]
    return value


def publishable_quality(quality: Any, k: int) -> Any:
    """Linkage quality (any nesting of dicts, lists, counts and rates) as it may be published at
    disclosure threshold ``k``: every count between 1 and k-1 becomes ``"<k"``; an agency pair's
    ``linked`` and ``rate`` are withheld (``rate: null`` with ``suppressed``: the reason) when its
    persons, linked or unlinked count is small, so no rate gives a small count back. Zero stays 0.
    Where anything was withheld, a ``suppression`` entry says ``k`` and the rule."""
    if k < 1:
        raise ValueError("the disclosure threshold k must be at least 1")
    out = _publishable(quality, k)
    if isinstance(out, dict) and out != quality:  # say so wherever something was withheld
        out["suppression"] = {"k": k, "rule": SUPPRESSION_NOTE}
    return out
