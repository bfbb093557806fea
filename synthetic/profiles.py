"""How carefully each agency records people: the noise profile of its registration process.

The three agencies differ on purpose (a linkage model trained on one kind of noise must cope with the
others): schools keep accents and mostly mixed case; the clinics' legacy system upper-cases a third of
its records and strips accents; human services cannot store accents at all and sees more nicknames.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from synthetic.noise import CityErrors, NoiseProfile

FPS = NoiseProfile(
    nickname=0.015, spelling=0.01, first_typo=0.012, last_typo=0.012, middle_missing=0.08, middle_initial=0.04,
    middle_merged=0.004, compound_variant=0.4, punct_variant=0.3, dm_swap=0.008, day_error=0.003,
    year_error=0.002, sex_error=0.002, upper=0.03, upper_ascii=0.0, ascii=0.12, lower=0.002, extra_space=0.01,
    address_format=0.05, address_typo=0.01, zip_error=0.003,
)
FHD = NoiseProfile(
    nickname=0.04, spelling=0.015, first_typo=0.02, last_typo=0.02, middle_missing=0.0, middle_initial=0.0,
    middle_merged=0.0, compound_variant=0.55, punct_variant=0.45, dm_swap=0.015, day_error=0.005,
    year_error=0.003, sex_error=0.004, upper=0.03, upper_ascii=0.35, ascii=0.05, lower=0.0, extra_space=0.015,
    address_format=0.15, address_typo=0.015, zip_error=0.005,
)
DHS = NoiseProfile(
    nickname=0.03, spelling=0.012, first_typo=0.025, last_typo=0.025, middle_missing=0.0, middle_initial=0.0,
    middle_merged=0.0, compound_variant=0.5, punct_variant=0.5, dm_swap=0.012, day_error=0.004,
    year_error=0.003, sex_error=0.003, upper=0.1, upper_ascii=0.0, ascii=0.6, lower=0.003, extra_space=0.01,
    address_format=0.1, address_typo=0.02, zip_error=0.004,
)


# ---------------------------------------------------------------------------------------------------------
# City error profiles (issue 14): synthetic/error_profiles/<name>.yaml, selected by `c2c synth --profile`
# ---------------------------------------------------------------------------------------------------------

PROFILE_DIR = Path(__file__).resolve().parent / "error_profiles"
_CITY_FIELDS = {f.name for f in dataclasses.fields(CityErrors)} - {"name", "scale"}
_AGENCY_FIELDS = {f.name for f in dataclasses.fields(NoiseProfile)}


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str | Path) -> CityErrors:
    """A city error profile by name (or a YAML path); a clear ValueError for unknown names or fields."""
    path = Path(name) if str(name).endswith((".yaml", ".yml")) else PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown error profile {str(name)!r}: choose one of {', '.join(profile_names())}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    scale = data.get("scale") or {}
    bad = sorted(set(scale) - _AGENCY_FIELDS) + sorted(set(data) - _CITY_FIELDS - {"name", "scale", "description"})
    if bad:
        raise ValueError(f"error profile {path.name}: unknown field(s) {', '.join(bad)}")
    values = {k: float(data[k]) for k in _CITY_FIELDS if k in data}
    for k, v in values.items():
        if v < 0 or (k not in ("reregistration",) and v > 1):
            raise ValueError(f"error profile {path.name}: {k} must be a rate between 0 and 1 (factor >= 0), not {v}")
    return CityErrors(name=str(data.get("name", path.stem)), scale={k: float(v) for k, v in scale.items()}, **values)
