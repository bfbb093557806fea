"""Data-quality scorecard: per agency and extract, over time, the share of rows accepted and the problems
that keep coming back. Built from the per-file validation summaries (counts and rule names only)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPORT = Path("reports") / "data_quality_scorecard.json"
"""Where the scorecard is written, under the hub's home."""

SCORECARD_COLUMNS = {
    "agency": "string", "extract": "string", "files": "integer", "rows_in": "integer", "accepted": "integer",
    "quarantined": "integer", "refused": "integer", "share_accepted": "number", "history": "json", "top_problems": "json",
}
"""One scorecard row per agency and extract (the keys :func:`build_scorecard` fills)."""


def build_scorecard(validation_root: Path) -> dict:
    """{agency: {extract: {files, rows_in, accepted, quarantined, refused, share_accepted, history, top_problems}}}"""
    out: dict = defaultdict(dict)
    for path in sorted(validation_root.glob("*/*/*.json")):
        try:
            item = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        agency, extract = str(item.get("agency")), str(item.get("extract"))
        card = out[agency].setdefault(
            extract, {"files": 0, "rows_in": 0, "accepted": 0, "quarantined": 0, "refused": 0, "history": [], "_problems": Counter()}
        )
        counts = item.get("counts", {})
        rows_in = int(counts.get("rows_in", 0))
        refused = rows_in if item.get("status") == "refused" else 0
        accepted = 0 if refused else int(counts.get("accepted", 0))
        quarantined = 0 if refused else int(counts.get("quarantined", 0))
        card["files"] += 1
        card["rows_in"] += rows_in
        card["accepted"] += accepted
        card["quarantined"] += quarantined
        card["refused"] += refused
        card["history"].append(
            {"as_of_date": item.get("as_of_date"), "file": item.get("file"), "rows_in": rows_in,
             "share_accepted": round(accepted / rows_in, 4) if rows_in else None, "status": item.get("status")}
        )
        for key, n in item.get("problems", {}).items():
            rule, column, outcome = (key.split("|") + ["", ""])[:3]
            if outcome != "warn" or rule != "duplicate_row":
                card["_problems"][f"{rule} on {column or '(row)'} ({outcome})"] += int(n)
    for agency in out.values():
        for card in agency.values():
            card["share_accepted"] = round(card["accepted"] / card["rows_in"], 4) if card["rows_in"] else None
            card["top_problems"] = card.pop("_problems").most_common(5)
            card["history"].sort(key=lambda h: (h["as_of_date"] or "", h["file"] or ""))
    return dict(out)


@dataclass(frozen=True)
class Scorecard:
    """{agency: {extract: card}} and the JSON file it was written to."""

    cards: Mapping[str, Mapping[str, dict]]
    report: Path

    @property
    def rows(self) -> int:
        return sum(len(x) for x in self.cards.values())


def score_data_quality(linkage: Path, home: Path) -> Scorecard:
    """Build the scorecard from ``<linkage>/validation`` and write it to ``<home>/reports/``."""
    card = build_scorecard(linkage / "validation")
    report = home / REPORT
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    return Scorecard(card, report)
