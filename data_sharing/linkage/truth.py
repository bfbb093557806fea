"""Ground truth for measuring linkage: a generated city's drop files and truth folder as linkage inputs.

For tests and benchmarks only (the pipeline never has a truth). :func:`encode_city` reads
``<city>/drop/<agency>/<extract>_*.csv`` of the three person extracts, protects them with
:func:`data_sharing.protect.protect_raw` (as the privacy stage does) and maps every ``source_key`` to its
true person through ``<city>/truth/identities.csv`` (source keys computed with
:func:`data_sharing.pseudonyms.pseudonymize_ids`). Works for any generator that writes the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_sharing.keys import KeySet
from data_sharing.protect import protect_raw
from data_sharing.pseudonyms import pseudonymize_ids



def person_extracts() -> dict[str, tuple[str, str, str]]:
    """agency -> (person extract, id column, id_type), read from the reference partnership's contracts: each
    agency's extract that describes people and its first id column (the one its source key comes from)."""
    from schemas.contracts import load_extract_contracts

    out: dict[str, tuple[str, str, str]] = {}
    for (agency, extract), contract in load_extract_contracts().items():
        if contract.describes_people and contract.id_columns and agency not in out:
            column, id_type = next(iter(contract.id_columns.items()))
            out[agency] = (extract, column, id_type)
    return out


#: agency -> (person extract, id column, id_type)
PERSON_EXTRACTS: dict[str, tuple[str, str, str]] = person_extracts()
ATTRIBUTE_COLUMNS = ("sex", "race_ethnicity", "grade_level", "birth_date_year_month")


@dataclass
class CityInputs:
    encodings: dict[str, pd.DataFrame]
    attributes: dict[str, pd.DataFrame]
    truth: pd.DataFrame  # source_key, agency, person_id
    persons: pd.DataFrame | None = None  # truth/persons.csv when present
    raw: dict[str, pd.DataFrame] = field(default_factory=dict)  # the raw extracts (tests: leak checks)


def read_extract(path: Path) -> pd.DataFrame:
    """A drop CSV as strings, blanks as missing."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8").replace("", None)


def latest_file(city: Path, agency: str, extract: str) -> Path:
    files = sorted((Path(city) / "drop" / agency).glob(f"{extract}_*.csv"))
    files = [f for f in files if not f.name.endswith(".tokens.csv")]
    if not files:
        raise FileNotFoundError(f"{city}/drop/{agency}: no {extract}_*.csv")
    return files[-1]


def protect_frames(frames: dict[str, pd.DataFrame], keyset: KeySet) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(encodings, attributes) per agency from raw person-extract frames."""
    from schemas.contracts import load_extract_contracts

    contracts = load_extract_contracts()
    enc: dict[str, pd.DataFrame] = {}
    attrs: dict[str, pd.DataFrame] = {}
    for agency, frame in frames.items():
        extract = PERSON_EXTRACTS[agency][0]
        p = protect_raw(frame, contracts[(agency, extract)], keyset)
        assert p.encodings is not None
        enc[agency] = p.encodings
        cols = ["source_key", "row_number", *[c for c in ATTRIBUTE_COLUMNS if c in p.staging.columns]]
        attrs[agency] = p.staging[cols]
    return enc, attrs


def truth_source_keys(identities: pd.DataFrame, keyset: KeySet) -> pd.DataFrame:
    """source_key, agency, person_id of every person-extract id in an identities table."""
    parts = []
    for agency, (_, _, id_type) in PERSON_EXTRACTS.items():
        sel = identities[(identities.agency == agency) & (identities.id_type == id_type)]
        if sel.empty:
            continue
        keys = pseudonymize_ids(sel.source_id.to_numpy(), keyset, agency=agency, id_type=id_type)
        parts.append(pd.DataFrame({"source_key": keys["source_key"].astype(str).to_numpy(), "agency": agency,
                                   "person_id": sel.person_id.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def encode_city(city: Path | str, keyset: KeySet, *, keep_raw: bool = False) -> CityInputs:
    city = Path(city)
    frames = {a: read_extract(latest_file(city, a, ex)) for a, (ex, _, _) in PERSON_EXTRACTS.items()}
    enc, attrs = protect_frames(frames, keyset)
    identities = pd.read_csv(city / "truth" / "identities.csv", dtype=str, keep_default_na=False)
    truth = truth_source_keys(identities, keyset)
    persons_path = city / "truth" / "persons.csv"
    persons = pd.read_csv(persons_path, dtype=str, keep_default_na=False).replace("", None) if persons_path.exists() else None
    return CityInputs(enc, attrs, truth, persons, frames if keep_raw else {})
