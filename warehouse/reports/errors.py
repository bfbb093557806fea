"""The report's error, importable without the report builder (which brings altair and vl-convert: about
a second of start-up that a quiet night, which writes no report, should not pay)."""


class ReportError(ValueError):
    """The report cannot be built as asked (no release yet, an unknown release id); nothing was written."""
