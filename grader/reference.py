"""Loads ``reference/<name>.py`` and computes the expected values, cached by content hash.

The reference is trusted instructor code; it is never visible to students (the sandbox
does not bind ``reference/``). It runs in a fresh child process of the grader whose
numerics are pinned (:data:`PIN`: torch's portable CPU kernels, one thread, MKL's
reproducible code path, no oneDNN or NNPACK), so two machines of the same kind, whatever
their CPUs' instruction sets, compute the same values; see :func:`compute_values`. Its
values are cached as JSON keyed by the hash of its source, the torch/numpy versions and
the pin, so a batch (and the next batch) computes them once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.atomic import json_text, write_text_atomic
from grader.checks.base import CheckSpec
from grader.errors import ReferenceComputationError, RubricError
from grader.plain import decode, encode
from grader.rubric import Rubric

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"


@dataclass(frozen=True)
class Pin:
    """How the process computing the expected values is set up, before and after torch
    is imported. ``env`` is applied over the grader's environment; the other fields are
    applied by the child once torch is imported (:mod:`grader.reference_child`), which
    then checks that torch reports ``capability``."""

    env: Mapping[str, str] = field(default_factory=dict)
    num_threads: int = 1
    mkldnn: bool = True
    nnpack: bool = True
    capability: str | None = None  # what torch.backends.cpu.get_cpu_capability() must say

    def tag(self) -> str:
        """A short digest of the pin, part of :func:`reference_hash`."""
        text = json.dumps(asdict(self), sort_keys=True, default=dict)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: The pinned numerics of every reference computation. Measured on an AVX-512 machine
#: (HW4-B's 60 re-trainings), each of these changes the values when left to the CPU:
#: ATen's kernels are compiled for several instruction sets and picked at start-up
#: (``default`` is the portable build); oneDNN and NNPACK pick their own kernels by CPU
#: (and oneDNN its blocking by cache size), so both are off and convolutions take ATen's
#: own im2col + BLAS path; MKL's ``COMPATIBLE`` branch is its conditional numerical
#: reproducibility mode (same results on any x86 CPU for a given MKL version and thread
#: count); one thread fixes the order of every sum. ``ONEDNN_MAX_CPU_ISA`` is a fallback
#: for any operator that reaches oneDNN despite ``mkldnn=False``.
PIN = Pin(
    env={
        "ATEN_CPU_CAPABILITY": "default",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    },
    num_threads=1,
    mkldnn=False,
    nnpack=False,
    capability="DEFAULT",
)


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


# Grader code a reference may import to build its cases: its source is part of the hash,
# so editing it recomputes the expected values (and the executions that used them).
_REFERENCE_HELPERS = (Path(__file__).resolve().parent / "cases.py",)


def reference_hash(path: Path) -> str:
    """Hash of the reference source, the case helpers it may import, and the library
    versions and numeric pin its numbers depend on."""
    digest = hashlib.sha256(path.read_bytes())
    for helper in _REFERENCE_HELPERS:
        digest.update(helper.read_bytes())
    # The pin makes two machines of one architecture agree; machines of different
    # architectures (x86-64, aarch64: no MKL, other kernels) may still differ.
    digest.update(
        f"torch={torch_version()};numpy={np.__version__};pin={PIN.tag()};"
        f"arch={platform.machine()}".encode()
    )
    return digest.hexdigest()


def load_expected(rubric: Rubric, use_cache: bool = True) -> Expected:
    """Compute (or read from the cache) every value the rubric's checks compare against."""
    path = reference_path(rubric)
    sha = reference_hash(path)
    cached = cache_dir() / f"{sha}{_specs_suffix(rubric)}.f{CACHE_FORMAT}.json"
    if use_cache and cached.is_file():
        try:
            return Expected(_read_cached(cached), sha)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is recomputed below
    values = compute_values(path, rubric)
    missing = missing_expected(rubric, values)
    if missing:
        raise ReferenceComputationError(
            f"{path}: compute() returned no value for {', '.join(missing)} "
            f"(needed by {rubric.path.name})"
        )
    _write_atomic(
        cached, json_text({"format": CACHE_FORMAT, "values": encode(values)}, indent=None)
    )
    return Expected(values, sha)


def missing_expected(rubric: Rubric, values: Mapping[str, Any]) -> list[str]:
    """The reference keys that checks needing an expected value find no value under."""
    return sorted({c.reference_key for c in rubric.checks() if c.needs_expected} - set(values))


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


def compute_values(path: Path, rubric: Rubric, pin: Pin = PIN) -> dict[str, Any]:
    """Run the reference's ``compute()`` and the computing checks' ``compute_expected``
    in a fresh child process set up by ``pin``; return the values.

    A child, because the pin must be in place before torch is imported (the CPU kernels
    are chosen then) and the grader's own process has usually imported torch already;
    and a plain ``python -m grader.reference_child`` rather than a multiprocessing
    spawn, because a Dask worker's process is a daemon, which multiprocessing forbids
    to have children. The values come back as JSON (:mod:`grader.plain`), never pickled.
    Every failure (the reference raises, has no ``compute()``, a check's cases fail,
    the child dies) is a :class:`ReferenceComputationError` naming the file.
    """
    request = {
        "path": str(path),
        "checks": [
            {"type": c.type, "spec": c.model_dump(mode="json")} for c in _computing_checks(rubric)
        ],
        "pin": {k: v for k, v in asdict(pin).items() if k != "env"},
    }
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **pin.env}
    # This grader's package, whatever the working directory holds (-P: no cwd on sys.path).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "grader.reference_child"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.stderr:
        sys.stderr.write(proc.stderr)  # the reference's own output and warnings
    try:
        reply = json.loads(proc.stdout)
    except ValueError:
        reply = None
    if proc.returncode != 0 or not isinstance(reply, dict):
        tail = "; ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"
        raise ReferenceComputationError(
            f"{path}: the process computing the expected values ended with status "
            f"{proc.returncode}: {tail}"
        )
    if "error" in reply:
        raise ReferenceComputationError(str(reply["error"]))
    values = decode(reply["values"])
    assert isinstance(values, dict)  # the child checks compute() returned a dict
    return values


#: Bump when the layout of a cached reference file changes. The format is part of the
#: file name, so graders of different formats sharing ``~/.cache/grader`` never read
#: each other's files. 2: ``{"format": 2, "values": tree}`` with the tree in
#: :mod:`grader.plain`'s strict JSON (1: a bare tree with ``NaN`` tokens, arrays without
#: their shape, dict keys made strings).
CACHE_FORMAT = 2


def _read_cached(path: Path) -> dict[str, Any]:
    """The values of a cached reference file; ValueError when it is of another format."""
    entry = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entry, dict) or set(entry) != {"format", "values"}:
        raise ValueError(f"{path}: not a reference cache entry")
    if entry["format"] != CACHE_FORMAT:
        raise ValueError(f"{path}: reference cache format {entry['format']!r}")
    values = decode(entry["values"])
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the values are not a mapping")
    return values


def _write_atomic(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):  # an unwritable cache only costs a recomputation
        write_text_atomic(path, text)
