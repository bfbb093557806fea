"""Retries with backoff for the I/O steps, and no retry for deterministic refusals.

Every c2c asset reads or writes files (drop folder, landing zone, linkage area) or the warehouse, so
every one carries :data:`IO_RETRY` (exponential backoff with jitter). What a retry can fix is a
*transient* error: an ``OSError`` (a network share hiccup, a file briefly locked; a missing file is
not one), a database connection or lock problem (SQLAlchemy ``OperationalError``/``InterfaceError``/
``TimeoutError``), a DuckDB I/O error. Anything else is deterministic - bad data, a blocking check's refusal, a
configuration error, a missing upstream step - and running it again gives the same answer, so
:func:`retry_transient_only` turns it into ``Failure(allow_retries=False)``: the run fails at once
with the reason, and the UI shows no pointless attempts. A re-run of a failed run starts again from
the durable state (manifest, linkage area, warehouse), which every step is written to idempotently.

The in-process executor honours op retry policies (``tests/operations/test_retries.py``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from dagster import Backoff, Failure, Jitter, RetryPolicy

from stages import StageError

F = TypeVar("F", bound=Callable[..., Any])

IO_RETRY = RetryPolicy(max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
"""Up to 3 retries, about 1, 3 and 7 seconds after the failure (exponential backoff, +/- 1 s jitter)."""


def transient_errors() -> tuple[type[BaseException], ...]:
    """Exception types a retry may fix (I/O and database connectivity)."""
    import sqlalchemy.exc as sa_exc

    out: list[type[BaseException]] = [OSError, TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError]
    try:
        import duckdb

        out += [duckdb.IOException]
    except (ImportError, AttributeError):  # pragma: no cover - duckdb is a dependency
        pass
    return tuple(out)


PERMANENT_OS_ERRORS: tuple[type[OSError], ...] = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
"""OS errors that name a state problem (a missing or misplaced file), not a passing one: not retried."""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, transient_errors()) and not isinstance(exc, PERMANENT_OS_ERRORS)


def failure_metadata(exc: BaseException) -> dict[str, str]:
    """What the runner and alerts read from a failed step: the error's class and its reason code (never its text)."""
    out = {"error_class": type(exc).__name__}
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        out["reason_code"] = reason
    return out


def _permanent(exc: Exception) -> Failure:
    if isinstance(exc, Failure):
        return Failure(description=exc.description, metadata=exc.metadata, allow_retries=False)
    return Failure(description=f"{type(exc).__name__}: {exc}", metadata=failure_metadata(exc), allow_retries=False)


def retry_transient_only(fn: F) -> F:
    """Let transient errors propagate (the step's RetryPolicy retries them); make every other error a
    non-retryable ``Failure`` carrying the same message (messages in c2c never hold a data value) and,
    as metadata, the error's class and reason code. Works for plain and generator (yielding) assets."""

    def convert(exc: Exception) -> Exception | None:
        if isinstance(exc, Failure) and not exc.allow_retries:
            return None
        if not isinstance(exc, Failure) and is_transient(exc):
            return None
        return _permanent(exc)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                converted = convert(exc)
                if converted is None:
                    raise
                raise converted from exc

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            converted = convert(exc)
            if converted is None:
                raise
            raise converted from exc

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def stage_failures() -> Iterator[None]:
    """A stage that cannot go on (``stages.StageError``) fails the step at once, with the stage's message."""
    try:
        yield
    except StageError as exc:
        raise Failure(str(exc)) from None
