"""Check types, registered by the YAML ``type:`` they serve.

Importing this package imports every check module, so no type can be left
unregistered by accident.
"""

from grader.checks import (
    choice,
    claim,
    dropout,
    figure,
    function,
    model,
    search,
    shape_table,
    statistical,
    text,
    value,
)
from grader.checks.base import REGISTRY, CheckContext, CheckSpec, CheckType, register

__all__ = [
    "REGISTRY",
    "CheckContext",
    "CheckSpec",
    "CheckType",
    "choice",
    "claim",
    "dropout",
    "figure",
    "function",
    "model",
    "register",
    "search",
    "shape_table",
    "statistical",
    "text",
    "value",
]
