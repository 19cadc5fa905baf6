"""The sandbox's records and its face: one limits record, the request the pipeline builds,
the ``frameworks:`` rubric key, and the package's import boundaries."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

import grader.cache
import grader.sandbox
from grader.errors import GraderError, RubricError, SandboxError
from grader.models import Submission
from grader.pipeline import execution_limits, execution_request
from grader.reference import Expected
from grader.rubric import Limits, load_rubric
from grader.sandbox import (
    CgroupError,
    ExecutionLimits,
    KernelStartError,
    LimitSettings,
    SandboxUnavailable,
    UnsupportedRequest,
    confine,
    warm,
)
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.session import Session
from grader.sandbox.warm_or_cold import preloaded_for
from grader.sandbox.warm_session import WarmSession

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "grader"
RUBRIC = """\
assignment: t
title: T
reference: hw3
notebook: t.ipynb
{extra}
questions:
  - id: q
    checks:
      - {{id: c, type: value, answer: c, points: 1}}
"""


def rubric_file(tmp_path: Path, extra: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(RUBRIC.format(extra=extra))
    return path


# --- limits ----------------------------------------------------------------------------


def test_the_rubric_limits_model_is_the_sandboxs_settings() -> None:
    """Defaults are declared once: a rubric's ``limits:`` is validated by the sandbox's
    own model, and the full record extends it."""
    assert Limits is LimitSettings
    assert issubclass(ExecutionLimits, LimitSettings)
    settings = LimitSettings()
    full = ExecutionLimits()
    for name in LimitSettings.model_fields:
        assert getattr(full, name) == getattr(settings, name), name


def test_every_rubric_limit_reaches_the_execution_limits(tmp_path: Path) -> None:
    values = {
        "cell_timeout": 7.0,
        "notebook_timeout": 70.0,
        "memory_mb": 512,
        "processes": 32,
        "import_timeout": 3.0,
        "call_timeout": 2.0,
        "module_timeout": 40.0,
        "provided_mb": 100,
        "gpu_memory_mb": 1024,
    }
    cells = "[{tag: train, timeout: 600}, {heading: Q7, timeout: 900}]"
    # a new setting needs a line here
    assert {*values, "cells"} == set(LimitSettings.model_fields)
    listed = ", ".join(f"{k}: {v}" for k, v in values.items())
    text = f"limits: {{{listed}, cells: {cells}}}"
    limits = execution_limits(load_rubric(rubric_file(tmp_path, text)))
    assert {k: getattr(limits, k) for k in values} == values
    assert [(c.tag, c.heading, c.timeout) for c in limits.cells] == [
        ("train", None, 600.0),
        (None, "Q7", 900.0),
    ]
    assert limits.memory_bytes == 512 * 2**20
    # the grader's own limits keep their defaults
    assert limits.tmp_bytes == ExecutionLimits().tmp_bytes


def test_a_misspelt_limit_names_the_key_and_line(tmp_path: Path) -> None:
    path = rubric_file(tmp_path, "limits:\n  cell_timout: 3")
    with pytest.raises(RubricError, match=r"t\.yaml:\d+: unknown key 'limits.cell_timout'"):
        load_rubric(path)


def test_a_grader_only_limit_cannot_be_set_by_a_rubric(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=r"unknown key 'limits\.tmp_bytes'"):
        load_rubric(rubric_file(tmp_path, "limits: {tmp_bytes: 1}"))


def test_limits_are_checked_and_frozen() -> None:
    with pytest.raises(ValidationError):
        ExecutionLimits(memory_mb=100)
    with pytest.raises(ValidationError):
        ExecutionLimits(cell_timout=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ExecutionLimits().cell_timeout = 1  # type: ignore[misc]


# --- frameworks -------------------------------------------------------------------------


def test_frameworks_key_preloads_in_order_once(tmp_path: Path) -> None:
    rubric = load_rubric(rubric_file(tmp_path, "frameworks: [torch, numpy]"))
    assert rubric.frameworks == ("torch", "numpy")
    modules = warm.preload(rubric.frameworks)
    assert modules[: len(warm.KERNEL_MODULES)] == warm.KERNEL_MODULES
    assert modules.count("numpy") == 1 and modules[-1] == "torch"
    assert warm.preload(()) == warm.KERNEL_MODULES


def test_unknown_framework_is_a_rubric_error(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=r"frameworks\.0"):
        load_rubric(rubric_file(tmp_path, "frameworks: [pytorch]"))


def test_the_six_rubrics_preload_torch_and_tensorflow_only_when_mentioned(
    tmp_path: Path,
) -> None:
    """Every reference imports torch, so every template does; the rubrics that accept
    Keras/TensorFlow (all but HW2, a NumPy module) declare tensorflow, which a template
    preloads only for a submission whose files mention it."""
    torch_only = tmp_path / "torch_only"
    torch_only.mkdir()
    (torch_only / "hw.py").write_text("import torch\n")
    keras = tmp_path / "keras"
    keras.mkdir()
    (keras / "hw.py").write_text("from tensorflow import keras\n")
    for name in ("hw1", "hw2", "hw3", "hw4", "hw4b", "project1"):
        frameworks = load_rubric(name).frameworks
        declared = ("numpy", "torch") if name == "hw2" else ("numpy", "torch", "tensorflow")
        assert frameworks == declared, name
        for_torch = preloaded_for(frameworks, torch_only)
        assert warm.preload(for_torch) == (*warm.KERNEL_MODULES, "torch"), name
        assert ("tensorflow" in preloaded_for(frameworks, keras)) == (name != "hw2"), name


# --- the request ------------------------------------------------------------------------


def test_the_pipeline_builds_a_complete_request(tmp_path: Path) -> None:
    rubric = load_rubric("hw3")
    folder = tmp_path / "alice"
    (folder / "sub").mkdir(parents=True)
    (folder / "hw3.ipynb").write_text("{}")
    (folder / "sub" / "data.txt").write_text("x")
    sub = Submission("alice", folder, (folder / "hw3.ipynb", folder / "sub" / "data.txt"))
    request = execution_request(sub, rubric, Expected({}, "ref"), sandbox="permissive")
    assert request.files.root == folder and not request.files.single_file
    assert request.files.paths == ("hw3.ipynb", "sub/data.txt")
    assert request.notebook is not None and request.module is None
    assert request.notebook.wanted == "hw3.ipynb"
    assert list(request.notebook.harvest) == rubric.requests()
    assert request.limits == execution_limits(rubric)
    assert request.frameworks == ("numpy", "torch", "tensorflow")
    assert request.mode == "permissive"
    assert (request.devices.gpus, request.provided, request.notebook.calls) == (0, (), ())

    single = Submission("bob", tmp_path / "bob.ipynb", (tmp_path / "bob.ipynb",), True)
    files = execution_request(single, rubric, Expected({}, "ref")).files
    assert (files.root, files.paths, files.single_file) == (tmp_path, ("bob.ipynb",), True)


def test_records_are_frozen(tmp_path: Path) -> None:
    request = grader.sandbox.ExecutionRequest(
        files=grader.sandbox.SubmissionFiles(tmp_path, ()),
        module=grader.sandbox.ModuleTask("layers.py"),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.mode = "off"  # type: ignore[misc]


def test_the_execution_key_follows_what_runs_not_what_is_preloaded(tmp_path: Path) -> None:
    """Preloading is a speed-up (warm or cold give the same results, as GRADER_WARM is
    not in the key either); a limit changes what runs."""

    def key(extra: str, name: str) -> str:
        rubric = load_rubric(rubric_file(tmp_path, extra, name))
        return grader.cache.execution_fingerprint(rubric, [], "ref", "strict")

    base = key("frameworks: [numpy]", "a.yaml")
    assert key("frameworks: [numpy, torch]", "b.yaml") == base
    assert key("frameworks: [numpy]\nlimits: {cell_timeout: 5}", "c.yaml") != base


def test_the_sandbox_code_that_decides_an_execution_is_hashed() -> None:
    """The kernel's seed and every limit's default are declared in the sandbox's code, so
    the execution cache's code hash changes with them."""
    hashed = {
        p.relative_to(PACKAGE).as_posix()
        for pattern in grader.cache.EXECUTION_CODE
        for p in PACKAGE.glob(pattern)
    }
    assert {f"sandbox/{p.name}" for p in (PACKAGE / "sandbox").glob("*.py")} <= hashed
    assert grader.sandbox.ExecutionRequest.__dataclass_fields__["seed"].default == (
        grader.sandbox.KERNEL_SEED
    )


