"""Each stage's orchestration in plain Python (no Dagster): receive a drop, validate a landed file, protect
it, destroy expired raw files, score data quality. Stages take plain objects (manifest store, partnership,
key set, paths) and return small frozen result types that the assets, the runner and the CLI all read.
"""


class StageError(Exception):
    """A stage cannot go on with this file (a state problem, not a passing one; a re-run gives the same
    answer). The message names the file by its drop name, never a value from inside it."""
