"""Shared fixtures: a context builder for check tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from grader.checks.base import CheckContext
from grader.models import Answer


def make_ctx(
    answers: Mapping[str, Any] | None = None,
    expected: Mapping[str, Any] | None = None,
    markdown: tuple[str, ...] = (),
    statuses: Mapping[str, tuple[str, str]] | None = None,
    problem: str | None = None,
) -> CheckContext:
    """A CheckContext whose answers are ok unless ``statuses`` says otherwise."""
    built = {
        name: Answer(name=name, status="ok", value=v, type_name="x")
        for name, v in (answers or {}).items()
    }
    for name, (status, message) in (statuses or {}).items():
        built[name] = Answer(name=name, status=status, message=message)  # type: ignore[arg-type]
    return CheckContext(
        answers=built,
        expected=expected or {},
        markdown=markdown,
        execution=None,
        notebook_problem=problem,
    )


@pytest.fixture
def ctx_factory():  # type: ignore[no-untyped-def]
    return make_ctx


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` unless this machine has an NVIDIA GPU."""
    marked = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not marked:
        return
    from grader.sandbox import gpus

    if gpus.detect().units:
        return
    skip = pytest.mark.skip(reason="needs a real NVIDIA GPU; none found (nvidia-smi -L, /dev)")
    for item in marked:
        item.add_marker(skip)
