"""Validation of an extract file against its contract: accepted rows, quarantined rows, or a refused file.

The checks are the Great Expectations suite that :func:`schemas.gx_suite.build_suite` builds from the
contract. Two engines evaluate that same suite:

* ``engine="masks"`` (the default): each expectation configuration of the suite is translated into a
  vectorised row mask over Arrow arrays (:class:`engines._MaskEngine`). It gives GX's own numbers (element,
  missing and unexpected counts, success) and the failing rows, at about a second per million rows.
* ``engine="gx"``: GX itself validates a pandas view of the file (``COMPLETE`` result format, kept in
  this package). Exact but slow (tens of seconds per million rows); the tests run both engines on the
  same fixtures and require identical results, which is what makes the mask engine trustworthy.

Either way the outcome is a :class:`ValidationResult`: counts, one :class:`Problem` per failing cell /
row / rule (row number as in the file, column, rule id, outcome, a sentence a clerk can act on, and the
offending value *only* for columns with ``privacy: none``), the accepted and quarantined row indices,
a GX-style per-expectation summary and :meth:`ValidationResult.to_gx` (a masked
``ExpectationSuiteValidationResult`` for auditors and Data Docs).

Outcomes come from the contract: ``on_invalid`` of a column, ``outcome`` of a rule or reference
(``refuse_file`` | ``quarantine_row`` | ``warn``); a missing required column refuses the file; a key
shared by several rows quarantines them; drift against the previous accepted extract follows
:class:`DriftPolicy`. Exact duplicate rows are dropped before validation (the first is kept) and
reported as warnings.

Identifier values (columns whose privacy is ``direct`` or ``quasi``) never leave this package: not in
problems, not in the summary, not in the GX result, not in exceptions. No Dagster here, and
``great_expectations`` is imported only when a suite is built.

Modules: ``results`` (the public types), ``view`` (Arrow helpers and the validation view), ``engines``
(the mask engine and GX), ``drift`` (profiles and drift parameters), ``table`` (``validate_table``,
``validate_drop``, ``read_extract``), ``gx_result`` (the masked GX result) and ``check``
(``check_extract``). Import from ``data_sharing.validation``: the names below are the public surface.
"""

from data_sharing.validation.check import CheckReport, check_extract, own_header_note
from data_sharing.validation.engines import suite_for
from data_sharing.validation.gx_result import mask_gx_result_dict
from data_sharing.validation.results import (
    OUTCOME_RANK,
    DriftPolicy,
    Engine,
    ExpectationSummary,
    ExtractProfile,
    Problem,
    ValidationInputError,
    ValidationResult,
)
from data_sharing.validation.table import read_extract, validate_drop, validate_table

__all__ = [
    "OUTCOME_RANK",
    "CheckReport",
    "DriftPolicy",
    "Engine",
    "ExpectationSummary",
    "ExtractProfile",
    "Problem",
    "ValidationInputError",
    "ValidationResult",
    "check_extract",
    "mask_gx_result_dict",
    "own_header_note",
    "read_extract",
    "suite_for",
    "validate_drop",
    "validate_table",
]
