"""Check types, registered by the YAML ``type:`` they serve.

Importing this package imports every module in it, so a check type is added by adding
its module (and, optionally, its macro file in ``templates/``): none can be left
unregistered by accident, and no list names them.
"""

import importlib
import pkgutil

from grader.checks.base import REGISTRY, CheckContext, CheckSpec, CheckType, register, view

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "CheckContext", "CheckSpec", "CheckType", "register", "view"]
