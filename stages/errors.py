"""The exceptions the doors catch from the layers below, re-exported unchanged (the doors import ``stages`` only).

``KeyMaterialError`` (a key set or key file that cannot be used), ``IdentifierDataError`` (identifiers that
cannot be normalised), ``ContractError``/``ContractErrors`` (a partnership's files are wrong). Kept light:
``DecisionError`` comes with :mod:`stages.review` and ``ReportError`` with :mod:`stages.report`.
"""

from __future__ import annotations

from data_sharing.errors import IdentifierDataError, KeyMaterialError
from schemas.errors import ContractError, ContractErrors

__all__ = ["ContractError", "ContractErrors", "IdentifierDataError", "KeyMaterialError"]
