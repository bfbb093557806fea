"""Exceptions of the privacy layer: one type per trust boundary.

Every message names *where* (a file path, a column, row numbers, a key version or key id) and *how to
fix it*, never *what*: no exception raised by ``data_sharing`` carries a secret or an identifier value
(a name, a birth date, an agency id, a token), so a traceback may be logged, shown in the Dagster UI or
written to the audit log as is. The ``reason`` attribute is a short machine-readable code.

===========================  ==============================================================
boundary                     exception
===========================  ==============================================================
key material (files, env)    :class:`KeyMaterialError`
identifier data (frames)     :class:`IdentifierDataError`
landing zone (at rest)       :class:`LandingError`
===========================  ==============================================================
"""

from __future__ import annotations


class PrivacyError(Exception):
    """Base of the privacy layer's errors. ``reason`` is a stable code; the message holds no secret."""

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class KeyMaterialError(PrivacyError):
    """Key material is missing, malformed, not protected, of the wrong purpose or of an unknown version.

    Reasons: ``missing``, ``insecure_permissions``, ``malformed``, ``unknown_version``,
    ``wrong_purpose``, ``exists``, ``read_only``, ``ambiguous`` (both ``C2C_MASTER_KEY`` and a key file).
    """


class IdentifierDataError(PrivacyError):
    """A frame of identifiers cannot be pseudonymised or encoded as the contract says.

    The message names columns and (at most a few) row positions, never a cell value.
    Reasons: ``unknown_column``, ``missing_column``, ``contract_mismatch``, ``bad_type``.
    """


class LandingError(PrivacyError):
    """The encrypted landing zone refused a read or write.

    Reasons: ``tampered`` (authentication failed: the file, its header or the key is not the one it was
    written with), ``key_mismatch``, ``binding_mismatch`` (the file is not the agency/name asked for),
    ``malformed``, ``exists``, ``bad_name``, ``not_found``.
    """
