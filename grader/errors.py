"""The grader's own errors: problems that stop the grader, never a student's mistakes."""

from __future__ import annotations

from pathlib import Path


class GraderError(Exception):
    """Base class: the grader itself cannot go on. The CLI prints it on one line."""


class RubricError(GraderError):
    """A rubric that cannot be used, with the file, line and key at fault."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class ReferenceComputationError(GraderError):
    """The reference implementation failed to compute an expected value."""


class SubmissionsError(GraderError):
    """The submissions folder is missing or holds nothing to grade."""


class SandboxError(GraderError):
    """The sandbox cannot run student code here (a grader-side problem, never the student's).

    Its subclasses live in :mod:`grader.sandbox.errors` and are exported by
    :mod:`grader.sandbox`.
    """