# --- errors -----------------------------------------------------------------------------


def test_sandbox_errors_are_grader_errors() -> None:
    for cls in (SandboxUnavailable, KernelStartError, UnsupportedRequest, CgroupError):
        assert issubclass(cls, SandboxError) and issubclass(cls, GraderError), cls
    err = SandboxUnavailable(["no network isolation"], hint="do this")
    assert str(err) == "refusing to run student code without: no network isolation (do this)"
    assert err.missing == ["no network isolation"]


def test_executed_lives_in_the_sandbox() -> None:
    assert grader.cache.Executed is grader.sandbox.Executed


# --- one way to confine -----------------------------------------------------------------


def test_both_sessions_implement_the_protocol() -> None:
    members = [
        name
        for name in vars(Session)
        if not name.startswith("_") or name in ("__enter__", "__exit__")
    ]
    assert {"launcher", "worker_launcher", "runtime", "limit_hit"} <= set(members)
    for cls in (SandboxSession, WarmSession):
        missing = [m for m in members if not hasattr(cls, m)]
        assert missing == [], (cls.__name__, missing)


def test_limits_become_mechanisms_in_one_place(tmp_path: Path) -> None:
    limits = ExecutionLimits(file_size_bytes=5, open_files=6, cpu_cores=2, scratch_bytes=7)
    assert confine.rlimits(limits) == {"fsize": 5, "nofile": 6, "core": 0}
    scratch, outbox = tmp_path / "s", tmp_path / "o"
    assert confine.quotas(limits, scratch, outbox) == (
        (scratch, 7),
        (outbox, limits.outbox_bytes),
    )
    env = confine.sandbox_env(limits, {"EXTRA": "1"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2" and env["EXTRA"] == "1"
    # the cold session's environment is exactly that
    box = SandboxSession(scratch, outbox, None, limits, "permissive", extra_env={"EXTRA": "1"})
    assert box.env() == env


# --- boundaries -------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_sandbox_imports_nothing_of_rubric_reference_checks_or_report() -> None:
    banned = ("grader.rubric", "grader.reference", "grader.checks", "grader.report")
    for path in sorted((PACKAGE / "sandbox").glob("*.py")):
        bad = [m for m in _imports(path) if m.startswith(banned)]
        assert bad == [], (path.name, bad)


def test_nothing_outside_the_sandbox_imports_its_modules() -> None:
    public = set(grader.sandbox.__all__)
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "sandbox") in path.parents:
            continue
        for name in _imports(path):
            if name.startswith("grader.sandbox."):
                assert name.removeprefix("grader.sandbox.") in public, (path.name, name)


def test_no_sandbox_module_is_over_500_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / "sandbox").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 500} == {}
