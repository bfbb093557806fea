"""City error profiles for `c2c synth --profile NAME` (data files; see synthetic/profiles.py)."""
