"""Loads ``reference/<name>.py`` and computes the expected values, cached by content hash.

The reference is trusted instructor code and runs in the grader's process; it is never
visible to students (the sandbox does not bind ``reference/``). Its values are cached as
JSON keyed by the hash of its source and the torch/numpy versions, so a batch (and the
next batch) computes them once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.checks.base import CheckSpec
from grader.errors import ReferenceComputationError, RubricError
from grader.rubric import Rubric

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"


@dataclass(frozen=True)
class Expected:
    """The reference's computed values and the hash of the code that computed them."""

    values: Mapping[str, Any]
    sha256: str


def reference_path(rubric: Rubric) -> Path:
    """``reference:`` is a module name in ``reference/`` or a path relative to the rubric."""
    name = rubric.reference
    if name.endswith(".py"):
        path = (rubric.path.parent / name).resolve()
    else:
        path = REFERENCE_DIR / f"{name}.py"
    if not path.is_file():
        raise RubricError(rubric.path, f"reference {name!r} not found (looked for {path})")
    return path


def cache_dir() -> Path:
    """Where computed reference values are kept between runs."""
    base = os.environ.get("GRADER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "grader"
    )
    return Path(base) / "reference"


def torch_version() -> str:
    """The installed torch's version, read without importing torch (1-2 s saved on a
    re-run whose every result is cached)."""
    return importlib.metadata.version("torch")


def reference_hash(path: Path) -> str:
    """Hash of the reference source plus the library versions its numbers depend on."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(f"torch={torch_version()};numpy={np.__version__}".encode())
    return digest.hexdigest()


def load_expected(rubric: Rubric, use_cache: bool = True) -> Expected:
    """Compute (or read from the cache) every value the rubric's checks compare against."""
    path = reference_path(rubric)
    sha = reference_hash(path)
    cached = cache_dir() / f"{sha}{_specs_suffix(rubric)}.json"
    if use_cache and cached.is_file():
        try:
            return Expected(decode(json.loads(cached.read_text())), sha)
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed below
    values = _compute(path, rubric)
    missing = sorted({c.reference_key for c in rubric.checks() if c.type != "text"} - set(values))
    if missing:
        raise ReferenceComputationError(
            f"{path}: compute() returned no value for {', '.join(missing)} "
            f"(needed by {rubric.path.name})"
        )
    _write_atomic(cached, json.dumps(encode(values)))
    return Expected(values, sha)


def _computing_checks(rubric: Rubric) -> list[CheckSpec]:
    """Checks whose expected values come from ``compute_expected`` (function checks)."""
    return [
        c for c in rubric.checks() if type(c).compute_expected is not CheckSpec.compute_expected
    ]


def _specs_suffix(rubric: Rubric) -> str:
    """Part of the cache key: the specs of checks that compute their own expected values
    (which reference function, which cases), so editing them recomputes."""
    specs = [c.model_dump(mode="json") for c in _computing_checks(rubric)]
    if not specs:
        return ""
    text = json.dumps(specs, sort_keys=True)
    return "-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _compute(path: Path, rubric: Rubric) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(f"grader_reference_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ReferenceComputationError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        values = module.compute()
    except Exception as exc:
        raise ReferenceComputationError(
            f"{path}: compute() failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(values, dict):
        raise ReferenceComputationError(f"{path}: compute() must return a dict")
    for check in _computing_checks(rubric):
        try:
            value = check.compute_expected(module)
        except Exception as exc:
            raise ReferenceComputationError(
                f"{path}: computing the expected values of check {check.id!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if value is not None:
            values[check.reference_key] = value
    return values


def encode(value: Any) -> Any:
    """Reference values as JSON, keeping arrays and tuples (shapes) distinguishable."""
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(value, dict):
        if "__array__" in value:
            return np.asarray(value["__array__"], dtype=value["dtype"])
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs a recomputation next time
